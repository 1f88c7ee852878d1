"""Scale-out on a cluster's shape: one API process and three `cairn worker` processes.

The API (`cairn serve --no-workers`) takes signed GitHub webhooks; three worker processes
compete for the work through the real RabbitMQ (and, in a second run, NATS JetStream) with the
real PostgreSQL, and write through the real PyGithub client to the GitHub contract fake on
loopback. Twenty lessons match one pull request, each through a path a different push adds;
the twenty pushes arrive at once, and an engineer ticks the first item while the others are
still being placed. The pull request must end with one section holding all twenty items, each
once, the engineer's tick kept: no lost update, whichever process handled which push.
"""

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from connectors.github.fake import FakeGitHub
from core.base import utcnow
from core.lesson import Lesson, LessonStatus
from core.placement import PlacementState
from store import lessons, migrate, outbox, placements
from store.engine import Database
from tests.e2e.serve import CAIRN, ServeProcess, free_port

SECRET = "scale-out-webhook-secret"
REPO = "acme/monolith"
LESSONS = 20
WORKERS = 3


def _rules(directory: Path) -> Path:
    rules = directory / "rules"
    rules.mkdir()
    lines = [
        "pack: scale-out",
        "level: organisation",
        "priority: 100",
        "budget:",
        f"  max_items_per_work_item: {LESSONS + 5}",
        "rules:",
    ]
    for n in range(LESSONS):
        lines += [
            f"  - id: area-{n:02d}",
            f"    lesson: {{ids: [lesson-{n:02d}]}}",
            f'    work_item: {{systems: [github], paths: ["area{n:02d}/**"]}}',
            "    then: {form: github.pr_checklist}",
        ]
    (rules / "scale-out.yaml").write_text("\n".join(lines) + "\n")
    return rules


def _publish(db: Database) -> None:
    with db.transaction() as session:
        for n in range(LESSONS):
            lesson = Lesson.model_validate(
                {
                    "id": f"lesson-{n:02d}",
                    "version": 1,
                    "title": f"Check area {n:02d} before changing it",
                    "statement": f"Area {n:02d} has a lesson of its own.",
                    "provenance": {"captured_by": "scale", "captured_at": "2026-11-20T12:00:00Z"},
                    "owner": "platform",
                    "status": LessonStatus.DRAFT.value,
                },
                strict=False,
            )
            lessons.add(session, lesson, utcnow())
            lessons.publish(session, lesson.id, utcnow())


