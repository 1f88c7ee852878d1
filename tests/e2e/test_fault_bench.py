"""The fault suite's checker and recording fakes count what they must: a checker that cannot
fail would let `bench/faults.py` report 0 / 0 / 0 whatever happened."""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from connectors.github.section import marker_id

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    """A bench module (bench/ is a folder of scripts importing each other by name)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


check = _load("faults_check")
fakes = _load("faults_fakes")


def test_checker_counts_lost_duplicated_and_unexpected(tmp_path: Path) -> None:
    expected = {
        "github:o/r#1|alpha": "d1",
        "github:o/r#1|bravo": "d1",
        "jira:OPS-1|charlie": "d2",
        "jira:OPS-2|charlie": "d3",
    }
    effects = [
        check.Recorded("github:o/r#1|alpha", "pl_a", "item written into the body"),
        check.Recorded("github:o/r#1|bravo", "pl_b", "item written into the body"),
        check.Recorded("github:o/r#1|bravo", "pl_b", "item rewritten from a stale read"),
        check.Recorded("jira:OPS-1|charlie", "OPS-3", "sub-task created"),
        check.Recorded("jira:OPS-9|charlie", "OPS-10", "sub-task created"),
    ]
    path = tmp_path / "recording.json"
    check.Recording(expected, effects).dump(path)

    verdict = check.check(check.Recording.load(path))

    assert verdict.lost == ("jira:OPS-2|charlie",)
    assert list(verdict.duplicated) == ["github:o/r#1|bravo"]
    assert [c.how for c in verdict.duplicated["github:o/r#1|bravo"]] == [
        "item written into the body",
        "item rewritten from a stale read",
    ]
    assert verdict.unexpected == ("jira:OPS-9|charlie",)
    assert not verdict.clean
    lines = list(verdict.lines(expected))
    assert lines[0] == "lost: jira:OPS-2|charlie (delivery d3): no effect recorded"
    assert lines[1].startswith("duplicated: github:o/r#1|bravo x2")
    clean = check.check(check.Recording(expected, [e for e in effects if e.handle != "OPS-10"]))
    assert clean.unexpected == () and clean.lost == ("jira:OPS-2|charlie",)


def _section(*placements: tuple[str, str]) -> str:
    lines = [f"- [ ] **{title}** <!-- {marker_id(pid)} -->" for pid, title in placements]
    return (
        "Change.\n\n<!-- cairn:lessons:start -->\n"
        + "\n".join(lines)
        + "\n<!-- cairn:lessons:end -->"
    )


def _patch(fake: Any, number: int, body: str) -> int:
    target = f"/repos/o/r/pulls/{number}"
    status, _payload, _headers = fake.dispatch(
        "PATCH", target, {"authorization": "token ghp_fake"}, json.dumps({"body": body}).encode()
    )
    assert isinstance(status, int)
    return status


def test_github_fake_records_items_written_stale_rewrites_and_not_retries_after_a_reset() -> None:
    ledger = fakes.Ledger()
    titles = {"Alpha lesson": "alpha", "Bravo lesson": "bravo"}
    github = fakes.RecordingGitHub(ledger, titles)
    for n in (1, 2):
        github.open_pull("o/r", title=f"PR {n}", body="Change.", files=["a.py"])
    both = _section(("pl_a1", "Alpha lesson"), ("pl_b1", "Bravo lesson"))

    assert _patch(github, 1, both) == 200  # both items written
    assert _patch(github, 1, both) == 200  # the same body again, from a stale read
    github.mark_reset("/repos/o/r/pulls/2")  # nothing written to #2 yet: nothing to repeat
    alpha = _section(("pl_a2", "Alpha lesson"))
    assert _patch(github, 2, alpha) == 200
    github.mark_reset("/repos/o/r/pulls/2")  # that write's answer was cut off
    assert _patch(github, 2, alpha) == 200  # the client's repeat: not an effect

    recorded = [(e.effect_id, e.how) for e in ledger.snapshot()]
    assert recorded == [
        ("github:o/r#1|alpha", "item written into the body"),
        ("github:o/r#1|bravo", "item written into the body"),
        ("github:o/r#1|alpha", "item rewritten from a stale read"),
        ("github:o/r#1|bravo", "item rewritten from a stale read"),
        ("github:o/r#2|alpha", "item written into the body"),
    ]
    assert github.repeats_after_reset == 1


def test_jira_fake_records_every_lesson_subtask_and_nothing_else() -> None:
    ledger = fakes.Ledger()
    jira = fakes.RecordingJira(ledger)
    parent = jira.create({"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "T"})
    subtask = {
        "project": {"key": "OPS"},
        "issuetype": {"name": "Subtask"},
        "summary": "Lesson: Charlie",
        "parent": {"key": parent["key"]},
    }
    prop = [{"key": "cairn.lesson", "value": {"placement_id": "pl_c", "lesson": "charlie@1"}}]
    jira.create(subtask, prop)
    jira.create(subtask, prop)
    jira.create({**subtask, "summary": "A person's own sub-task"})

    verdict = check.check(
        check.Recording(
            {f"jira:{parent['key']}|charlie": "d1"},
            [check.Recorded(e.effect_id, e.handle, e.how) for e in ledger.snapshot()],
        )
    )
    assert list(verdict.duplicated) == [f"jira:{parent['key']}|charlie"]
    assert [c.handle for c in verdict.duplicated[f"jira:{parent['key']}|charlie"]] == [
        "OPS-2",
        "OPS-3",
    ]


@pytest.mark.parametrize(
    ("line", "faults"),
    [("PATCH /repos/o/r/pulls/1", {"reset"}), ("GET /repos/o/r/pulls/1", {"429", "5xx", "slow"})],
)
def test_fault_plan_serves_resets_only_to_writes(line: str, faults: set[str]) -> None:
    plan = fakes.FaultPlan(seed=7, rate_limited=0.2, burst_start=0.1, slow=0.2, reset_write=0.5)
    served = {plan.draw(line) for _ in range(400)} - {None}
    assert faults <= served
    if "reset" not in faults:
        assert "reset" not in served
