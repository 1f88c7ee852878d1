"""Prometheus metrics: deliveries, stage latencies, the queue, outbound calls, the rules in force.

Counters and histograms count what this process did; the collectors read the database at
scrape time, so every replica reports the same queue.
"""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.base import utcnow
from router.ruleset.active import ActiveRules
from store import outbox
from store.engine import Database
from store.tables import OutboxRow

REGISTRY = CollectorRegistry(auto_describe=True)

DELIVERIES = Counter(
    "cairn_webhook_deliveries",
    "Webhook deliveries by source and answer (accepted, duplicate, or the 4xx status).",
    ["source", "outcome"],
    registry=REGISTRY,
)
MESSAGES = Counter(
    "cairn_pipeline_messages",
    "Pipeline message deliveries handled by this process, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_SECONDS = Histogram(
    "cairn_stage_seconds",
    "Time a stage phase took (handle; or prepare, perform and record for outside calls).",
    ["topic", "phase"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
MESSAGE_AGE = Histogram(
    "cairn_message_age_seconds",
    "How long a message waited in the outbox before a stage started it (retries included).",
    ["topic"],
    buckets=(*_SECONDS, 300.0, 900.0, 3600.0),
    registry=REGISTRY,
)
OUTBOUND_CALLS = Counter(
    "cairn_outbound_calls",
    "Calls to outside systems by connector and result (ok, or failed after any retries).",
    ["connector", "result"],
    registry=REGISTRY,
)
RATE_LIMIT_WAITS = Counter(
    "cairn_rate_limit_waits",
    "Waits before retrying an outside call that was rate limited or failed, by connector.",
    ["connector"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "cairn_rate_limit_wait_seconds",
    "Seconds slept before retrying outside calls, by connector.",
    ["connector"],
    registry=REGISTRY,
)
PLACEMENTS = Counter(
    "cairn_placements",
    "Placements written by this process, by form and the state they entered.",
    ["form", "state"],
    registry=REGISTRY,
)
SIGNALS = Counter(
    "cairn_signals",
    "Back-channel signals recorded by this process, by kind.",
    ["kind"],
    registry=REGISTRY,
)


class QueueCollector(Collector):
    """Messages waiting per topic, and the age of the oldest of them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[Metric]:
        """`cairn_queue_depth{topic}` and `cairn_queue_oldest_age_seconds{topic}`."""
        depth = GaugeMetricFamily(
            "cairn_queue_depth", "Messages not yet done or dead, by topic.", labels=["topic"]
        )
        oldest = GaugeMetricFamily(
            "cairn_queue_oldest_age_seconds",
            "Age of the oldest message not yet done or dead, by topic.",
            labels=["topic"],
        )
        waiting = (outbox.MessageStatus.PENDING, outbox.MessageStatus.LEASED)
        query = (
            select(OutboxRow.topic, func.count(), func.min(OutboxRow.created_at))
            .where(OutboxRow.status.in_(waiting))
            .group_by(OutboxRow.topic)
        )
        now = utcnow()
        with self.db.transaction() as session:
            for topic, count, created_at in session.execute(query):
                depth.add_metric([topic], int(count))
                oldest.add_metric([topic], max(0.0, (now - created_at).total_seconds()))
        yield depth
        yield oldest


class OutboxCollector(Collector):
    """Reads the outbox counts at scrape time, so every replica reports the shared truth."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[Metric]:
        """One gauge sample per message status."""
        gauge = GaugeMetricFamily(
            "cairn_outbox_messages", "Pipeline messages in the outbox by status.", labels=["status"]
        )
        with self.db.transaction() as session:
            for status, count in outbox.counts(session).items():
                gauge.add_metric([status], count)
        yield gauge


class RulesCollector(Collector):
    """The rule set in force, and whether the rule files on disk currently fail to load."""

    def __init__(self, rules: ActiveRules) -> None:
        self.rules = rules

    def collect(self) -> Iterable[Metric]:
        """`cairn_rules_info{version}` and `cairn_rules_reload_failing`."""
        info = GaugeMetricFamily(
            "cairn_rules_info", "The rule-set version in force (value 1).", labels=["version"]
        )
        if self.rules.version is not None:
            info.add_metric([self.rules.version], 1)
        yield info
        yield GaugeMetricFamily(
            "cairn_rules_reload_failing",
            "1 while the rule files on disk do not load (the previous version stays in force).",
            value=0 if self.rules.last_error is None else 1,
        )


def render(db: Database, rules: ActiveRules) -> bytes:
    """The exposition text for `/metrics`."""
    registry = CollectorRegistry()
    registry.register(OutboxCollector(db))
    registry.register(QueueCollector(db))
    registry.register(RulesCollector(rules))
    return generate_latest(REGISTRY) + generate_latest(registry)
