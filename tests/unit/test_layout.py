"""The one rule of the layout: ``strategies`` never imports ``service``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_strategies_never_import_service() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "service"
        )
        for path in (ROOT / "strategies").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_strategies_import_only_numerical_libraries() -> None:
    allowed = {"numpy", "scipy", "pandas", "hmmlearn", "sklearn", "strategies", "__future__"}
    stdlib_ok = {
        "collections",
        "dataclasses",
        "typing",
        "math",
        "warnings",
        "enum",
        "json",
        "functools",
        "itertools",
        "abc",
        "numbers",
    }
    bad: dict[str, list[str]] = {}
    for path in (ROOT / "strategies").rglob("*.py"):
        roots = {name.split(".")[0] for name in _imported_modules(path)}
        extra = sorted(roots - allowed - stdlib_ok)
        if extra:
            bad[str(path.relative_to(ROOT))] = extra
    assert bad == {}


def test_strategies_never_use_hmmlearn_smoothing_or_viterbi() -> None:
    # predict_proba / score_samples run forward-backward and decode runs Viterbi: both use
    # the future. Signals come from strategies.regime.ForwardFilter only.
    forbidden = ("predict_proba", "score_samples", "decode")
    hits = []
    for path in (ROOT / "strategies").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hits += [
            f"{path.name}:{node.lineno} .{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in forbidden
        ]
    assert hits == []
