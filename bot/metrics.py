"""Prometheus metrics, one registry per bot so several bots in one process stay apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .protocol import OutcomeRecord

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Event names come from workflows: a replica labels the first this many it sees, later ones "other", so
# a workflow that names each event differently cannot grow /metrics without bound.
DECISION_EVENT_NAMES = 50
OTHER_EVENTS = "other"
_NAME_CHARS = 100


class Metrics:
    """What an operator watches: event flow, answer latency, handler latency, failed posts, the reconciler."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.announced = Counter(
            "hitl_events_announced", "Events posted to chat (notify or reconciler)", registry=self.registry
        )
        self.answered = Counter("hitl_events_answered", "Events answered", ["via"], registry=self.registry)
        self.expired = Counter(
            "hitl_events_expired", "Events closed unanswered at their deadline", registry=self.registry
        )
        self.cancelled = Counter("hitl_events_cancelled", "Events cancelled before an answer", registry=self.registry)
        self.refused = Counter("hitl_answers_refused", "Answers refused, by reason", ["reason"], registry=self.registry)
        self.answer_latency = Histogram(
            "hitl_answer_latency_seconds",
            "Time from event creation to its answer",
            buckets=(5, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600),
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "hitl_decision_seconds",
            "Time from event creation to its outcome, by event name (the first 50 a replica sees, then "
            "other) and outcome (completed, rejected, expired, defaulted, cancelled)",
            ["event_name", "outcome"],
            buckets=(5, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
            registry=self.registry,
        )
        self._event_names: set[str] = set()
        self.handler_latency = Histogram(
            "hitl_http_handler_seconds",
            "Time to handle an HTTP request, by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.update_failures = Counter(
            "hitl_message_update_failures",
            "Chat posts or updates that failed",
            ["platform", "step"],
            registry=self.registry,
        )
        self.reconciler_replicas = Gauge(
            "hitl_reconciler_replicas",
            "Replicas taking reconciler turns, as this replica counts them (fresh heartbeats)",
            registry=self.registry,
        )
        self.reconciler_last_pass = Gauge(
            "hitl_reconciler_last_pass_timestamp_seconds",
            "When this replica last finished a reconciler pass (Unix time; 0: never)",
            registry=self.registry,
        )

    def decided(self, record: OutcomeRecord) -> None:
        """Count an outcome this replica wrote in `hitl_decision_seconds` (once per outcome: its writer)."""
        if (seconds := record.seconds) is not None:
            self.decision_seconds.labels(self._event_label(record.event_name), record.result).observe(max(seconds, 0))

    def _event_label(self, name: str) -> str:
        name = name[:_NAME_CHARS]
        if name not in self._event_names and len(self._event_names) < DECISION_EVENT_NAMES:
            self._event_names.add(name)
        return name if name in self._event_names else OTHER_EVENTS

    def render(self) -> bytes:
        return generate_latest(self.registry)
