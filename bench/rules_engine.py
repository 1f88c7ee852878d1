"""Benchmark Cairn's routing engine against a competent linear scan and the `rule-engine` library.

Usage:
    .venv/bin/python bench/rules_engine.py --rules 10000 --lessons 10000 [--seconds N] [--seed S]
    .venv/bin/python bench/rules_engine.py --lessons 10000 --scaling   # Cairn only, R=1k vs R=10k
    .venv/bin/python bench/rules_engine.py --rules 10000 --profile 1000  # cProfile engine.route
    CAIRN_RULES_ENGINE=python .venv/bin/python bench/rules_engine.py ...  # the source only

A seeded synthetic organisation grows with R (repos ≈ R/10, teams ≈ R/50, components ≈ R/20);
R rules are spread over organisation packs and one pack per team; L published lessons carry
tags from a ~500-tag vocabulary. Work items (GitHub pull requests and Jira issues) are
generated before any timing starts. The same rules are then evaluated three ways:

1. Cairn: `rules.engine.Engine` compiled once (compile time reported apart), `engine.route`:
   first one pass over every work item (reported apart: the memos fill), then the timed rounds.
   That is the build the install made (mypyc-compiled, see setup.py, or the pure-Python source);
   when it is the compiled one, the source is timed too, on the same work items, and reported as
   `cairn_python_eps`, so both figures are on record.
2. Competent linear scan: the best plain version without an index. Every rule's work-item
   conditions are checked against each work item in turn, but they are compiled once (globs to
   one regex per field, value lists to frozensets, cheapest checks first); each rule's lesson
   conditions are resolved once, at build time, to the lessons it selects; a lesson's
   applicability is compiled once and tested at most once per work item; then
   `rules.select.select`.
3. rule-engine: each rule's work-item conditions compiled to one `rule_engine.Rule` over a dict
   context, all R evaluated per work item, lessons resolved by the same step as the scan's.

`rules.reference` (the explaining specification: every rule against every lesson, one condition
at a time, nothing compiled) is not a speed baseline. It is the correctness oracle: its
placements are asserted equal to Cairn's on the first `--oracle` work items (it takes seconds
per decision at full size; its CPU time is printed for context only).

Placements of (2) and (3) are asserted equal to Cairn's on every work item they routed, and on at
least `--verify` (default 200) work items each, the same first ones for both. decisions/s is work
items routed per second of CPU time (`time.process_time`; everything runs on one thread); Cairn's
is the median of five rounds (each round's figure is printed too); each baseline is timed on at
least `--baseline-seconds` CPU seconds and `--baseline-decisions` decisions (defaults 5 and 30).
rss_mb is the peak resident set size (`ru_maxrss`) after everything is built. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import itertools
import json
import pstats
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rule_engine

from core.lesson import Applicability, Lesson, LessonForm, LessonStatus, Mandate, Scope
from core.placement import EmbeddingForm
from core.work import System, WorkItem
from rules import native, reference
from rules.decision import Candidate, Routing
from rules.engine import Engine
from rules.globs import compile_globs, is_literal, normalise
from rules.loader import RuleSet
from rules.model import LessonCondition, Level, Pack, Rule
from rules.select import select


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# ── vocabularies ────────────────────────────────────────────────────────────────────────────

TEAM_WORDS = _words(
    "payments ledger checkout billing identity search catalog orders shipping inventory "
    "pricing fraud risk notifications messaging growth onboarding accounts reporting analytics "
    "dataplatform mlplatform infra platform sre security mobile web gateway storage compute "
    "networking observability devex release support partners marketplace ads recommendations "
    "media maps tax payouts lending cards treasury compliance kyc loyalty"
)
REPO_SUFFIXES = _words(
    "api worker web service jobs gateway sdk db consumer admin cli infra ui events scheduler"
)
MODULES = _words(
    "api db models handlers workers cache queue client server auth config metrics billing "
    "ledger accounts orders search index storage events jobs notifications email sms webhooks "
    "payments refunds invoices pricing tax fraud risk users sessions tokens crypto http grpc "
    "graphql schema migrations serializers validators utils common core domain adapters ports "
    "reports exports imports sync scheduler retry ratelimit flags experiments ml features "
    "pipelines etl streaming kafka rabbit redis postgres mysql s3 cdn frontend components "
    "pages hooks store styles i18n mobile ios android admin audit compliance kyc gdpr logging "
    "tracing health k8s helm terraform ci fixtures mocks tools scripts cli plugins pool"
)
SUBDIRS = ("", "", "db", "handlers", "models", "services", "utils", "api", "jobs", "internal")
FILES = _words(
    "__init__.py views.py models.py pool.py client.py service.py handlers.py utils.py "
    "schema.py tasks.py index.ts api.ts store.ts main.go handler.go config.yaml"
)
COMPONENT_WORDS = _words(
    "db-pool api frontend backend batch queue cache auth reporting sync webhooks "
    "mobile-app admin-ui search-index pipeline scheduler"
)
LABEL_WORDS = _words(
    "bug enhancement security performance database frontend breaking-change dependencies "
    "documentation hotfix infra needs-review db-migration refactor tests ci release backport "
    "good-first-issue tech-debt incident-followup customer-impact p1 p2 p3 api-change config "
    "observability feature-flag experiment mobile accessibility i18n privacy pii compliance "
    "cost caching auth connection-pool"
)
TAG_WORDS = _words(
    "database connection-pool security performance frontend caching auth pii compliance "
    "observability feature-flag retries timeouts idempotency migrations deploys rollback "
    "capacity dns tls secrets queues backpressure logging gdpr k8s terraform cost latency "
    "alerting on-call runbooks rate-limiting load-shedding circuit-breaker data-loss backups "
    "disaster-recovery schema-change indexes replication consistency concurrency race-condition "
    "memory-leak cpu disk network cdn third-party vendor-outage payments-provider "
    "webhooks clock-skew time-zones encoding unicode dependency-upgrade supply-chain "
    "access-control audit-log incident-response testing flaky-tests canary blue-green "
    "config-drift cron batch-jobs"
)
WORDS = _words(
    "the pool was sized for peak traffic but a deploy doubled the worker count and every pod "
    "opened its own connections until the database refused new sessions retries amplified "
    "load so check limits before scaling and add a budget alert when usage passes seventy "
    "percent of the configured maximum always verify rollback paths and document the owner"
)
JIRA_TYPES = ("Story", "Bug", "Task", "Epic", "Sub-task")
JIRA_TYPE_WEIGHTS = (45, 30, 18, 4, 3)
ORG = "acme"


def _zipf_cum(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))


def _pick(rnd: random.Random, vocab: Sequence[str], cum: list[float], k: int) -> tuple[str, ...]:
    """k distinct values drawn by the (cumulative) weights."""
    k = min(k, len(vocab))
    out: list[str] = []
    total = cum[-1]
    while len(out) < k:
        value = vocab[bisect.bisect(cum, rnd.random() * total)]
        if value not in out:
            out.append(value)
    return tuple(out)


def _text(rnd: random.Random, words: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(words))


# ── the synthetic organisation ─────────────────────────────────────────────────────────────


@dataclass
class Org:
    teams: list[str]
    repos: list[str]
    repo_team: dict[str, str]
    repo_modules: dict[str, list[str]]
    team_repos: dict[str, list[str]]
    components: list[str]
    team_components: dict[str, list[str]]
    jira_key: dict[str, str]
    labels: list[str]
    tags: list[str]
    label_cum: list[float] = field(default_factory=list)
    tag_cum: list[float] = field(default_factory=list)

    def services(self, team: str) -> list[str]:
        return [r.split("/", 1)[1] for r in self.team_repos[team]] + self.team_components[team]


def build_org(rnd: random.Random, n_rules: int) -> Org:
    n_teams = max(4, n_rules // 50)
    n_repos = max(n_teams, n_rules // 10)
    n_components = max(8, n_rules // 20)
    teams = [
        w if i < len(TEAM_WORDS) else f"{w}{i // len(TEAM_WORDS) + 1}"
        for i, w in ((i, TEAM_WORDS[i % len(TEAM_WORDS)]) for i in range(n_teams))
    ]
    repos: list[str] = []
    repo_team: dict[str, str] = {}
    repo_modules: dict[str, list[str]] = {}
    team_repos: dict[str, list[str]] = {t: [] for t in teams}
    for i in range(n_repos):
        team = teams[i % n_teams]
        suffix = REPO_SUFFIXES[(i // n_teams) % len(REPO_SUFFIXES)]
        n = i // (n_teams * len(REPO_SUFFIXES))
        repo = f"{ORG}/{team}-{suffix}" + (str(n + 1) if n else "")
        repos.append(repo)
        repo_team[repo] = team
        team_repos[team].append(repo)
        repo_modules[repo] = rnd.sample(MODULES, rnd.randint(3, 10))
    components: list[str] = []
    team_components: dict[str, list[str]] = {t: [] for t in teams}
    for i in range(n_components):
        team = teams[i % n_teams]
        word = COMPONENT_WORDS[(i // n_teams) % len(COMPONENT_WORDS)]
        n = i // (n_teams * len(COMPONENT_WORDS))
        component = f"{team}-{word}" + (str(n + 1) if n else "")
        components.append(component)
        team_components[team].append(component)
    jira_key: dict[str, str] = {}
    used: set[str] = set()
    for team in teams:
        base = "".join(ch for ch in team.upper() if ch.isalpha())[:3]
        key, n = base, 1
        while key in used:
            n += 1
            key = f"{base}{n}"
        used.add(key)
        jira_key[team] = key
    labels = list(LABEL_WORDS) + [f"area-{m}" for m in MODULES]
    labels += [f"kind-{i}" for i in range(200 - len(labels))]
    labels = labels[:200]
    tags = list(dict.fromkeys([*TAG_WORDS, *LABEL_WORDS, *MODULES]))
    tags += [f"topic-{i}" for i in range(500 - len(tags))]
    tags = tags[:500]
    return Org(
        teams=teams,
        repos=repos,
        repo_team=repo_team,
        repo_modules=repo_modules,
        team_repos=team_repos,
        components=components,
        team_components=team_components,
        jira_key=jira_key,
        labels=labels,
        tags=tags,
        label_cum=_zipf_cum(len(labels), 1.0),
        tag_cum=_zipf_cum(len(tags), 0.6),
    )


# ── lessons ────────────────────────────────────────────────────────────────────────────────

FORMS = list(LessonForm)
FORM_WEIGHTS = (50, 25, 15, 7, 3)
MANDATES = (Mandate.INVITED, Mandate.REVIEW_AND_JUSTIFY, Mandate.REQUIRED)
MANDATE_WEIGHTS = (75, 22, 3)
SEVERITY_RANKS = (None, None, None, 1, 2, 2, 3, 3, 3, 4, 4, 5)


def build_lessons(rnd: random.Random, org: Org, n_lessons: int) -> list[Lesson]:
    lessons = []
    captured = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n_lessons):
        team = rnd.choice(org.teams)
        tags = _pick(rnd, org.tags, org.tag_cum, rnd.choices((1, 2, 3, 4), (25, 35, 25, 15))[0])
        applicability: dict[str, Any] = {"tags": tags}
        mandate = rnd.choices(MANDATES, MANDATE_WEIGHTS)[0]
        # A required lesson is placed even past the fatigue budget, so authors scope it.
        roll = rnd.random() * (0.35 if mandate == Mandate.REQUIRED else 1)
        if roll < 0.15:
            applicability["services"] = tuple(rnd.sample(org.services(team), 1))
        elif roll < 0.27:
            repo = rnd.choice(org.team_repos[team])
            applicability["repos"] = (f"{ORG}/{team}-*",) if rnd.random() < 0.6 else (repo,)
        elif roll < 0.35:
            module = rnd.choice(org.repo_modules[rnd.choice(org.team_repos[team])])
            applicability["paths"] = (
                (f"src/{module}/**",) if rnd.random() < 0.7 else (f"**/{module}/**",)
            )
        elif roll < 0.40:
            applicability["teams"] = (team,)
        elif roll < 0.45:
            applicability["components"] = tuple(rnd.sample(org.team_components[team], 1))
        if rnd.random() < 0.05:
            exclusion = rnd.random()
            if exclusion < 0.4:
                applicability["exclusions"] = {"tags": ("legacy", rnd.choice(org.labels[:40]))}
            elif exclusion < 0.7:
                applicability["exclusions"] = {"repos": (rnd.choice(org.repos),)}
            else:
                applicability["exclusions"] = {"teams": (rnd.choice(org.teams),)}
        lessons.append(
            Lesson.model_validate(
                {
                    "id": f"lesson-{i:05d}",
                    "version": rnd.randint(1, 3),
                    "title": _text(rnd, 6),
                    "statement": _text(rnd, 40),
                    "form": rnd.choices(FORMS, FORM_WEIGHTS)[0],
                    "provenance": {
                        "source_incidents": (f"INC-{rnd.randint(1, 99999)}",),
                        "captured_by": f"user{rnd.randint(1, 2000)}",
                        "captured_at": captured + timedelta(hours=i),
                    },
                    "context": {"what_happened": _text(rnd, 50)},
                    "applicability": applicability,
                    "mandate": mandate,
                    "owner": team if rnd.random() < 0.8 else f"user{rnd.randint(1, 2000)}",
                    "status": LessonStatus.PUBLISHED,
                    "severity_rank": rnd.choice(SEVERITY_RANKS),
                }
            )
        )
    return lessons


# ── rules ──────────────────────────────────────────────────────────────────────────────────


class RuleMaker:
    """Builds rule dicts (as a YAML file would hold them) for the organisation."""

    def __init__(self, rnd: random.Random, org: Org, lessons: Sequence[Lesson]) -> None:
        self.rnd = rnd
        self.org = org
        self.lesson_ids = [lesson.id for lesson in lessons]
        self.kinds: Counter[str] = Counter()

    # Rule authors target specific topics and labels: uniform over the vocabularies (the
    # lessons' tags and the work items' labels are Zipf-skewed instead).
    def tags(self, k: int | None = None) -> tuple[str, ...]:
        return tuple(self.rnd.sample(self.org.tags, k or self.rnd.choice((1, 1, 1, 2, 2, 3))))

    def labels(self, k: int | None = None) -> tuple[str, ...]:
        return tuple(self.rnd.sample(self.org.labels, k or self.rnd.choice((1, 1, 2))))

    def lesson(self, team: str | None) -> dict[str, Any]:
        rnd, roll = self.rnd, self.rnd.random()
        if roll < 0.60:
            return {"tags": self.tags()}
        if roll < 0.75:
            return {"tags": self.tags(), "min_severity": rnd.choice(("critical", "high", "medium"))}
        if roll < 0.85 and team is not None:
            return {"owners": (team,), "tags": self.tags(1)}
        if roll < 0.90 and team is not None:
            return {"services": tuple(rnd.sample(self.org.services(team), 1))}
        if roll < 0.95:
            return {"ids": tuple(rnd.sample(self.lesson_ids, rnd.randint(1, 3)))}
        return {"tags": self.tags(), "mandates": ("required", "review_and_justify")}

    def action(self, system: str, pack: str) -> dict[str, Any]:
        rnd = self.rnd
        if system == "github":
            form = "github.pr_checklist"
        else:
            form = "jira.checklist" if rnd.random() < 0.7 else "jira.subtask"
        then: dict[str, Any] = {"form": form}
        due = rnd.choice((None, "3d", "7d", "14d", "2w"))
        if due:
            then["due"] = due
        roll = rnd.random()
        if roll < 0.05:
            then["mandate"] = "review_and_justify"
        if rnd.random() < 0.3:
            then["text"] = f"[{pack}] {{{{ lesson.title }}}}: {{{{ lesson.statement }}}}"
        return then

    def rule(
        self,
        number: int,
        kind: str,
        lesson: dict[str, Any],
        work_item: dict[str, Any],
        then: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any]:
        self.kinds[kind] += 1
        rule = {"id": f"{kind}-{number}", "lesson": lesson, "work_item": work_item, "then": then}
        if self.rnd.random() < 0.2:
            rule["priority"] = self.rnd.choice((50, 150, 200, 250))
        rule.update(extra)
        return rule

    def team_rule(self, team: str, pack: str, number: int) -> dict[str, Any]:
        rnd, org = self.rnd, self.org
        repo = rnd.choice(org.team_repos[team])
        module = rnd.choice(org.repo_modules[repo])
        roll = rnd.random()
        lesson = self.lesson(team)
        if roll < 0.28:
            paths = [f"src/{module}/**"] + ([f"tests/{module}/**"] if rnd.random() < 0.3 else [])
            return self.rule(
                number,
                "team-repo-paths",
                lesson,
                {"projects": (repo,), "paths": tuple(paths)},
                self.action("github", pack),
            )
        if roll < 0.38:
            return self.rule(
                number,
                "team-repo-labels",
                lesson,
                {"projects": (repo,), "labels": self.labels()},
                self.action("github", pack),
            )
        if roll < 0.43:
            return self.rule(
                number,
                "team-glob-paths",
                lesson,
                {"projects": (f"{ORG}/{team}-*",), "paths": (f"src/{module}/**",)},
                self.action("github", pack),
            )
        if roll < 0.50:
            return self.rule(
                number,
                "team-glob-team",
                lesson,
                {"projects": (f"{ORG}/{team}-*",), "teams": (team,)},
                self.action("github", pack),
            )
        if roll < 0.68:
            components = rnd.sample(org.team_components[team], min(2, rnd.randint(1, 2)))
            work: dict[str, Any] = {"systems": ("jira",), "components": tuple(components)}
            if rnd.random() < 0.6:
                work["types"] = tuple(rnd.sample(("Story", "Bug", "Task"), rnd.randint(1, 2)))
            return self.rule(number, "team-components", lesson, work, self.action("jira", pack))
        if roll < 0.78:
            return self.rule(
                number,
                "team-jira-team",
                lesson,
                {"teams": (team,), "types": tuple(rnd.sample(("Story", "Bug", "Task"), 2))},
                self.action("jira", pack),
            )
        if roll < 0.85:
            return self.rule(
                number,
                "team-jira-project",
                lesson,
                {"projects": (org.jira_key[team],), "types": (rnd.choice(("Story", "Bug")),)},
                self.action("jira", pack),
            )
        if roll < 0.90:
            return self.rule(
                number,
                "team-suppress",
                {"tags": self.tags(1)},
                {"teams": (team,)},
                {"suppress": True},
            )
        if roll < 0.92:
            then = self.action("github", pack)
            then["mandate"] = "required"
            return self.rule(
                number,
                "team-required",
                {"owners": (team,), "tags": self.tags(1), "min_severity": "critical"},
                {"projects": (repo,), "base_branches": ("main",)},
                then,
            )
        system = rnd.choice(("github", "jira"))
        return self.rule(
            number,
            "team-services",
            {"services": tuple(rnd.sample(org.services(team), 1))},
            {"teams": (team,)},
            self.action(system, pack),
        )

    def org_rule(self, pack: str, number: int) -> dict[str, Any]:
        rnd, org = self.rnd, self.org
        roll = rnd.random()
        lesson = self.lesson(None)
        system = "github" if rnd.random() < 0.6 else "jira"
        if roll < 0.40:
            return self.rule(
                number, "org-labels", lesson, {"labels": self.labels()}, self.action(system, pack)
            )
        if roll < 0.60:
            components = tuple(rnd.sample(org.components, rnd.randint(1, 3)))
            return self.rule(
                number,
                "org-components",
                lesson,
                {"components": components},
                self.action("jira", pack),
            )
        if roll < 0.80:
            return self.rule(
                number,
                "org-repos",
                lesson,
                {"projects": tuple(rnd.sample(org.repos, rnd.randint(1, 4)))},
                self.action("github", pack),
                override_applicability=rnd.random() < 0.1,
            )
        if roll < 0.90:
            keys = tuple(rnd.sample(sorted(org.jira_key.values()), rnd.randint(1, 3)))
            return self.rule(
                number,
                "org-jira-projects",
                lesson,
                {"projects": keys, "types": (rnd.choice(("Bug", "Story")),)},
                self.action("jira", pack),
            )
        team = rnd.choice(org.teams)
        return self.rule(
            number,
            "org-glob-labels",
            lesson,
            {"projects": (f"{ORG}/{team}-*",), "labels": self.labels(1)},
            self.action("github", pack),
        )

    def broad_rule(self, pack: str, number: int) -> dict[str, Any]:
        """The few organisation-wide rules every work item of a system is checked against."""
        variant = number % 4
        if variant == 0:
            return self.rule(
                number,
                "broad-severe-main",
                {"min_severity": "critical", "tags": self.tags(2)},
                {"base_branches": ("main",)},
                {"form": "github.pr_checklist", "mandate": "review_and_justify"},
                priority=150,
            )
        if variant == 1:
            return self.rule(
                number,
                "broad-db-paths",
                {"tags": ("database", "connection-pool"), "min_severity": "high"},
                {
                    "systems": ("github",),
                    "paths": ("src/**/db/**", "deploy/**", "**/migrations/**"),
                },
                {"form": "github.pr_checklist", "due": "7d"},
            )
        if variant == 2:
            return self.rule(
                number,
                "broad-jira-required",
                {"mandates": ("required",), "min_severity": "critical", "tags": self.tags(2)},
                {"systems": ("jira",), "types": ("Story", "Bug", "Task")},
                {"form": "jira.checklist", "due": "14d"},
            )
        return self.rule(
            number,
            "broad-security",
            {"tags": ("security", "secrets", "access-control"), "min_severity": "high"},
            {"systems": ("github",)},
            {"form": "github.pr_checklist"},
        )


def build_rule_set(
    rnd: random.Random, org: Org, lessons: Sequence[Lesson], n_rules: int
) -> tuple[RuleSet, Counter[str]]:
    maker = RuleMaker(rnd, org, lessons)
    n_broad = max(3, n_rules // 1000)
    n_org = max(n_broad + 1, int(n_rules * 0.15))
    n_team = n_rules - n_org
    org_pack_names = ["org-core", "org-security", "org-data", "org-reliability", "org-platform"]
    n_org_packs = max(1, min(len(org_pack_names), n_org // 100))
    org_rules: list[list[dict[str, Any]]] = [[] for _ in range(n_org_packs)]
    for i in range(n_org):
        pack = org_pack_names[i % n_org_packs]
        make = maker.broad_rule if i < n_broad else maker.org_rule
        org_rules[i % n_org_packs].append(make(pack, i))
    packs = []
    for j, rules in enumerate(org_rules):
        data: dict[str, Any] = {"pack": org_pack_names[j], "priority": 100, "rules": rules}
        if j == 0:
            data["budget"] = {"max_items_per_work_item": 5}
        packs.append(Pack.model_validate(data))
    team_rules: dict[str, list[dict[str, Any]]] = {t: [] for t in org.teams}
    for i in range(n_team):
        team = org.teams[i % len(org.teams)]
        team_rules[team].append(maker.team_rule(team, f"team-{team}", n_org + i))
    for team, rules in team_rules.items():
        if not rules:
            continue
        data = {
            "pack": f"team-{team}",
            "level": "team",
            "team": team,
            "priority": 100,
            "rules": rules,
        }
        if rnd.random() < 0.3:
            data["budget"] = {"max_items_per_work_item": rnd.randint(3, 6)}
        packs.append(Pack.model_validate(data))
    return RuleSet(packs=tuple(packs), version="bench"), maker.kinds


# ── work items ─────────────────────────────────────────────────────────────────────────────


def _path(rnd: random.Random, modules: Sequence[str]) -> str:
    roll = rnd.random()
    module = rnd.choice(modules)
    if roll < 0.75:
        sub = rnd.choice(SUBDIRS)
        return f"src/{module}/{sub + '/' if sub else ''}{rnd.choice(FILES)}"
    if roll < 0.85:
        return f"tests/{module}/test_{rnd.choice(FILES)}"
    if roll < 0.90:
        return f"deploy/{rnd.choice(('prod', 'staging', 'dev'))}/values.yaml"
    if roll < 0.94:
        return f"migrations/{rnd.randint(1, 9999):04d}_{module}.sql"
    if roll < 0.97:
        return f"docs/{module}.md"
    return rnd.choice((".github/workflows/ci.yml", "README.md", "pyproject.toml", "Makefile"))


def _n_paths(rnd: random.Random) -> int:
    roll = rnd.random()
    if roll < 0.50:
        return rnd.randint(1, 5)
    if roll < 0.80:
        return rnd.randint(6, 15)
    if roll < 0.95:
        return rnd.randint(16, 30)
    return rnd.randint(31, 50)


def build_items(rnd: random.Random, org: Org, n_items: int) -> list[WorkItem]:
    items = []
    for i in range(n_items):
        if rnd.random() < 0.6:
            repo = rnd.choice(org.repos)
            modules = org.repo_modules[repo]
            focus = rnd.sample(modules, min(len(modules), rnd.choice((1, 1, 2, 3))))
            n = _n_paths(rnd)
            paths: dict[str, None] = {}
            for _ in range(n * 3):
                if len(paths) >= n:
                    break
                paths[_path(rnd, focus)] = None
            n_labels = rnd.choices((0, 1, 2, 3, 4, 5), (30, 30, 20, 10, 6, 4))[0]
            branch = rnd.choices(("main", "develop", f"release/{rnd.randint(1, 40)}"), (85, 5, 10))
            items.append(
                WorkItem(
                    system=System.GITHUB,
                    ref=f"github:{repo}#{i + 1}",
                    project=repo,
                    type="pull_request",
                    title=_text(rnd, 7),
                    labels=_pick(rnd, org.labels, org.label_cum, n_labels) if n_labels else (),
                    changed_paths=tuple(paths),
                    base_branch=branch[0],
                    team=org.repo_team[repo] if rnd.random() < 0.9 else None,
                    assignee=f"user{rnd.randint(1, 2000)}",
                )
            )
        else:
            team = rnd.choice(org.teams)
            key = org.jira_key[team]
            n_components = rnd.choices((0, 1, 2), (20, 65, 15))[0]
            components = rnd.sample(org.team_components[team], min(n_components, 2))
            n_labels = rnd.choices((0, 1, 2, 3), (40, 35, 18, 7))[0]
            items.append(
                WorkItem(
                    system=System.JIRA,
                    ref=f"jira:{key}-{i + 1}",
                    project=key,
                    type=rnd.choices(JIRA_TYPES, JIRA_TYPE_WEIGHTS)[0],
                    title=_text(rnd, 7),
                    labels=_pick(rnd, org.labels, org.label_cum, n_labels) if n_labels else (),
                    components=tuple(components),
                    team=team if rnd.random() < 0.9 else None,
                    assignee=f"user{rnd.randint(1, 2000)}",
                )
            )
    return items


@dataclass
class World:
    org: Org
    rule_set: RuleSet
    lessons: list[Lesson]
    items: list[WorkItem]
    kinds: Counter[str]
    build_s: float


def build_world(n_rules: int, n_lessons: int, n_items: int, seed: int) -> World:
    start = time.perf_counter()
    rnd = random.Random(f"{seed}:{n_rules}:{n_lessons}")
    org = build_org(rnd, n_rules)
    lessons = build_lessons(rnd, org, n_lessons)
    rule_set, kinds = build_rule_set(rnd, org, lessons, n_rules)
    items = build_items(rnd, org, n_items)
    return World(org, rule_set, lessons, items, kinds, time.perf_counter() - start)


# ── the baselines ──────────────────────────────────────────────────────────────────────────
#
# What a competent engineer writes without an index: every rule is checked against every work
# item in turn, but nothing is worked out twice. Conditions are compiled once (globs to one
# regex per field, value lists to frozensets), each rule's lesson conditions are resolved to
# the lessons it selects once, and a lesson's applicability is tested at most once per work
# item. `rules.reference` is not a baseline: it is the specification, and the bench uses it
# only as the correctness oracle.


def form_systems(rule: Rule) -> frozenset[str]:
    """The systems whose work items a rule's form can go into: the form's own, and for
    `lms.assignment` also those in `work_item.systems` (work-driven training). Empty without a
    form."""
    form = rule.then.form
    if form is None:
        return frozenset()
    own = form.value.split(".", 1)[0]
    if form == EmbeddingForm.LMS_ASSIGNMENT:
        return frozenset({own, *(s.value for s in rule.work_item.systems)})
    return frozenset({own})


def _candidates(rule_set: RuleSet) -> list[Candidate]:
    """Every rule with its pack and file order, numbered as both evaluators number them."""
    order = itertools.count()
    return [Candidate(rule, pack, next(order)) for pack in rule_set.packs for rule in pack.rules]


class ItemView:
    """A work item's values as the conditions compare them, worked out once per work item."""

    __slots__ = (
        "branch",
        "components",
        "labels",
        "paths",
        "project",
        "services",
        "system",
        "team",
        "type",
    )

    def __init__(self, item: WorkItem) -> None:
        self.system = item.system.value
        self.project = normalise(item.project)
        self.paths = tuple(normalise(p) for p in item.changed_paths)
        self.labels = frozenset(item.labels)
        self.components = frozenset(item.components)
        self.type = item.type
        self.branch = item.base_branch
        self.team = item.team
        # A lesson's `services` match components, labels or the repository's name.
        self.services = self.labels | self.components | {self.project.rsplit("/", 1)[-1]}


