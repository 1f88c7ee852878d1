"""Prometheus metrics: webhook deliveries, pipeline outcomes, the outbox, the rules in force."""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.ruleset.active import ActiveRules
from store import outbox
from store.engine import Database

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
    registry.register(RulesCollector(rules))
    return generate_latest(REGISTRY) + generate_latest(registry)
