"""Logging: JSON lines with cycle context, stdlib routed through structlog, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from regime_trader.service.logs import (
    WARNINGS_LOGGER,
    bind_cycle,
    configure_logging,
    get_logger,
    redact_value,
    redactor,
)
from regime_trader.strategies.regime import RegimeConvergenceWarning

SECRET = "PKTEST1234SECRETKEY"
OTHER = "hunter2-password"


@pytest.fixture
def configure() -> Iterator[Callable[..., io.StringIO]]:
    """configure_logging into a buffer; the previous root handlers and structlog restored after."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    showwarning = warnings.showwarning
    levels = {n: logging.getLogger(n).level for n in ("apprise", "httpx", "urllib3")}

    def _configure(**kwargs: Any) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(**{"fmt": "json", "secrets": [SECRET, OTHER], **kwargs}, stream=buffer)
        return buffer

    yield _configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()
    warnings.showwarning = showwarning


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_lines_inside_bind_cycle_are_json_with_portfolio_session_and_cycle_id(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure()
    log = get_logger("regime_trader.service.cycle")

    log.info("before")
    with bind_cycle("core", "2024-03-15", "c-42"):
        log.info("plan_written", orders=3)
        logging.getLogger("regime_trader.service.broker").warning("retrying %s", "GET /v2/account")
    log.info("after")

    before, inside, broker, after = _lines(buffer)
    assert inside["event"] == "plan_written" and inside["orders"] == 3
    for line in (inside, broker):
        assert (line["portfolio"], line["session"], line["cycle_id"]) == (
            "core",
            "2024-03-15",
            "c-42",
        )
    assert broker == broker | {
        "event": "retrying GET /v2/account",
        "level": "warning",
        "logger": "regime_trader.service.broker",
    }
    assert "portfolio" not in before and "portfolio" not in after
    assert inside["timestamp"].endswith("Z") and inside["level"] == "info"


def test_nested_bind_cycle_restores_the_outer_cycle(configure: Callable[..., io.StringIO]) -> None:
    buffer = configure()
    log = get_logger("t")
    with bind_cycle("core", "2024-03-15", "outer"):
        with bind_cycle("bonds", "2024-03-15", "inner"):
            log.info("inner")
        log.info("outer")
    assert [(x["portfolio"], x["cycle_id"]) for x in _lines(buffer)] == [
        ("bonds", "inner"),
        ("core", "outer"),
    ]


def test_bound_cycle_does_not_leak_into_other_threads(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure()
    with bind_cycle("core", "2024-03-15", "c-1"):
        thread = threading.Thread(target=lambda: get_logger("t").info("elsewhere"))
        thread.start()
        thread.join()
    assert "portfolio" not in _lines(buffer)[0]


def test_secrets_are_redacted_in_messages_fields_and_stdlib_records(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure()
    get_logger("t").warning(
        f"auth failed with {SECRET}",
        headers={"APCA-API-KEY-ID": SECRET},
        values=[OTHER, 1],
        error=ValueError(f"bad {OTHER}"),
    )
    logging.getLogger("regime_trader.service.broker").error("key=%s", SECRET)

    text = buffer.getvalue()
    assert SECRET not in text and OTHER not in text
    first, second = _lines(buffer)
    assert first["event"] == "auth failed with ***"
    assert first["headers"] == {"APCA-API-KEY-ID": "***"}
    assert first["values"] == ["***", 1] and first["error"] == "bad ***"
    assert second["event"] == "key=***"


def _fail_with_secret() -> None:
    token = SECRET  # the traceback shows this source line and the message
    raise RuntimeError(f"broker said no to {token}")


def test_exception_tracebacks_are_rendered_then_redacted(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure()
    try:
        _fail_with_secret()
    except RuntimeError:
        get_logger("t").exception("cycle_failed")
        logging.getLogger("apscheduler.executors").exception("job raised")

    text = buffer.getvalue()
    assert SECRET not in text
    ours, stdlib = _lines(buffer)
    for line in (ours, stdlib):
        assert "Traceback (most recent call last)" in line["exception"]
        assert "RuntimeError: broker said no to ***" in line["exception"]
        assert "_fail_with_secret" in line["exception"]


def test_configure_twice_installs_one_handler_and_the_new_settings_apply(
    configure: Callable[..., io.StringIO],
) -> None:
    first = configure(level="INFO")
    second = configure(level="WARNING", fmt="console")
    log = get_logger("t")

    log.info("quiet")
    log.warning("loud", n=1)

    marked = [
        h for h in logging.getLogger().handlers if getattr(h, "_regime_trader_handler", False)
    ]
    assert len(marked) == 1
    assert first.getvalue() == ""
    out = second.getvalue()
    assert "quiet" not in out and "loud" in out and "n=1" in out
    with pytest.raises(json.JSONDecodeError):  # console rendering, not JSON
        json.loads(out.splitlines()[0])


def test_auto_format_is_json_off_a_terminal_and_console_on_one(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure(fmt="auto")
    get_logger("t").info("hello")
    assert json.loads(buffer.getvalue())["event"] == "hello"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    configure_logging(fmt="auto", stream=terminal)
    get_logger("t").info("hello")
    assert terminal.getvalue().split()[1:] == ["[info", "]", "hello", "[t]"]


def test_uvicorn_loggers_are_adopted_and_url_logging_libraries_stay_quiet(
    configure: Callable[..., io.StringIO],
) -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn_error.propagate = False
    buffer = configure(level="DEBUG")

    uvicorn_error.info("Started server process [%d]", 123)
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.slack.com/services/T/B/X")

    [line] = _lines(buffer)
    assert line["event"] == "Started server process [123]" and line["logger"] == "uvicorn.error"
    assert uvicorn_error.handlers == [] and uvicorn_error.propagate


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "xml")])
def test_unknown_level_or_format_is_rejected(level: str, fmt: str) -> None:
    with pytest.raises(ValueError, match="unknown log"):
        configure_logging(level, fmt)


def test_redactor_replaces_longest_secrets_first_and_ignores_short_ones() -> None:
    redact = redactor(["abcd", "abcdefgh", "xyz", ""])
    assert redact("abcdefgh abcd xyz") == "*** *** xyz"
    assert redactor([])("unchanged") == "unchanged"
    assert redact_value({"k abcd": ("abcd", 2, None, True)}, redact) == {
        "k ***": ["***", 2, None, True]
    }


def _refit_that_warns() -> str:
    """A cycle-like call: a strategy refit whose EM stops at its iteration cap."""
    warnings.warn(
        RegimeConvergenceWarning(f"EM stopped at n_iter=5 (token {SECRET})"), stacklevel=1
    )
    return "signal"


def test_a_warning_during_a_cycle_is_a_json_line_with_its_category_and_cycle_fields(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure()
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # shown every time, whatever filters ran before
        with bind_cycle("core", "2024-03-15", "c-7"):
            assert _refit_that_warns() == "signal"
            warnings.warn("plain text", UserWarning, stacklevel=1)

    refit, plain = _lines(buffer)
    assert refit["logger"] == WARNINGS_LOGGER and refit["level"] == "warning"
    assert refit["event"] == "python_warning"
    assert refit["category"] == "RegimeConvergenceWarning"
    assert refit["message"] == "EM stopped at n_iter=5 (token ***)"  # redacted like any line
    assert refit["filename"] == __file__ and isinstance(refit["lineno"], int)
    assert (refit["portfolio"], refit["session"], refit["cycle_id"]) == (
        "core",
        "2024-03-15",
        "c-7",
    )
    assert (plain["category"], plain["message"]) == ("UserWarning", "plain text")


def test_a_warning_escalated_to_an_error_still_raises_and_logs_nothing(
    configure: Callable[..., io.StringIO],
) -> None:
    buffer = configure()
    configure_logging(fmt="json", stream=buffer)  # a second call keeps one hook
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegimeConvergenceWarning)
        with pytest.raises(RegimeConvergenceWarning, match="n_iter=5"):
            _refit_that_warns()
        warnings.simplefilter("always", UserWarning)
        warnings.warn("once", UserWarning, stacklevel=1)
    assert [line["message"] for line in _lines(buffer)] == ["once"]