class ScopeCheck:
    """A lesson's applicability (or its exclusions), compiled once."""

    __slots__ = ("components", "exclusions", "paths", "repos", "services", "tags", "teams")

    def __init__(self, scope: Scope, exclusions: Scope | None = None) -> None:
        self.services = frozenset(scope.services)
        self.components = frozenset(scope.components)
        self.repos = compile_globs(scope.repos)
        self.paths = compile_globs(scope.paths)
        self.teams = frozenset(scope.teams)
        self.tags = frozenset(scope.tags)
        no_exclusions = exclusions is None or exclusions == Scope()
        self.exclusions = None if no_exclusions else ScopeCheck(exclusions)

    def applies(self, w: ItemView) -> bool:
        """Every given field (tags aside) holds, and no exclusion does."""
        if self.services and self.services.isdisjoint(w.services):
            return False
        if self.components and self.components.isdisjoint(w.components):
            return False
        if self.teams and w.team not in self.teams:
            return False
        if self.repos is not None and self.repos.match(w.project) is None:
            return False
        if self.paths is not None and not any(self.paths.match(p) for p in w.paths):
            return False
        return self.exclusions is None or not self.exclusions.touches(w)

    def touches(self, w: ItemView) -> bool:
        """Any given field (tags included, against the labels) holds."""
        return bool(
            (self.services and not self.services.isdisjoint(w.services))
            or (self.components and not self.components.isdisjoint(w.components))
            or (self.teams and w.team in self.teams)
            or (self.tags and not self.tags.isdisjoint(w.labels))
            or (self.repos is not None and self.repos.match(w.project))
            or (self.paths is not None and any(self.paths.match(p) for p in w.paths))
        )


