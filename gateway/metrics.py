"""Prometheus metrics of one gateway, in its own registry (no process-global state).

Served at `/metrics` in the Prometheus text format: messages in/out, turn latency, model calls,
tokens (in all and by purpose), errors, queue depth per platform, undelivered messages and live sessions,
and for the cluster: which duties this process owns (`hermes_duty_owned{duty}` 1/0), whether it is
the leader, and how often it took a duty over from another process (`hermes_duty_handovers_total`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter("hermes_messages_in", "Inbound messages accepted", ["platform"], registry=r)
        self.messages_out = Counter("hermes_messages_out", "Messages delivered", ["platform"], registry=r)
        self.turn_seconds = Histogram("hermes_turn_seconds", "Agent turn latency", ["platform"],
                                      buckets=TURN_BUCKETS, registry=r)
        self.model_calls = Counter("hermes_model_calls", "Model calls", ["model"], registry=r)
        self.tokens = Counter("hermes_tokens", "Model tokens", ["kind"], registry=r)
        self.purpose_tokens = Counter("hermes_purpose_tokens", "Model tokens by X-Hermes-Purpose (chat, checkpoint, "
                                      "compress, cron, batch, delegate)", ["purpose", "kind"], registry=r)
        self.errors = Counter("hermes_errors", "Errors", ["kind"], registry=r)
        self.queue_depth = Gauge("hermes_queue_depth", "Messages waiting for their session", ["platform"],
                                 registry=r)
        self.undelivered = Counter("hermes_undelivered", "Messages kept after delivery failed", ["platform"],
                                   registry=r)
        self.active_sessions = Gauge("hermes_active_sessions", "Sessions with a turn running or queued",
                                     registry=r)
        self.duplicates = Counter("hermes_duplicates_dropped", "Redelivered inbound events dropped",
                                  ["platform"], registry=r)
        self.duty_owned = Gauge("hermes_duty_owned", "1 while this process owns the duty (runs it for the cluster)",
                                ["duty"], registry=r)
        self.leader = Gauge("hermes_cluster_leader", "1 while this process is the cluster's leader", registry=r)
        self.handovers = Counter("hermes_duty_handovers", "Duties this process took over from another process",
                                 ["duty"], registry=r)

    def record_usage(self, purpose: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Count one model call's tokens, in all and by purpose."""
        self.model_calls.labels(model).inc()
        self.tokens.labels("prompt").inc(prompt_tokens)
        self.tokens.labels("completion").inc(completion_tokens)
        self.purpose_tokens.labels(purpose, "prompt").inc(prompt_tokens)
        self.purpose_tokens.labels(purpose, "completion").inc(completion_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
