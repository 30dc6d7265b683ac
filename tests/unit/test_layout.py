"""The layout: one namespace, ``regime_trader``, and ``strategies`` never imports ``service``.

The folders ``service/`` and ``strategies/`` sit at the top of the repository but are only ever
imported as ``regime_trader.service`` and ``regime_trader.strategies`` (setuptools'
``package-dir``). Importing a file under its folder name as well would load it twice, with two
copies of every class and module-level state, so the old names are forbidden everywhere.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import regime_trader.service
import regime_trader.strategies
from tests.support.fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
OLD_ROOTS = {"service", "strategies"}
PYTHON_TREES = ("service", "strategies", "tests", "benchmarks")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files() -> list[Path]:
    return [path for tree in PYTHON_TREES for path in sorted((ROOT / tree).rglob("*.py"))]


def test_no_file_imports_the_old_top_level_names() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] in OLD_ROOTS
        )
        for path in _python_files()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_process_is_started_under_an_old_name() -> None:
    # ``python -m service`` would run the folder as a second package beside regime_trader.
    started = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.List | ast.Tuple)
        for flag, module in zip(node.elts, node.elts[1:], strict=False)
        if isinstance(flag, ast.Constant)
        and flag.value == "-m"
        and isinstance(module, ast.Constant)
        and str(module.value).split(".")[0] in OLD_ROOTS
    ]
    assert started == []


def test_no_file_imports_relatively() -> None:
    # One spelling of every import: absolute, through regime_trader.
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_the_tests_import_the_installed_package_only() -> None:
    # The whole session so far (this test runs late in tests/unit) loaded nothing under an old
    # name, and regime_trader.* resolves to the folders the distribution maps.
    assert sorted(m for m in sys.modules if m.split(".")[0] in OLD_ROOTS) == []
    assert Path(regime_trader.service.__file__).parent == ROOT / "service"
    assert Path(regime_trader.strategies.__file__).parent == ROOT / "strategies"


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt")))
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == {"regime_trader"}
    assert "regime_trader/service/cycle.py" in names
    assert "regime_trader/strategies/regime_erc.py" in names
    assert "regime_trader/service/emulator/exchange.py" in names
    # Package data: what the dashboard renders, the shipped profiles and search spaces.
    assert "regime_trader/service/dashboard/templates/dashboard.html" in names
    assert "regime_trader/service/dashboard/static/dashboard.css" in names
    assert "regime_trader/service/profiles_data/static-erc.toml" in names
    assert "regime_trader/service/research_spaces/regime_erc.toml" in names
    assert b"regime-trader = regime_trader.service.cli:main" in entry_points


def test_strategies_never_import_service() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imported_modules(path)
            if name.split(".")[:2] == ["regime_trader", "service"]
        )
        for path in (ROOT / "strategies").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_strategies_import_only_numerical_libraries() -> None:
    # arch: the GARCH fits (strategies/garch.py), numerical like hmmlearn
    # threadpoolctl: the HMM fits' thread limit (strategies/regime.py)
    allowed = {"numpy", "scipy", "pandas", "hmmlearn", "sklearn", "arch", "threadpoolctl"}
    allowed.add("__future__")
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
        "importlib",  # the registry imports a strategy's module on first use
    }
    bad: dict[str, list[str]] = {}
    for path in (ROOT / "strategies").rglob("*.py"):
        own = {n for n in _imported_modules(path) if n.startswith("regime_trader.strategies")}
        roots = {name.split(".")[0] for name in _imported_modules(path) - own}
        extra = sorted(roots - allowed - stdlib_ok)
        if extra:
            bad[str(path.relative_to(ROOT))] = extra
    assert bad == {}


def test_strategies_never_use_hmmlearn_smoothing_or_viterbi() -> None:
    # predict_proba / score_samples run forward-backward and decode runs Viterbi: both use
    # the future. Signals come from regime_trader.strategies.regime.ForwardFilter only.
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


def _service_files() -> list[Path]:
    return sorted((ROOT / "service").rglob("*.py"))


def _modules_the_service_runs_on() -> list[Path]:
    """The files of every regime_trader.service module ``regime-trader run`` imports."""
    probe = (
        "import sys, regime_trader.service.ops_cli, regime_trader.service.scheduler;"
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
        " if n.startswith('regime_trader.service') and getattr(m, '__file__', None)))"
    )
    found = run_fresh(probe).split()
    return sorted(Path(f) for f in found)


def test_only_the_configuration_reads_the_environment() -> None:
    # Settings, credentials included, are resolved once in config.py; a key or a fault switch
    # read anywhere else in the running service would bypass validation and redaction.
    files = _modules_the_service_runs_on()
    assert ROOT / "service" / "scheduler.py" in files
    readers = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in files
        if path != ROOT / "service" / "config.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"})
        or (isinstance(node, ast.ImportFrom) and node.module == "os")
    ]
    assert readers == []


def test_the_service_never_imports_the_tests() -> None:
    # Test-only hooks (the crash tests' SIGKILL) are installed from tests/, never imported by
    # the service.
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "tests"
        )
        for path in [*_service_files(), *sorted((ROOT / "strategies").rglob("*.py"))]
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("regime_trader", *parts[: -1 if parts[-1] == "__init__" else None]))


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``TYPE_CHECKING`` imports included)."""
    files = {
        _module_name(path): path
        for tree in ("service", "strategies")
        for path in (ROOT / tree).rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                # "from package import submodule" imports the submodule, not the package's own names
                subs = {f"{node.module}.{a.name}" for a in node.names} & files.keys()
                if len(subs) < len(node.names) and node.module in files:
                    subs.add(node.module)
                graph[name] |= subs - {name}
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names} & files.keys()
    return graph


def test_the_import_graph_has_no_cycle() -> None:
    graph = _import_graph()
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycles.append([*path[path.index(name) :], name])
            return
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []
