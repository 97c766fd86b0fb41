"""Prometheus metrics. With several workers, each writes its figures to files in
PROMETHEUS_MULTIPROC_DIR and `/metrics` adds them all up."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A `_created` series beside each counter and histogram doubles what is scraped for a start
# time that no query needs. Set at import, so that it holds in every worker process.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "shortener_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
REDIRECT_SECONDS = Histogram(
    "shortener_redirect_seconds",
    "Time to answer a tap on a short code or tracked link.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CODES_ISSUED = Counter("shortener_codes_issued_total", "Short codes and tracked links issued.")
CLICKS = Counter(
    "shortener_clicks_total", "Interactions recorded, by who made them.", ["type", "visitor"]
)
REDIS_ERRORS = Counter("shortener_redis_errors_total", "Store calls that failed or timed out.")
# The delivery process's own: a worker that runs in the process of `serve` itself, and so
# keeps its figures in memory, shows them from the files that process writes (see
# `exposition`), without a second, empty family of its own.
DELIVERIES = CollectorRegistry()
WEBHOOK_ATTEMPTS = Counter(
    "shortener_webhook_attempts_total",
    "Webhook delivery attempts, by result: delivered, failed (to be retried), given_up.",
    ["result"],
    registry=DELIVERIES,
)
WEBHOOK_SECONDS = Histogram(
    "shortener_webhook_seconds",
    "Time a webhook delivery attempt took, whatever its result.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=DELIVERIES,
)
WEBHOOK_BACKLOG = Gauge(
    "shortener_webhook_backlog",
    "Events not yet delivered to a webhook endpoint (nor given up).",
    ["org", "endpoint"],
    multiprocess_mode="mostrecent",
    registry=DELIVERIES,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


# Where the delivery process writes its figures when this process keeps its own in memory.
delivery_metrics_dir: str | None = None


def exposition() -> bytes:
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    own = generate_latest()
    if delivery_metrics_dir is None:
        # Deliveries made here, if any (an app run without `serve`), are in memory too.
        return own + generate_latest(DELIVERIES)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=delivery_metrics_dir)  # type: ignore[no-untyped-call]
    return own + generate_latest(registry)
