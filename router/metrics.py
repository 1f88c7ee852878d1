"""Prometheus metrics: webhook deliveries, pipeline outcomes and the outbox by status."""

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


def render(db: Database) -> bytes:
    """The exposition text for `/metrics`."""
    registry = CollectorRegistry()
    registry.register(OutboxCollector(db))
    return generate_latest(REGISTRY) + generate_latest(registry)