class Workers:
    """`cairn worker` processes with one environment."""

    def __init__(self, env: dict[str, str], log_dir: Path, count: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        for n in range(count):
            with (log_dir / f"worker-{n}.log").open("ab") as log:
                self.procs.append(
                    subprocess.Popen(
                        [CAIRN, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )

    def alive(self) -> int:
        return sum(proc.poll() is None for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as server:
        yield server


def _scale_out(
    broker_url: str, prefix: str, postgres_url: str, fake: FakeGitHub, tmp_path: Path
) -> None:
    db = Database(postgres_url)
    migrate.upgrade(db)
    _publish(db)
    port = free_port()
    env = {
        "CAIRN_DATABASE_URL": postgres_url,
        "CAIRN_BROKER_URL": broker_url,
        "CAIRN_BROKER_PREFIX": prefix,
        "CAIRN_RULES_PATH": str(_rules(tmp_path)),
        "CAIRN_GITHUB_WEBHOOK_SECRET": SECRET,
        "CAIRN_GITHUB_TOKEN": "ghp_fake",
        "CAIRN_GITHUB_API_URL": fake.url,
        "CAIRN_GITHUB_ACTOR": "cairn-bot",
        "CAIRN_PORT": str(port),
        "CAIRN_CONCURRENCY": "4",
        "CAIRN_POLL_INTERVAL": "0.1",
    }
    api = ServeProcess(env, tmp_path / "api.log", args=("serve", "--no-workers"))
    api.start()
    workers = Workers(api.env, tmp_path, WORKERS)
    try:
        opened = fake.open_pull(REPO, title="Touch every area", body="Big change.", files=[])
        key, ref = (REPO, 1), f"github:{REPO}#1"
        pushes = [fake.push(key, [f"area{n:02d}/code.py"]) for n in range(LESSONS)]
        with httpx.Client(base_url=api.url, timeout=10) as client:

            def send(number_and_delivery: tuple[int, object]) -> int:
                """Accepted (202), or accepted before a reply that was lost (200 on redelivery).

                A reply can be lost on a loaded machine: a request sent down a keep-alive
                connection the server is closing. GitHub's answer is a redelivery of the same
                delivery id, which Cairn must answer without a second effect.
                """
                number, delivery = number_and_delivery
                signed = FakeGitHub.signed(delivery, SECRET, delivery_id=f"push-{number}")  # type: ignore[arg-type]
                headers, body = signed
                for attempt in range(3):
                    try:
                        status = client.post("/hooks/github", content=body, headers=headers)
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                        continue
                    if attempt and status.status_code == 200:
                        return 202  # the lost reply had accepted it
                    return status.status_code
                raise AssertionError("unreachable")

            assert send((-1, opened)) == 202
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(send, enumerate(pushes)))
            assert answers == [202] * LESSONS

            # The engineer ticks the first item as soon as it appears, while pushes still run.
            deadline = time.monotonic() + 90
            ticked = None
            while ticked is None and time.monotonic() < deadline:
                with db.transaction() as session:
                    first = [p for p in placements.for_work_item(session, ref) if p.handle]
                if first:
                    try:
                        edit = fake.tick(key, first[0].id)
                    except KeyError:  # placed in the database, not yet in the body
                        time.sleep(0.1)
                        continue
                    ticked = first[0]
                    headers, body = FakeGitHub.signed(edit, SECRET, delivery_id="tick-1")
                    assert (
                        client.post("/hooks/github", content=body, headers=headers).status_code
                        == 202
                    )
                time.sleep(0.05)
            assert ticked is not None, "no item was ever placed"

            while time.monotonic() < deadline:
                with db.transaction() as session:
                    counts = outbox.counts(session)
                if counts["pending"] == counts["leased"] == 0:
                    break
                time.sleep(0.2)
        assert counts["dead"] == 0 and counts["pending"] == counts["leased"] == 0, counts
        assert workers.alive() == WORKERS

        body = fake.pulls[key].body or ""
        assert body.count("<!-- cairn:lessons:start -->") == 1
        found = Counter(
            line.split("Check area ")[1][:2]
            for line in body.split("\n")
            if line.lstrip().startswith("- [") and "Check area " in line
        )
        assert found == Counter(f"{n:02d}" for n in range(LESSONS)), body
        ticked_title = f"Check area {ticked.lesson_id[-2:]}"
        done = [line for line in body.split("\n") if line.lstrip().startswith("- [x]")]
        assert len(done) == 1 and ticked_title in done[0], body
        with db.transaction() as session:
            placed = placements.for_work_item(session, ref)
        assert sorted(p.lesson_id for p in placed) == [f"lesson-{n:02d}" for n in range(LESSONS)]
        state = {p.id: p.state for p in placed}
        assert state[ticked.id] == PlacementState.COMPLETED, state
        logs = [p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log")]
        assert all("Traceback" not in text for text in logs), logs
    finally:
        workers.stop()
        api.stop()
        db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.rabbit
def test_three_workers_on_rabbitmq_lose_no_update(
    rabbit_url: str, rabbit_prefix: str, postgres_url: str, fake: FakeGitHub, tmp_path: Path
) -> None:
    _scale_out(rabbit_url, rabbit_prefix, postgres_url, fake, tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_three_workers_on_nats_lose_no_update(
    nats_url: str, nats_prefix: str, postgres_url: str, fake: FakeGitHub, tmp_path: Path
) -> None:
    _scale_out(nats_url, nats_prefix, postgres_url, fake, tmp_path)
