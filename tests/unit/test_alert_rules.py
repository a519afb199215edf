"""The alert rules ship with the code they watch: they parse, and every metric they name is exported."""
import pathlib
import re

import yaml
from prometheus_client import REGISTRY

import services.aggregator.service  # noqa: F401  (each import registers its service's metrics)
import services.consultation.service  # noqa: F401
import services.gateway.service  # noqa: F401
import services.notification.service  # noqa: F401
import services.points.service  # noqa: F401
import services.registry.service  # noqa: F401
import shared.metrics  # noqa: F401

RULES = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def exported():
    names = set()
    for collector in list(REGISTRY._collector_to_names):
        for metric in collector.describe() if hasattr(collector, "describe") else []:
            names.add(metric.name)
            names.update(s.name for s in metric.samples)
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return {n for n in names if n.startswith("linli_")} | {n + "_total" for n in names if n.startswith("linli_")}


def test_every_rule_has_what_an_operator_needs_and_names_exported_metrics():
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 8 and len({r["alert"] for r in rules}) == len(rules)
    known = exported()
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        for name in set(re.findall(r"\blinli_[a-z_]+", rule["expr"])):
            assert name in known, f"{rule['alert']} names {name}, which no service exports"
