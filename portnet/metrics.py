"""Operators' numbers: every metric the portal and the worker export, and one call to record each.

Two processes, two exporters, one catalogue (:data:`CATALOGUE`):

- the portal answers ``GET /metrics`` (web/metrics.py) from prometheus-client's registry;
- the worker's activities (ledger, partner adapters, mail) record through the Temporal SDK's metric
  meter (``activity.metric_meter()``), which the worker's Runtime exports in Prometheus format on
  ``WORKER_METRICS_ADDRESS`` beside the SDK's own ``temporal_*`` metrics (worker.py).

Callers never choose: ``attempt_started("cmi_card")`` records on the SDK meter inside an activity and
on prometheus-client anywhere else. Counters are exported as ``<name>_total`` by both sides, so an alert
rule names one series whichever process counts it (ops/prometheus/alerts.yml; a test checks every
series a rule names is in :func:`exported_series`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import prometheus_client
from temporalio import activity

Kind = Literal["counter", "histogram", "gauge"]

# Partner calls: from a fast answer to our 20 s client timeout.
PARTNER_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    # Where it is exported: the portal's /metrics, the worker's endpoint, or whichever records it.
    where: Literal["portal", "worker", "both"] = "portal"
    buckets: tuple[float, ...] = ()

    def series(self) -> set[str]:
        """The Prometheus series names this metric appears under."""
        if self.kind == "counter":
            return {f"{self.name}_total"}
        if self.kind == "histogram":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


ATTEMPTS_STARTED = Metric(
    "portnet_attempts_started", "counter", "Payment attempts whose invoices were held (or refused).",
    ("channel",), "worker",
)
ATTEMPTS_ENDED = Metric(
    "portnet_attempts_ended", "counter", "Payment attempts that reached a final status.",
    ("channel", "status"), "worker",
)
PARTNER_CALLS = Metric(
    "portnet_partner_call_seconds", "histogram", "Calls to a partner's API, by partner and outcome.",
    ("partner", "outcome"), "both", PARTNER_CALL_BUCKETS,
)
PARTNER_CALL_ERRORS = Metric(
    "portnet_partner_call_errors", "counter",
    "Partner calls that failed: timeout, connection error or an HTTP 5xx answer.",
    ("partner", "kind"), "both",
)
MAILS = Metric("portnet_emails", "counter", "E-mails handed to SMTP, by outcome.", ("outcome",), "worker")
CALLBACKS = Metric(
    "portnet_partner_callbacks", "counter", "Partner callbacks by partner and the verdict written on them.",
    ("partner", "verdict"),
)
LOGIN_FAILURES = Metric("portnet_login_failures", "counter", "Logins refused for a wrong password.")
LOGIN_LOCKS = Metric(
    "portnet_login_locks", "counter",
    "Logins throttled: a wait (``wait``) or the full lock (``lock``) set after a failure, or an attempt "
    "refused while one runs (``refused``).", ("reason",),
)
RECONCILIATION_FINDINGS = Metric(
    "portnet_reconciliation_findings", "counter",
    "Findings of reconciliation (portnet/reconciliation.py) by partner, kind and outcome.",
    ("partner", "kind", "outcome"), "both",
)
HTTP_REQUESTS = Metric(
    "portnet_http_request_seconds", "histogram", "Portal requests by method, route template and status.",
    ("method", "route", "status"), "portal", HTTP_BUCKETS,
)
OVERDUE_HOLDS = Metric(
    "portnet_attempts_overdue_holding", "gauge",
    "Live attempts still holding invoices past their channel's deadline (plus a grace period).", ("channel",),
)
TEMPORAL_REACHABLE = Metric(
    "portnet_temporal_reachable", "gauge", "1 when the portal's Temporal client answers a health check.",
)

CATALOGUE: tuple[Metric, ...] = (
    ATTEMPTS_STARTED, ATTEMPTS_ENDED, PARTNER_CALLS, PARTNER_CALL_ERRORS, MAILS, CALLBACKS,
    LOGIN_FAILURES, LOGIN_LOCKS, RECONCILIATION_FINDINGS, HTTP_REQUESTS, OVERDUE_HOLDS, TEMPORAL_REACHABLE,
)


def _portal_metric(metric: Metric) -> prometheus_client.Counter | prometheus_client.Histogram:
    if metric.kind == "counter":
        return prometheus_client.Counter(metric.name, metric.help, metric.labels)
    return prometheus_client.Histogram(metric.name, metric.help, metric.labels, buckets=metric.buckets)


# Counters and histograms live in prometheus-client's default registry (process metrics included);
# the scrape-time gauges are collected by web/metrics.py.
_PORTAL = {m.name: _portal_metric(m) for m in CATALOGUE if m.kind != "gauge"}


def _record(metric: Metric, value: float, labels: Mapping[str, str]) -> None:
    if activity.in_activity():
        meter = activity.metric_meter()  # a no-op meter unless the worker's Runtime exports metrics
        if metric.kind == "counter":
            meter.create_counter(f"{metric.name}_total", metric.help).add(int(value), dict(labels))
        else:
            meter.create_histogram_float(metric.name, metric.help, "s").record(value, dict(labels))
        return
    portal = _PORTAL[metric.name]
    child = portal.labels(**labels) if metric.labels else portal
    if isinstance(child, prometheus_client.Counter):
        child.inc(value)
    else:
        child.observe(value)


def attempt_started(channel: str) -> None:
    _record(ATTEMPTS_STARTED, 1, {"channel": channel})


def attempt_ended(channel: str, status: str) -> None:
    _record(ATTEMPTS_ENDED, 1, {"channel": channel, "status": status})


def partner_call(partner: str, seconds: float, outcome: str) -> None:
    """``outcome``: the HTTP status class (``2xx``, ``4xx``, ``5xx``) or ``error``."""
    _record(PARTNER_CALLS, seconds, {"partner": partner, "outcome": outcome})


def partner_call_error(partner: str, kind: str) -> None:
    _record(PARTNER_CALL_ERRORS, 1, {"partner": partner, "kind": kind})


def email(outcome: Literal["sent", "failed"]) -> None:
    _record(MAILS, 1, {"outcome": outcome})


def callback_verdict(partner: str, verdict: str) -> None:
    _record(CALLBACKS, 1, {"partner": partner, "verdict": verdict})


def login_failure() -> None:
    _record(LOGIN_FAILURES, 1, {})


def login_lock(reason: Literal["wait", "lock", "refused"]) -> None:
    _record(LOGIN_LOCKS, 1, {"reason": reason})


def reconciliation_finding(partner: str | None, kind: str, outcome: str) -> None:
    """One finding recorded by reconciliation (``expired_attempt`` / ``unapplied``, ``orphan_hold`` /
    ``released``...); the worker's run records it on the SDK meter."""
    _record(RECONCILIATION_FINDINGS, 1, {"partner": partner or "none", "kind": kind, "outcome": outcome})


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    _record(HTTP_REQUESTS, seconds, {"method": method, "route": route, "status": str(status)})


# The Temporal SDK's series the alert rules and dashboards use (on the worker's endpoint, milliseconds);
# tests/operations/test_worker_metrics.py checks a real worker exports each of them.
TEMPORAL_SDK_SERIES = frozenset({
    "temporal_num_pollers",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_activity_schedule_to_start_latency_bucket",
    "temporal_request",
    "temporal_request_latency_bucket",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_workflow_task_execution_latency_bucket",
    "temporal_activity_execution_latency_bucket",
})


def exported_series() -> set[str]:
    """Every series name the portal or the worker exports of ours (not the SDK's ``temporal_*``)."""
    return set().union(*(metric.series() for metric in CATALOGUE))