@dataclass(frozen=True, slots=True)
class _Facts:
    """What a rule's lesson conditions read of one lesson, as sets."""

    index: int
    tags: frozenset[str]
    services: frozenset[str]
    components: frozenset[str]
    lesson: Lesson


def _selected(condition: LessonCondition, facts: Sequence[_Facts]) -> tuple[int, ...]:
    """The lessons a rule's lesson conditions select, resolved once at build time."""
    c = condition
    pool: Sequence[_Facts] = facts
    if c.ids:
        ids = frozenset(c.ids)
        pool = [f for f in pool if f.lesson.id in ids]
    for wanted, field_of in (
        (c.tags, lambda f: f.tags),
        (c.services, lambda f: f.services),
        (c.components, lambda f: f.components),
    ):
        if wanted:
            values = frozenset(wanted)
            pool = [f for f in pool if not values.isdisjoint(field_of(f))]
    if c.forms:
        pool = [f for f in pool if f.lesson.form in c.forms]
    if c.mandates:
        pool = [f for f in pool if f.lesson.mandate in c.mandates]
    if c.owners:
        pool = [f for f in pool if f.lesson.owner in c.owners]
    if c.min_severity is not None:
        rank = c.min_severity.rank
        pool = [
            f for f in pool if f.lesson.severity_rank is not None and f.lesson.severity_rank <= rank
        ]
    return tuple(f.index for f in pool)


