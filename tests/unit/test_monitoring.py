"""Monitoring as operators use it: the Prometheus rules and the Grafana dashboard in deploy/.

``promtool`` (Debian's ``prometheus`` package) checks the rules, runs their unit tests
(``deploy/prometheus/regime-trader.rules.test.yml``), checks the example configuration and, through
a throw-away rules file, the PromQL of every Grafana panel. Without ``promtool`` those checks skip
(``.ci/lint-deploy`` runs them in CI, where it is installed). The rest needs nothing: every metric
the rules and the panels name is one the service exports, every alert has its unit test, and the
dashboard's colours are the web dashboard's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from regime_trader.service.dashboard.charts import COLOURS, regime_colour
from regime_trader.service.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "regime-trader.rules.yml"
RULE_TESTS = PROMETHEUS / "regime-trader.rules.test.yml"
GRAFANA = ROOT / "deploy" / "grafana" / "regime-trader.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)
_METRIC = re.compile(r"\b(regime_trader_[a-z0-9_]+)")
_HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GRAFANA.read_text(encoding="utf-8"))
    return data


def _panel_queries() -> list[str]:
    return [t["expr"] for p in _dashboard()["panels"] for t in p["targets"]]


def _exported() -> set[str]:
    """Every series name the service's registry can expose."""
    names = set()
    for metric in ServiceMetrics().registry.collect():
        base = metric.name
        names.add(base)
        if metric.type == "counter":
            names.add(base + "_total")
        if metric.type == "histogram":
            names.update(base + part for part in _HISTOGRAM_PARTS)
    return names


@needs_promtool
def test_the_rules_and_the_example_configuration_pass_promtool() -> None:
    for args in (
        ("check", "rules", RULES.name),
        ("test", "rules", RULE_TESTS.name),
        ("check", "config", "prometheus.yml"),
    ):
        done = _promtool(*args)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
        assert "SUCCESS" in done.stdout + done.stderr


@needs_promtool
def test_every_grafana_query_is_valid_promql(tmp_path: Path) -> None:
    """Each panel's query as a recording rule: promtool parses every expression of a rules file."""
    rules = [
        {"record": f"check:panel_{i}", "expr": expr.replace("$portfolio", ".*")}
        for i, expr in enumerate(_panel_queries())
    ]
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout


def test_every_metric_the_rules_and_the_panels_name_is_exported() -> None:
    used = {m for rule in _rules() for m in _METRIC.findall(rule["expr"])}
    used |= {m for expr in _panel_queries() for m in _METRIC.findall(expr)}
    assert len(used) >= 12
    assert used - _exported() == set()


def test_every_alert_is_described_and_has_a_unit_test_that_fires_and_one_that_does_not() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    checks = [c for case in cases for c in case.get("alert_rule_test", [])]
    wanted = {
        "RegimeTraderCycleOverdue",
        "RegimeTraderCycleFailed",
        "RegimeTraderHalted",
        "RegimeTraderDataStale",
        "RegimeTraderBrokerRateLimited",
        "RegimeTraderDown",
    }
    names = {rule["alert"] for rule in _rules()}
    assert wanted <= names
    for rule in _rules():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        mine = [c for c in checks if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never seen firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never seen quiet"


def test_the_grafana_dashboard_is_laid_out_and_coloured_as_the_web_dashboard() -> None:
    board = _dashboard()
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "portfolio"}
    cells: set[tuple[int, int]] = set()
    for p in panels:
        grid = p["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, p["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{p['title']} overlaps another panel"
        cells |= area
        assert p["datasource"]["uid"] == "${datasource}" and p["description"], p["title"]
        for target in p["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            if "portfolio" in target["expr"] and "build_info" not in target["expr"]:
                assert 'portfolio=~"$portfolio"' in target["expr"], target["expr"]
    titles = {p["title"]: p for p in panels}
    for needed in (
        "Cycle outcomes (per day)",
        "Step durations (p95 over a day)",
        "Last success",
        "Paper account against the shadow benchmarks",
        "Exposure",
        "Regime probabilities",
        "Halted",
        "Data age",
        "Broker HTTP 429 (per hour)",
    ):
        assert needed in titles, needed
    # Fractions on percent axes; the same colour per series as the page at /.
    for fraction in ("Exposure", "Regime probabilities"):
        assert titles[fraction]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    colours = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
        for o in titles["Paper account against the shadow benchmarks"]["fieldConfig"]["overrides"]
    }
    assert colours == {
        "Paper account.*": COLOURS["paper"],
        "Static ERC.*": COLOURS["erc_static"],
        "Buy-and-hold.*": COLOURS["buy_hold"],
    }
    regimes = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
        for o in titles["Regime probabilities"]["fieldConfig"]["overrides"]
    }
    assert regimes == {label: regime_colour(label) for label in regimes}
