"""Prometheus metrics, one registry per bot so several bots in one process stay apart."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