def _scope_check(a: Applicability) -> ScopeCheck | None:
    """A lesson's applicability compiled; None when it applies everywhere (tags alone do not
    constrain, and there are no exclusions)."""
    if a.services or a.components or a.repos or a.paths or a.teams or a.exclusions != Scope():
        return ScopeCheck(a, a.exclusions)
    return None


class LessonStep:
    """Lessons for the rules that matched, shared by both baselines: each rule's selected
    lessons were resolved once; a lesson's applicability is tested at most once per work item
    (a lesson with no applicability and no exclusions needs no test); then `rules.select`."""

    def __init__(self, rule_set: RuleSet, lessons: Sequence[Lesson]) -> None:
        self.rule_set = rule_set
        self.lessons = tuple(lessons)
        self.ids = [lesson.id for lesson in self.lessons]
        self.by_id = {lesson.id: lesson for lesson in self.lessons}
        facts = [
            _Facts(
                i,
                frozenset(x.applicability.tags),
                frozenset(x.applicability.services),
                frozenset(x.applicability.components),
                x,
            )
            for i, x in enumerate(self.lessons)
        ]
        self.scopes = [_scope_check(x.applicability) for x in self.lessons]
        self.selected = [_selected(c.rule.lesson, facts) for c in _candidates(rule_set)]
        self.default_budget = rule_set.team_budget(None).max_items_per_work_item
        self.budgets = {
            p.team: rule_set.team_budget(p.team).max_items_per_work_item
            for p in rule_set.packs
            if p.team is not None
        }

    def route(self, item: WorkItem, w: ItemView, matched: Iterable[Candidate]) -> Routing:
        found: dict[str, list[Candidate]] = {}
        applies: dict[int, bool] = {}
        scopes, ids = self.scopes, self.ids
        for candidate in matched:
            override = candidate.rule.override_applicability
            for k in self.selected[candidate.order]:
                if not override:
                    ok = applies.get(k)
                    if ok is None:
                        scope = scopes[k]
                        ok = applies[k] = scope is None or scope.applies(w)
                    if not ok:
                        continue
                found.setdefault(ids[k], []).append(candidate)
        return select(
            self.by_id,
            found,
            rule_set_version=self.rule_set.version,
            already_placed=(),
            budget=self.budgets.get(item.team, self.default_budget),
        )


