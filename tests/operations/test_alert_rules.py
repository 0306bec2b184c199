"""The alert rules, Prometheus's configuration and the dashboard, checked without promtool: each loads,
each rule is complete, and every series an expression names is one the portal or the worker exports
(portnet/metrics.py), so a renamed metric cannot silently disarm an alert."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from portnet.metrics import CATALOGUE, TEMPORAL_SDK_SERIES, exported_series
from portnet.settings import ROOT

OPS = ROOT / "ops"
ALERTS = OPS / "prometheus" / "alerts.yml"
# PromQL's own words, which look like series names in an expression.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "increase", "irate", "and", "or", "unless",
    "histogram_quantile", "absent", "le", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "humanizePercentage",
}
EXPECTED_ALERTS = {
    "PartnerCallbacksFailing",
    "AttemptsPastDeadlineHoldingInvoices",
    "ReconciliationFindings",
    "SmtpFailures",
    "WorkflowTaskBacklog",
    "ActivityTaskBacklog",
    "TemporalUnreachable",
    "LoginLockBurst",
}


def series_in(expr: str) -> set[str]:
    """Identifiers outside label matchers, strings and durations: the series an expression reads."""
    bare = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range durations
    bare = re.sub(r"\(\s*(?:[a-z_]+\s*,\s*)*[a-z_]+\s*\)(?=\s*\()", "", bare)  # by (a, b) before (
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare))
    grouped = set(re.findall(r"(?:by|without)\s*\(([^)]*)\)", bare))
    labels = {label.strip() for group in grouped for label in group.split(",")}
    return {n for n in names if n not in PROMQL_WORDS and n not in labels and not n.isdigit()}


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    assert isinstance(data, dict) and data["groups"]
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_every_rule_is_complete(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule.get("for", "1m")[-1] in "smh"


def test_the_alerts_operators_asked_for_exist(rules: list[dict[str, Any]]) -> None:
    assert EXPECTED_ALERTS <= {rule["alert"] for rule in rules}


def test_every_series_a_rule_reads_is_exported(rules: list[dict[str, Any]]) -> None:
    known = exported_series() | TEMPORAL_SDK_SERIES
    for rule in rules:
        used = series_in(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']}: unknown series {sorted(used - known)}"


def test_labels_a_rule_filters_on_are_the_metrics_labels(rules: list[dict[str, Any]]) -> None:
    labels = {f"{m.name}_total" if m.kind == "counter" else m.name: set(m.labels) for m in CATALOGUE}
    for rule in rules:
        for series, matchers in re.findall(r"\b(portnet_\w+)\{([^}]*)\}", rule["expr"]):
            base = re.sub(r"_(bucket|count|sum)$", "", series)
            named = set(re.findall(r"(\w+)\s*[=!]~?", matchers))
            assert named <= labels.get(series, labels.get(base, set())) | {"le"}, (rule["alert"], series)


def test_the_series_reader_sees_through_promql() -> None:
    assert series_in('sum by (partner) (rate(portnet_x_total{verdict="a"}[5m])) > 0.2') == {"portnet_x_total"}
    quantile = "histogram_quantile(0.95, sum by (le) (rate(temporal_y_bucket[5m])))"
    assert series_in(quantile) == {"temporal_y_bucket"}


def test_prometheus_loads_the_rules_and_scrapes_both_processes() -> None:
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["portnet-web"]["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert jobs["portnet-worker"]["dns_sd_configs"][0]["port"] == 9464


@pytest.mark.parametrize("name", ["payments.json", "temporal.json"])
def test_the_dashboards_read_exported_series_only(name: str) -> None:
    dashboard = json.loads((OPS / "grafana" / name).read_text())
    known = exported_series() | TEMPORAL_SDK_SERIES
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert series_in(target["expr"]) <= known, (panel["title"], target["expr"])


def test_compose_observability_profile_is_not_started_by_default() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("prometheus", "otel-collector", "jaeger", "grafana"):
        assert services[name]["profiles"] == ["observability"], name
    for name in ("web", "worker", "postgresql", "temporal"):
        assert "profiles" not in services[name], name
    targets = {c["target"] for c in services["prometheus"]["configs"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"} <= targets
    for config in compose["configs"].values():
        if "file" in config:
            assert (ROOT / config["file"]).is_file(), config["file"]
    assert services["web"]["healthcheck"]["test"][-1].endswith("/readyz')")
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "python", "-m", "portnet.worker_probe"]
