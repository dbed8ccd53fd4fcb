"""Prometheus metrics, one registry per running app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """The counters the operator watches: inbound events, handler latency, pipeline lag, outbox depth, errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inbound = Counter(
            "salesbot_inbound_events",
            "Inbound events by channel, kind and result (accepted, duplicate, rejected).",
            ["channel", "kind", "result"],
            registry=self.registry,
        )
        self.handler_latency = Histogram(
            "salesbot_handler_seconds",
            "Time to handle one inbound event (load state, route, handler, commit).",
            ["handler"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.outbox_depth = Gauge(
            "salesbot_outbox_depth",
            "Outbox rows not yet delivered, by status.",
            ["status"],
            registry=self.registry,
        )
        self.outbox_sent = Counter(
            "salesbot_outbox_delivered",
            "Outbox deliveries by channel and result.",
            ["channel", "result"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "salesbot_escalations",
            "Escalation notices, reminders, snoozes, reassignments and take-overs, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.errors = Counter("salesbot_errors", "Unexpected errors by place.", ["where"], registry=self.registry)
        # Lag: alert on the gauge (it grows while handling falls behind); the histogram says which stage is slow.
        self.pipeline_oldest = Gauge(
            "salesbot_pipeline_lag_seconds",
            "Age of the oldest accepted inbound event not yet handled (0 when none waits).",
            registry=self.registry,
        )
        self.pipeline_lag = Histogram(
            "salesbot_pipeline_delay_seconds",
            "Per stage: received -> handled (event committed as done), handled -> delivered (outbox row sent).",
            ["stage"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )

        self.platform_api_calls = Gauge(
            "salesbot_platform_api_calls",
            "API calls made to a platform this month (DingTalk counts them against the org's monthly quota).",
            ["channel"],
            registry=self.registry,
        )
        self.platform_api_quota = Gauge(
            "salesbot_platform_api_quota",
            "The platform's monthly API call quota as configured ([dingtalk] monthly_call_quota).",
            ["channel"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