class ScanRule:
    """One rule's work-item conditions, compiled once; checked cheapest first."""

    __slots__ = (
        "branches",
        "candidate",
        "components",
        "form_systems",
        "labels",
        "never",
        "pack_team",
        "paths",
        "projects",
        "systems",
        "teams",
        "types",
    )

    def __init__(self, candidate: Candidate) -> None:
        rule, pack = candidate.rule, candidate.pack
        c = rule.work_item
        form = rule.then.form
        self.candidate = candidate
        # A team pack speaks for its own team's work items only.
        self.pack_team = pack.team if pack.level == Level.TEAM else None
        self.form_systems = form_systems(rule)
        self.never = form == EmbeddingForm.GITHUB_PR_TEMPLATE  # placed per repository
        self.systems = frozenset(s.value for s in c.systems)
        self.projects = compile_globs(c.projects)
        self.paths = compile_globs(c.paths)
        self.labels = frozenset(c.labels)
        self.components = frozenset(c.components)
        self.types = frozenset(c.types)
        self.branches = frozenset(c.base_branches)
        self.teams = frozenset(c.teams)

    def matches(self, w: ItemView) -> bool:
        if self.never:
            return False
        if self.pack_team is not None and w.team != self.pack_team:
            return False
        if self.form_systems and w.system not in self.form_systems:
            return False
        if self.systems and w.system not in self.systems:
            return False
        if self.types and w.type not in self.types:
            return False
        if self.branches and w.branch not in self.branches:
            return False
        if self.teams and w.team not in self.teams:
            return False
        if self.labels and self.labels.isdisjoint(w.labels):
            return False
        if self.components and self.components.isdisjoint(w.components):
            return False
        if self.projects is not None and self.projects.match(w.project) is None:
            return False
        return self.paths is None or any(self.paths.match(p) for p in w.paths)


class LinearScan:
    """The competent plain scan: every rule's compiled conditions against the work item, in
    file order, no index; then `LessonStep`."""

    def __init__(self, rule_set: RuleSet, lessons: LessonStep) -> None:
        self.rules = [ScanRule(c) for c in _candidates(rule_set)]
        self.lessons = lessons
        self.matched = 0

    def route(self, item: WorkItem) -> Routing:
        w = ItemView(item)
        matched = [r.candidate for r in self.rules if r.matches(w)]
        self.matched += len(matched)
        return self.lessons.route(item, w, matched)


def _string(value: str) -> str:
    assert '"' not in value and "\\" not in value, value
    return f'"{value}"'


