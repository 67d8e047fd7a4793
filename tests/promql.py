"""The metric names a PromQL expression reads, and the queries of our dashboard and rules.

Enough PromQL to find metric names, not to evaluate: strings, label matchers,
range and subquery brackets, grouping clauses (``by (...)``, ``on (...)``...)
and Grafana variables are removed first; of the identifiers left, those
followed by ``(`` are functions or aggregations, a few are keywords, and the
rest are metric names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

OBSERVABILITY = Path(__file__).resolve().parent.parent / "deploy" / "observability"

KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "start", "end"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")  # strings are gone: no brace is left inside a matcher
_BRACKETS = re.compile(r"\[[^\[\]]*\]")  # ranges and subqueries: durations and steps
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"\s*label_values\((.*),\s*\w+\s*\)\s*")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects (``label_values(m, label)`` too, Grafana's)."""
    if found := _LABEL_VALUES.fullmatch(expr):
        expr = found.group(1)
    text = _GRAFANA_VARIABLE.sub(" ", _STRING.sub('""', expr))
    text = _BRACKETS.sub(" ", _MATCHERS.sub(" ", text))
    text = _GROUPING.sub(" ", text)
    names = set()
    for token in _IDENTIFIER.finditer(text):
        rest = text[token.end() :].lstrip()
        if rest.startswith("(") or token.group().lower() in KEYWORDS:
            continue
        names.add(token.group())
    return names


def dashboard_queries(path: Path) -> Iterator[str]:
    """Every panel target's ``expr`` (rows' nested panels too) and every query variable."""
    dashboard = json.loads(path.read_text())

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            yield query["query"] if isinstance(query, dict) else query


def rule_queries(path: Path) -> Iterator[str]:
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]
