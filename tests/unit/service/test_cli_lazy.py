"""The ``regime-trader`` parser is lazy: ``--help`` and ``--version`` import no sub-command.

A sub-command's module, and the numerical, plotting and broker libraries behind it, is imported
only when that sub-command runs or its own ``--help`` is asked; the arguments and help it gets
that way are the same as when every sub-command is built.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from regime_trader.service.cli import COMMANDS, build_parser, main
from tests.support.fresh_python import run_fresh

HEAVY = ("pandas", "numpy", "scipy", "matplotlib", "sklearn", "hmmlearn", "alpaca")


def _imported_after(argv: list[str]) -> tuple[int, str, list[str]]:
    """Run ``main(argv)`` in a fresh interpreter: its exit code, stdout and heavy imports."""
    probe = (
        "import contextlib, io, json, sys\n"
        "from regime_trader.service.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        code = main({argv!r})\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps([code, out.getvalue(), heavy]))\n"
    )
    code, stdout, heavy = json.loads(run_fresh(probe).splitlines()[-1])
    return code, stdout, heavy


def test_the_top_level_help_lists_every_command_and_imports_no_heavy_library() -> None:
    code, stdout, heavy = _imported_after(["--help"])
    assert code == 0
    assert heavy == []
    for name, command in COMMANDS.items():
        assert name in stdout
        assert command.help.split()[0] in stdout


def test_version_imports_no_heavy_library() -> None:
    code, stdout, heavy = _imported_after(["--version"])
    assert (code, heavy) == (0, [])
    assert stdout.startswith("regime-trader ")


def test_a_sub_command_help_imports_its_module() -> None:
    # The lazy parser still builds the named sub-command in full (its options are listed).
    code, stdout, heavy = _imported_after(["backtest", "--help"])
    assert code == 0
    assert "--prices" in stdout
    assert "pandas" in heavy


def _help(parser_for: list[str] | None, argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        build_parser(parser_for).parse_args(argv)
    assert done.value.code == 0
    return out.getvalue()


def test_each_lazily_built_sub_command_has_the_full_parsers_help() -> None:
    every = build_parser()
    for name in COMMANDS:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            every.parse_args([name, "--help"])
        assert _help([name], [name, "--help"]) == out.getvalue(), name
    assert _help([], ["--help"]) == _help(None, ["--help"])


def test_a_bad_command_line_still_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["no-such-command"], ["rebalance", "--no-such-option"]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2, argv
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err