def _array(values: Sequence[str]) -> str:
    return "[" + ", ".join(_string(v) for v in values) + "]"


def _regex(patterns: Sequence[str]) -> str:
    compiled = compile_globs(patterns)
    assert compiled is not None and '"' not in compiled.pattern
    return f'r"{compiled.pattern}"'


def rule_expression(rule: Rule, pack_team: str | None = None) -> str:
    """A rule's work-item conditions in rule-engine's language, over a dict context (a team
    pack's rules also need the work item's team to be the pack's)."""
    parts: list[str] = []
    form = rule.then.form
    if form == EmbeddingForm.GITHUB_PR_TEMPLATE:
        return "false"
    systems = sorted(form_systems(rule))
    if len(systems) == 1:
        parts.append(f"system == {_string(systems[0])}")
    elif systems:
        parts.append(f"system in {_array(systems)}")
    if pack_team is not None:
        parts.append(f"team == {_string(pack_team)}")
    c = rule.work_item
    if c.systems:
        parts.append(f"system in {_array([s.value for s in c.systems])}")
    if c.projects:
        if all(is_literal(p) for p in c.projects):
            parts.append(f"project in {_array(c.projects)}")
        else:
            parts.append(f"project =~ {_regex(c.projects)}")
    if c.paths:
        parts.append(f"$any([p =~ {_regex(c.paths)} for p in paths])")
    if c.labels:
        parts.append(f"labels & {{{', '.join(_string(v) for v in c.labels)}}}")
    if c.components:
        parts.append(f"components & {{{', '.join(_string(v) for v in c.components)}}}")
    if c.types:
        parts.append(f"type in {_array(c.types)}")
    if c.base_branches:
        parts.append(f"base_branch in {_array(c.base_branches)}")
    if c.teams:
        parts.append(f"team in {_array(c.teams)}")
    return " and ".join(parts) or "true"


class RuleEngineLib:
    """All R rules compiled with the `rule-engine` library, evaluated one after another; the
    lessons for the matched rules resolved by the same `LessonStep` as the scan."""

    def __init__(self, rule_set: RuleSet, lessons: LessonStep) -> None:
        context = rule_engine.Context(resolver=rule_engine.resolve_item)
        self.candidates = _candidates(rule_set)
        self.rules = [
            rule_engine.Rule(
                rule_expression(c.rule, c.pack.team if c.pack.level == Level.TEAM else None),
                context=context,
            )
            for c in self.candidates
        ]
        self.pairs = list(zip(self.rules, self.candidates, strict=True))
        self.lessons = lessons
        self.matched = 0

    def route(self, item: WorkItem) -> Routing:
        w = ItemView(item)
        context = {
            "system": w.system,
            "project": w.project,
            "type": w.type,
            "base_branch": w.branch,
            "team": w.team,
            "labels": set(w.labels),
            "components": set(w.components),
            "paths": w.paths,
        }
        matched = [c for r, c in self.pairs if r.matches(context)]
        self.matched += len(matched)
        return self.lessons.route(item, w, matched)


# ── timing ─────────────────────────────────────────────────────────────────────────────────


@dataclass
class Timing:
    decisions: int
    cpu_s: float
    results: list[Routing]
    rounds: list[float] = field(default_factory=list)
    """decisions/s of each round, when timed in rounds."""

    def describe_rounds(self) -> str:
        if not self.rounds:
            return ""
        return f"; median of {len(self.rounds)} rounds: " + ", ".join(
            f"{eps:,.0f}" for eps in self.rounds
        )

    @property
    def eps(self) -> float:
        return self.decisions / self.cpu_s if self.cpu_s else float("nan")

    @property
    def us(self) -> float:
        return 1e6 * self.cpu_s / self.decisions


def timed(
    route: Callable[[WorkItem], Routing],
    items: Sequence[WorkItem],
    seconds: float,
    *,
    batch: int = 1,
    keep: bool = False,
    minimum: int = 0,
) -> Timing:
    """Route items (cycling) for at least `seconds` of CPU time and at least `minimum`
    decisions; at least one batch. `keep` keeps the routings of the first pass over `items`."""
    results: list[Routing] = []
    n = len(items)
    done = 0
    clock = time.process_time
    start = clock()
    while True:
        for k in range(done, done + batch):
            routing = route(items[k % n])
            if keep and k < n:
                results.append(routing)
        done += batch
        elapsed = clock() - start
        if elapsed >= seconds and done >= minimum:
            return Timing(done, elapsed, results)


def verify(
    name: str,
    engine: Engine,
    items: Sequence[WorkItem],
    results: list[Routing],
    route: Callable[[WorkItem], Routing],
    minimum: int,
) -> tuple[int, int, int]:
    """Assert `name`'s placements equal Cairn's; route extra items (untimed) up to `minimum`."""
    results = list(results)
    while len(results) < min(minimum, len(items)):
        results.append(route(items[len(results)]))
    with_placements = placed = 0
    for item, routing in zip(items, results, strict=False):
        expected = engine.route(item).placements
        if routing.placements != expected:
            print(f"MISMATCH {name} on {item.ref}:", file=sys.stderr)
            print(f"  cairn: {[(d.lesson_id, d.rule_id) for d in expected]}", file=sys.stderr)
            got = [(d.lesson_id, d.rule_id) for d in routing.placements]
            print(f"  {name}: {got}", file=sys.stderr)
        assert routing.placements == expected, f"{name} disagrees with Cairn on {item.ref}"
        with_placements += bool(expected)
        placed += len(expected)
    return len(results), with_placements, placed


def check_oracle(
    rule_set: RuleSet, lessons: Sequence[Lesson], engine: Engine, items: Sequence[WorkItem], n: int
) -> tuple[int, float]:
    """Assert the specification (`rules.reference.route`, every rule against every lesson, one
    condition at a time) places what Cairn places on the first `n` work items. Returns the items
    checked and its CPU seconds per decision (context, not a baseline)."""
    n = min(n, len(items))
    cpu = 0.0
    for item in items[:n]:
        start = time.process_time()
        got = reference.route(rule_set, lessons, item).placements
        cpu += time.process_time() - start
        assert got == engine.route(item).placements, f"rules.reference disagrees on {item.ref}"
    return n, cpu / n if n else float("nan")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ── reporting ──────────────────────────────────────────────────────────────────────────────


