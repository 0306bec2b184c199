"""Reading Prometheus's text format in tests: one sample's value by series name and labels."""

from __future__ import annotations

import re


def value(text: str, series: str, **labels: str) -> float:
    """The sample of ``series`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        if name != series:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.partition("{")[2].rpartition("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
