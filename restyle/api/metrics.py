"""Prometheus metrics, one ``CollectorRegistry`` per app.

A registry per app (instead of prometheus-client's global one) lets tests
and benchmarks build many apps in one process without "duplicated
timeseries" errors, and keeps what ``/metrics`` shows to this app alone.
Route labels are route *templates* (``/v1/styles/{name}/preview``), never
raw paths, so a scanner probing random URLs cannot blow up cardinality.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Requests range from a 1 ms health probe to a multi-second 4K stylization on a CPU.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
INFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The app's instruments; create one per app and pass it around by dependency injection."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "restyle_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "restyle_http_request_duration_seconds",
            "Time from request start to the last response byte, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "restyle_inference_seconds",
            "Time spent in the network (pre/post-processing included), by model.",
            ["model"],
            buckets=INFERENCE_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "restyle_queue_wait_seconds", "Time a request waited for a pool slot.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("restyle_queue_depth", "Requests waiting for an inference slot.", registry=r)
        self.in_flight = Gauge("restyle_inference_in_flight", "Inferences running now.", registry=r)
        self.rejections = Counter(
            "restyle_rejections",
            "Requests refused before or instead of inference, by reason "
            "(queue_full, deadline, disconnected, concurrency, unauthorized, slow_body, too_large, bad_input).",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "restyle_batch_size", "Images per network call (micro-batching).", buckets=(1, 2, 4, 8, 16, 32), registry=r
        )
        self.ready = Gauge("restyle_ready", "1 once every model is loaded and warmed up.", registry=r)

    def render(self) -> bytes:
        """The text exposition format for ``GET /metrics``."""
        return generate_latest(self.registry)