def describe_world(world: World, engine: Engine) -> dict[str, Any]:
    """Print the generator's assumptions so a reader can judge whether they are realistic."""
    org, items, lessons = world.org, world.items, world.lessons
    prs = [i for i in items if i.system == System.GITHUB]
    jira = [i for i in items if i.system == System.JIRA]
    tag_counts = Counter(t for lesson in lessons for t in lesson.applicability.tags)
    restricted = sum(
        1
        for lesson in lessons
        if any(
            getattr(lesson.applicability, f) for f in ("services", "components", "repos", "paths")
        )
        or lesson.applicability.teams
    )
    excluded = sum(1 for lesson in lessons if lesson.applicability.exclusions != Scope())
    packs = world.rule_set.packs
    team_packs = sum(1 for p in packs if p.level == Level.TEAM)
    org_rules = sum(len(p.rules) for p in packs if p.level == Level.ORGANISATION)
    print(
        f"organisation: {len(org.teams)} teams, {len(org.repos)} repos "
        f"({len(org.repos) / len(org.teams):.1f}/team, 3-10 src modules each from "
        f"{len(MODULES)}), {len(org.components)} components, {len(org.jira_key)} Jira projects, "
        f"{len(org.labels)} labels, {len(org.tags)} tags (work items' labels Zipf s=1, lessons' "
        "tags Zipf s=0.6, rules' labels and tags uniform)"
    )
    print(
        f"rules: {sum(len(p.rules) for p in packs)} in {len(packs) - team_packs} organisation "
        f"packs ({org_rules} rules) + {team_packs} team packs; kinds: "
        + ", ".join(f"{k} {v}" for k, v in sorted(world.kinds.items(), key=lambda kv: -kv[1]))
    )
    per_tag = sorted(tag_counts.values())
    mean_tags = statistics.mean(len(x.applicability.tags) for x in lessons)
    print(
        f"lessons: {len(lessons)} published, {mean_tags:.1f} tags each; lessons per tag "
        f"median {statistics.median(per_tag):.0f}, max {per_tag[-1]}; "
        f"{100 * restricted / len(lessons):.0f}% restrict applicability "
        f"(services/repos/paths/teams/components), "
        f"{100 * excluded / len(lessons):.0f}% have exclusions"
    )
    print(
        f"work items: {len(items)} pre-generated: {len(prs)} PRs "
        f"(changed paths mean {statistics.mean(len(i.changed_paths) for i in prs):.1f}, "
        f"max {max(len(i.changed_paths) for i in prs)}; labels mean "
        f"{statistics.mean(len(i.labels) for i in prs):.1f}; "
        f"base main {100 * sum(i.base_branch == 'main' for i in prs) / len(prs):.0f}%), "
        f"{len(jira)} Jira issues (components mean "
        f"{statistics.mean(len(i.components) for i in jira):.1f}, labels mean "
        f"{statistics.mean(len(i.labels) for i in jira):.1f})"
    )
    stats = route_stats(engine, items[:500])
    if stats:
        print(
            f"per work item (Cairn, {stats['sample']} items): rules touched via index "
            f"{stats['touched']:.1f}, rules matched {stats['matched']:.1f}, "
            f"candidate lessons {stats['candidates']:.1f}, placements {stats['placements']:.2f} "
            f"(max {stats['max_placements']}); engine {engine.size}; biggest buckets "
            + ", ".join(f"{k[0]}:{k[1]}={n}" for k, n in stats["buckets"])
        )
    return stats


def route_stats(engine: Engine, items: Sequence[WorkItem]) -> dict[str, Any]:
    """Index diagnostics: rules proposed by the index, rules matched, candidate lessons."""
    touched = matched = candidates = 0
    for item in items:
        proposed, hit = engine.matched_rules(item)
        touched += proposed
        matched += len(hit)
        candidates += len(set().union(*(engine.rule_members(n) for n in hit)))
    placements = [len(engine.route(item).placements) for item in items]
    n = len(items)
    return {
        "sample": n,
        "touched": touched / n,
        "matched": matched / n,
        "candidates": candidates / n,
        "placements": sum(placements) / n,
        "max_placements": max(placements),
        "buckets": engine.biggest_buckets(4),
    }


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 1) if value >= 100 else float(f"{value:.3g}")


def profile_cairn(engine: Engine, items: Sequence[WorkItem], n: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for k in range(n):
        engine.route(items[k % len(items)])
    profiler.disable()
    print(f"\ncProfile of engine.route over {n} work items (top 20 by own time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(20)


def build_engine(world: World, engine_class: type[Engine] = Engine) -> tuple[Engine, float]:
    start = time.process_time()
    engine = engine_class(world.rule_set, world.lessons)
    return engine, time.process_time() - start


ROUNDS = 5


def first_pass(route: Callable[[WorkItem], Routing], items: Sequence[WorkItem]) -> Timing:
    """Every work item routed once by a new engine: what an engine costs while its memos fill
    (every context, folder and label seen for the first time). Warms it for `timed_rounds`."""
    return timed(route, items, 0.0, batch=len(items))  # one batch of every item, then stop


def timed_rounds(
    route: Callable[[WorkItem], Routing], items: Sequence[WorkItem], seconds: float
) -> Timing:
    """`timed` in `ROUNDS` rounds of equal CPU time, reporting the median round: a spell of
    background load on a shared machine then moves the figure less than it moves one long run.
    Every round's figure is kept, so the spread is on record too."""
    samples = [timed(route, items, seconds / ROUNDS, batch=50) for _ in range(ROUNDS)]
    middle = sorted(samples, key=lambda t: t.us)[ROUNDS // 2]
    return Timing(middle.decisions, middle.cpu_s, [], rounds=[t.eps for t in samples])


def time_source_engine(world: World, seconds: float) -> Timing | None:
    """The pure-Python source engine on the same work items, when the installed one is the
    compiled build (None otherwise: the installed engine is the source)."""
    if native.build() != "compiled":
        return None
    source = native.load_source()
    engine, _ = build_engine(world, source.Engine)
    first = first_pass(engine.route, world.items)  # as for the installed engine
    timing = timed_rounds(engine.route, world.items, seconds)
    print(
        f"cairn engine, pure-Python source: {timing.eps:,.0f} decisions/s "
        f"({timing.us:.1f} µs/decision{timing.describe_rounds()}); "
        f"first pass {first.eps:,.0f} decisions/s"
    )
    return timing


def run_scaling(args: argparse.Namespace) -> dict[str, Any]:
    """Cairn only at R = 1,000 and 10,000 (L fixed): µs per decision and its ratio.

    Both engines are built first and then timed in alternating rounds, so a change in the
    machine's background load affects both sizes alike; each size's cost is the median round.
    """
    rounds = 5
    built: dict[int, tuple[World, Engine]] = {}
    compile_s: dict[int, float] = {}
    for n_rules in (1_000, 10_000):
        world = build_world(n_rules, args.lessons, args.items, args.seed)
        engine, compile_s[n_rules] = build_engine(world)
        built[n_rules] = (world, engine)
        print(f"\n== R={n_rules:,} L={args.lessons:,} (built in {world.build_s:.1f}s) ==")
        describe_world(world, engine)
        print(f"cairn: compile {compile_s[n_rules]:.2f}s CPU")
        first_pass(engine.route, world.items)
    samples: dict[int, list[Timing]] = {n: [] for n in built}
    for _ in range(rounds):
        for n_rules, (world, engine) in built.items():
            samples[n_rules].append(
                timed(engine.route, world.items, args.seconds / rounds, batch=50)
            )
    cost = {n: statistics.median(t.us for t in ts) for n, ts in samples.items()}
    print()
    for n_rules, timings in samples.items():
        decisions = sum(t.decisions for t in timings)
        print(
            f"cairn R={n_rules:,}: {1e6 / cost[n_rules]:,.0f} decisions/s "
            f"({cost[n_rules]:.1f} µs/decision, median of {rounds} rounds: "
            + ", ".join(f"{t.us:.0f}" for t in timings)
            + f" µs; {decisions:,} decisions)"
        )
    ratio = cost[10_000] / cost[1_000]
    print(
        f"cost ratio R=10k/R=1k: {ratio:.2f}× "
        f"({cost[1_000]:.1f} → {cost[10_000]:.1f} µs/decision); target ≤ 2×: "
        f"{'met' if ratio <= 2 else 'MISSED'}"
    )
    return {
        "bench": "rules",
        "rules": 10_000,
        "lessons": args.lessons,
        "cairn_eps": _round(1e6 / cost[10_000]),
        "engine_build": native.build(),
        "scan_eps": None,
        "rule_engine_eps": None,
        "rss_mb": round(rss_mb(), 1),
        "cost_ratio_1k_10k": round(ratio, 3),
        "cairn_eps_1k": _round(1e6 / cost[1_000]),
        "us_per_decision_1k": round(cost[1_000], 2),
        "us_per_decision_10k": round(cost[10_000], 2),
        "compile_s_1k": round(compile_s[1_000], 3),
        "compile_s": round(compile_s[10_000], 3),
        "clock": "process_time",
        "seed": args.seed,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    world = build_world(args.rules, args.lessons, args.items, args.seed)
    print(
        f"bench rules: R={args.rules:,} L={args.lessons:,} seed={args.seed} "
        f"(world built in {world.build_s:.1f}s; clock: time.process_time, one thread; "
        f"engine build: {native.build()})"
    )
    engine, compile_s = build_engine(world)
    rss_cairn = rss_mb()
    items = world.items
    first = first_pass(engine.route, items)
    stats = describe_world(world, engine)

    cairn = timed_rounds(engine.route, items, args.seconds)
    print(
        f"cairn engine ({native.build()}): compile {compile_s:.2f}s CPU; "
        f"{cairn.eps:,.0f} decisions/s "
        f"({cairn.us:.1f} µs/decision{cairn.describe_rounds()}); "
        f"first pass over {len(items):,} work items {first.eps:,.0f} decisions/s; "
        f"peak RSS after compile {rss_cairn:.0f} MB"
    )
    if args.profile:
        profile_cairn(engine, items, args.profile)

    start = time.process_time()
    lesson_step = LessonStep(world.rule_set, world.lessons)
    lessons_s = time.process_time() - start
    start = time.process_time()
    scan = LinearScan(world.rule_set, lesson_step)
    scan_compile_s = time.process_time() - start
    start = time.process_time()
    library = RuleEngineLib(world.rule_set, lesson_step)
    library_compile_s = time.process_time() - start
    print(
        f"baselines' shared lesson step (each rule's lessons selected, applicability compiled): "
        f"built in {lessons_s:.2f}s CPU"
    )
    peak = rss_mb()

    budget = {"seconds": args.baseline_seconds, "minimum": args.baseline_decisions, "keep": True}
    scan_t = timed(scan.route, items, **budget)
    print(
        f"competent linear scan (every rule checked in turn, no index; conditions compiled once, "
        f"each rule's lessons selected once, applicability cached per work item): "
        f"rules compiled in {scan_compile_s:.2f}s CPU; {scan_t.eps:,.1f} decisions/s "
        f"({scan_t.us / 1000:,.2f} ms/decision over {scan_t.decisions:,} decisions, "
        f"{scan_t.cpu_s:.1f}s CPU; {scan.matched / scan_t.decisions:.1f} rules matched/item)"
    )
    lib_t = timed(library.route, items, **budget)
    print(
        f"rule-engine library (R rules as rule_engine.Rule, evaluated in turn; lessons as in the "
        f"scan): rules compiled in {library_compile_s:.2f}s CPU; {lib_t.eps:,.1f} decisions/s "
        f"({lib_t.us / 1000:,.2f} ms/decision over {lib_t.decisions:,} decisions, "
        f"{lib_t.cpu_s:.1f}s CPU; {library.matched / lib_t.decisions:.1f} rules matched/item)"
    )
    checked_scan = verify("scan", engine, items, scan_t.results, scan.route, args.verify)
    checked_lib = verify("rule-engine", engine, items, lib_t.results, library.route, args.verify)
    verified = min(checked_scan[0], checked_lib[0])
    # Both lists start at the first work item: the shorter one's counts are the common items'.
    _, nonempty, placed = checked_scan if checked_scan[0] == verified else checked_lib
    print(
        f"verified: placements equal Cairn's for the competent scan on {checked_scan[0]:,} work "
        f"items and for rule-engine on {checked_lib[0]:,}, so all three agree on the same first "
        f"{verified:,} ({nonempty} with placements, {placed} placements)"
    )
    oracle_n, reference_s = check_oracle(world.rule_set, world.lessons, engine, items, args.oracle)
    print(
        f"oracle: rules.reference.route (the specification: every rule × every lesson, nothing "
        f"compiled; a correctness check, not a speed baseline) places what Cairn places on "
        f"{oracle_n} work items ({reference_s:,.2f}s CPU per decision)"
    )
    speedup = cairn.eps / scan_t.eps
    speedup_lib = cairn.eps / lib_t.eps
    print(
        f"speed-up: Cairn {speedup:,.0f}× the competent linear scan, {speedup_lib:,.0f}× the "
        f"rule-engine library (Cairn's median round vs each baseline's "
        f"{args.baseline_seconds:g}s+ run, same work items, one core)"
    )
    targets = (
        ("≥ 20,000 decisions/s", cairn.eps >= 20_000, f"{cairn.eps:,.0f}"),
        ("≥ 10× the competent linear scan", speedup >= 10, f"{speedup:,.0f}×"),
        ("RSS < 300 MB", peak < 300, f"{peak:.0f} MB (after Cairn compile {rss_cairn:.0f} MB)"),
    )
    for name, ok, value in targets:
        print(f"target {name}: {'met' if ok else 'MISSED'} ({value})")
    source = time_source_engine(world, args.seconds)  # after the peak RSS above is taken
    return {
        "bench": "rules",
        "rules": args.rules,
        "lessons": args.lessons,
        "cairn_eps": _round(cairn.eps),
        "cairn_eps_rounds": [_round(eps) for eps in cairn.rounds],
        "cairn_first_pass_eps": _round(first.eps),
        "engine_build": native.build(),
        "cairn_python_eps": _round(source.eps if source else cairn.eps),
        "scan": "competent",
        "scan_eps": _round(scan_t.eps),
        "scan_decisions": scan_t.decisions,
        "scan_build_s": round(scan_compile_s + lessons_s, 3),
        "lesson_step_build_s": round(lessons_s, 3),
        "rule_engine_eps": _round(lib_t.eps),
        "rule_engine_decisions": lib_t.decisions,
        "rss_mb": round(peak, 1),
        "compile_s": round(compile_s, 3),
        "rule_engine_compile_s": round(library_compile_s, 3),
        "rss_after_cairn_mb": round(rss_cairn, 1),
        "speedup_vs_scan": round(speedup, 1),
        "speedup_vs_rule_engine": round(speedup_lib, 1),
        "avg_matched_rules": round(stats["matched"], 2) if stats else None,
        "avg_placements": round(stats["placements"], 3) if stats else None,
        "verified_items": verified,
        "oracle_items": oracle_n,
        "reference_s_per_decision": round(reference_s, 3),
        "clock": "process_time",
        "seed": args.seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules", type=int, default=10_000, help="R (default 10,000)")
    parser.add_argument("--lessons", type=int, default=10_000, help="L (default 10,000)")
    parser.add_argument("--seconds", type=float, default=3.0, help="CPU seconds per evaluator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--items", type=int, default=2_000, help="pre-generated work items")
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        default=5.0,
        help="CPU seconds each baseline is timed for, at least (default 5)",
    )
    parser.add_argument(
        "--baseline-decisions",
        type=int,
        default=30,
        help="decisions each baseline is timed on, at least (default 30)",
    )
    parser.add_argument(
        "--verify", type=int, default=200, help="work items all three must agree on (default 200)"
    )
    parser.add_argument(
        "--oracle",
        type=int,
        default=10,
        help="work items checked against rules.reference, the specification (default 10)",
    )
    parser.add_argument("--scaling", action="store_true", help="Cairn only, R=1k and R=10k")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="cProfile engine.route over N work items",
    )
    args = parser.parse_args()
    result = run_scaling(args) if args.scaling else run(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
