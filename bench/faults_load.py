"""The fault suite's load: its lessons and rules, and senders that deliver signed webhooks the
way GitHub and Jira do, retrying connection errors and 5xx with the same delivery id."""

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from faults_fakes import RecordingGitHub, RecordingJira

from connectors.github import webhook as github_webhook
from connectors.jira import webhook as jira_webhook
from connectors.jira.engineer import Engineer

LESSONS: dict[str, tuple[str, str]] = {
    # lesson id → (title, the tag the rule selects it by)
    "faults-alpha": ("Retry budgets are shared per caller", "faults-github"),
    "faults-bravo": ("Feature flags default to off", "faults-github"),
    "faults-charlie": ("Runbooks name an owner", "faults-jira"),
    "faults-delta": ("Alerts page a human only when actionable", "faults-jira"),
}
RULES = """\
pack: faults
level: organisation
priority: 100
budget:
  max_items_per_work_item: 5
rules:
  - id: faults-github
    description: The fault suite's lessons on every pull request.
    lesson:
      tags: [faults-github]
    work_item:
      systems: [github]
    then:
      form: github.pr_checklist
      due: 7d
      text: "{{ lesson.title }}"
  - id: faults-jira
    description: The fault suite's lessons as sub-tasks of every Jira issue.
    lesson:
      tags: [faults-jira]
    work_item:
      systems: [jira]
    then:
      form: jira.subtask
      due: 14d
"""


def titles() -> dict[str, str]:
    """Lesson title → lesson id (how an item line in a pull request names its lesson)."""
    return {title: lesson for lesson, (title, _tag) in LESSONS.items()}


def lessons_for(system: str) -> list[str]:
    """The lessons the rules place on a work item of `system`."""
    return [lesson for lesson, (_title, tag) in LESSONS.items() if tag == f"faults-{system}"]


def write_inputs(directory: Path) -> tuple[Path, Path]:
    """Write the lessons (an import file of published lessons) and the rule pack."""
    lessons = [
        {
            "id": lesson,
            "version": 1,
            "title": title,
            "statement": f"{title}: the fault suite checks it is placed exactly once.",
            "form": "checklist",
            "provenance": {
                "source_incidents": ["generic:FAULTS-1"],
                "captured_by": "faults",
                "captured_at": "2026-11-20T12:00:00Z",
            },
            "applicability": {"tags": [tag]},
            "mandate": "invited",
            "owner": "platform",
            "status": "published",
        }
        for lesson, (title, tag) in LESSONS.items()
    ]
    lessons_file = directory / "lessons.json"
    lessons_file.write_text(json.dumps(lessons, indent=1))
    rules_dir = directory / "rules"
    rules_dir.mkdir()
    (rules_dir / "faults.yaml").write_text(RULES)
    return lessons_file, rules_dir


@dataclass
class Delivery:
    """One webhook to deliver: its id, where, its signed headers and body, what it asks for."""

    delivery_id: str
    path: str
    body: bytes
    headers: dict[str, str]
    work_item: str
    effects: list[str]
    poison: str | None = None


@dataclass
class Load:
    """Makes the work items in the fakes and the webhooks announcing them."""

    github: RecordingGitHub
    jira: RecordingJira
    github_secret: str
    jira_secret: str
    engineer: Engineer = field(init=False)
    hidden: dict[tuple[str, int], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engineer = Engineer(self.jira)

    def pull_request(self, number: int, repo: str = "faults/service") -> Delivery:
        """Open a pull request in the fake; the `pull_request.opened` webhook announcing it."""
        opened = self.github.open_pull(
            repo,
            title=f"Change {number}",
            body=f"Change {number} of the fault suite.",
            files=[f"src/module_{number % 17}.py"],
        )
        ref = f"github:{repo}#{opened.payload['number']}"
        delivery_id = str(uuid.uuid4())
        headers = github_webhook.sign(
            self.github_secret, opened.body, event="pull_request", delivery=delivery_id
        )
        effects = [f"{ref}|{lesson}" for lesson in lessons_for("github")]
        return Delivery(delivery_id, "/hooks/github", opened.body, headers, ref, effects)

    def issue(self, number: int) -> Delivery:
        """File a Jira issue in the fake; the `jira:issue_created` webhook announcing it."""
        key, payload = self.engineer.create_issue(
            "OPS", f"Task {number} of the fault suite", issue_type="Task"
        )
        body = json.dumps(payload).encode()
        delivery_id = str(uuid.uuid4())
        headers = jira_webhook.sign(self.jira_secret, body, delivery_id)
        effects = [f"jira:{key}|{lesson}" for lesson in lessons_for("jira")]
        return Delivery(delivery_id, "/hooks/jira", body, headers, f"jira:{key}", effects)

    def poison(self, number: int, cause: str) -> Delivery:
        """A pull request whose processing fails until the cause is fixed: `unavailable`
        (every API request for it answers 500) or `missing` (404 until it appears)."""
        delivery = self.pull_request(number, repo="faults/poison")
        key = ("faults/poison", int(delivery.work_item.rsplit("#", 1)[1]))
        with self.github.lock:
            if cause == "unavailable":
                self.github.unavailable.add(key)
            else:
                self.hidden[key] = self.github.pulls.pop(key)
        delivery.poison = cause
        return delivery

    def fix_poison(self) -> None:
        """Remove every poison cause: the pull requests answer and exist again."""
        with self.github.lock:
            self.github.unavailable.clear()
            self.github.pulls.update(self.hidden)
            self.hidden.clear()


@dataclass
class Outcome:
    """What a delivery was finally answered, after how many tries."""

    status: int | None
    tries: int


def deliver(
    client: httpx.Client, delivery: Delivery, give_up_after: float, stop: threading.Event
) -> Outcome:
    """POST until answered below 500, the same delivery id on every try, like a real sender."""
    deadline = time.monotonic() + give_up_after
    tries = 0
    while not stop.is_set():
        tries += 1
        try:
            response = client.post(delivery.path, content=delivery.body, headers=delivery.headers)
            if response.status_code < 500:
                return Outcome(response.status_code, tries)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return Outcome(None, tries)


@dataclass
class Senders:
    """Delivers webhooks from several connections at a steady rate, through any outage."""

    url: str
    rate: float
    connections: int = 4
    give_up_after: float = 300.0
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, make: list[Callable[[], Delivery]], sent: list[Delivery]) -> None:
        """Make and deliver each delivery in order, `rate` per second; fills `sent`."""
        started = time.monotonic()
        cursor = iter(range(len(make)))

        def worker() -> None:
            with httpx.Client(base_url=self.url, timeout=10.0) as client:
                while True:
                    with self.lock:
                        index = next(cursor, None)
                    if index is None or self.stop.is_set():
                        return
                    delay = started + index / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    delivery = make[index]()
                    with self.lock:
                        sent.append(delivery)
                    outcome = deliver(client, delivery, self.give_up_after, self.stop)
                    with self.lock:
                        self.outcomes[delivery.delivery_id] = outcome

        with ThreadPoolExecutor(self.connections) as pool:
            try:
                for future in [pool.submit(worker) for _ in range(self.connections)]:
                    future.result()
            except BaseException:
                self.stop.set()  # interrupted: the senders give up now, not in minutes
                raise
