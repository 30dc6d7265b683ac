"""Structured logging: one format for every line, secrets redacted before anything is written.

Every line the process writes -- our own ``structlog`` calls and stdlib ``logging`` records from
uvicorn, APScheduler, apprise or ``regime_trader.service.broker`` -- goes through the same
processor chain and one handler on the root logger:

* JSON lines when the stream is not a terminal (containers, files, log shippers), a readable
  console rendering on a terminal; ``fmt`` forces either.
* Fields bound with :func:`bind_cycle` (``portfolio``, ``session``, ``cycle_id``) on every line
  logged inside a cycle, stdlib records included (``structlog.contextvars``).
* Python warnings (``warnings.warn``: hmmlearn's EM non-convergence, the strategies' own
  ``RegimeConvergenceWarning`` and ``RiskParityConvergenceWarning``) logged as ``warning`` lines
  of the ``py.warnings`` logger with their ``category``, ``filename`` and ``lineno`` as fields,
  instead of bare text on stderr that no log shipper parses; the warnings filters still decide
  what is shown (once per location by default), and a warning escalated to an error still raises.
* Every configured secret value replaced with ``***`` in every string of the event, *after*
  exceptions have been rendered to text, so a token inside an exception message or a traceback's
  source line is redacted too. The price: on a terminal, tracebacks are plain text rather than
  Rich-formatted, because a Rich traceback is rendered after the last processor has run.

Nothing happens at import; :func:`configure_logging` is called once by the CLI (and again by
tests, which is why it is idempotent: it replaces its own handler and nothing else).
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "MIN_SECRET_LEN",
    "REDACTED",
    "WARNINGS_LOGGER",
    "LogFormat",
    "bind_cycle",
    "configure_logging",
    "get_logger",
    "redact_value",
    "redactor",
]

LogFormat = Literal["auto", "json", "console"]

REDACTED = "***"
# Shorter "secrets" (empty strings, "1", "abc") would shred every line into asterisks.
MIN_SECRET_LEN = 4

# Loggers of libraries that print request URLs -- which carry webhook and bot tokens -- at
# INFO or DEBUG. They are floored at WARNING whatever the level asked for.
_URL_LOGGING_LIBRARIES = ("apprise", "httpx", "httpcore", "urllib3")
# Libraries that install their own handlers; we take them over so their lines look like ours.
_ADOPTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler")
# Marks the handler configure_logging installed, so a second call replaces only that one.
_HANDLER_MARK = "_regime_trader_handler"
# The logger of captured warnings: the name the stdlib's logging.captureWarnings uses too.
WARNINGS_LOGGER = "py.warnings"


def redactor(secrets: Sequence[str]) -> Callable[[str], str]:
    """Return a function that replaces every secret in a string with ``***``.

    Parameters
    ----------
    secrets : sequence of str
        Secret values (API keys, webhook tokens, passwords). Values shorter than
        ``MIN_SECRET_LEN`` (4) characters are ignored; duplicates do not matter.

    Returns
    -------
    callable
        ``redact(text) -> text``. Longer secrets are replaced first, so a secret that contains
        another is removed whole. With no usable secret it returns its input unchanged.
    """
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
    if not values:
        return _identity
    pattern = re.compile("|".join(re.escape(v) for v in values))

    def redact(text: str) -> str:
        return pattern.sub(REDACTED, text)

    return redact


def _identity(text: str) -> str:
    return text


def redact_value(value: Any, redact: Callable[[str], str]) -> Any:
    """Apply ``redact`` to every string inside ``value`` (dict keys included), recursively.

    Parameters
    ----------
    value : Any
        A JSON-like structure: dicts, lists, tuples, sets, strings, numbers, ``None``. Other
        objects (exceptions, paths, datetimes) are turned into ``str`` first, because a JSON
        renderer would call ``str``/``repr`` on them later, after redaction had run.
    redact : callable
        As returned by :func:`redactor`.

    Returns
    -------
    Any
        A new structure; ``value`` is not modified.
    """
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            (redact(k) if isinstance(k, str) else k): redact_value(v, redact)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, redact) for v in value]
    return redact(str(value))


def _redaction_processor(redact: Callable[[str], str]) -> Processor:
    def redact_event(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        return cast(EventDict, redact_value(event_dict, redact))

    return redact_event


def _build_handler(
    level: int, fmt: LogFormat, secrets: Sequence[str], stream: TextIO
) -> logging.Handler:
    """Build the root handler whose formatter renders (and redacts) every record."""
    if fmt == "auto":
        is_tty = getattr(stream, "isatty", None)
        fmt = "console" if callable(is_tty) and is_tty() else "json"
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from stdlib loggers (uvicorn, apscheduler, regime_trader.service.broker) get the
        # same fields.
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Render tracebacks to text first so the redaction below sees them.
            structlog.processors.format_exc_info,
            _redaction_processor(redactor(secrets)),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.setLevel(level)
    setattr(handler, _HANDLER_MARK, True)
    return handler


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(
    level: str = "INFO",
    fmt: str = "auto",
    secrets: Sequence[str] = (),
    *,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib ``logging`` through one redacting formatter.

    Calling it again replaces the handler installed by the previous call (idempotent); handlers
    that others added to the root logger (pytest's ``caplog``) are left alone.

    Parameters
    ----------
    level : str, default "INFO"
        Root level name ("DEBUG", "INFO", "WARNING", ...). The HTTP-client libraries that log
        request URLs (apprise, httpx, httpcore, urllib3) stay at WARNING or above.
    fmt : {"auto", "json", "console"}, default "auto"
        "auto" renders JSON unless ``stream`` is a terminal.
    secrets : sequence of str
        Values to replace with ``***`` in every line (see :func:`redactor`).
    stream : text stream, optional
        Where lines go; default ``sys.stdout`` (12-factor: the platform collects stdout).

    Raises
    ------
    ValueError
        If ``level`` or ``fmt`` is not a known name; the message quotes it.
    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; expected 'auto', 'json' or 'console'")

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Caching would freeze loggers created before a reconfiguration (tests, CLI start-up).
        cache_logger_on_first_use=False,
    )

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    handler = _build_handler(
        numeric_level, cast(LogFormat, fmt), secrets, stream if stream is not None else sys.stdout
    )
    root.addHandler(handler)
    root.setLevel(numeric_level)

    for name in _ADOPTED_LOGGERS:
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
        adopted.disabled = False  # a logging.config.dictConfig elsewhere may have disabled it
        adopted.setLevel(logging.NOTSET)  # and uvicorn.Config(log_level=...) may have raised it
    for name in _URL_LOGGING_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))
    _capture_warnings()


def _capture_warnings() -> None:
    """Send what ``warnings`` would print to stderr through the structured logger instead.

    Not :func:`logging.captureWarnings`: it logs one preformatted string, so the category
    would only be findable by parsing text. Installing the hook again is a no-op, and a
    ``file`` passed explicitly (someone asked for that stream) still gets the plain text.
    """
    if getattr(warnings.showwarning, _HANDLER_MARK, False):
        return
    original = warnings.showwarning

    def show_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if file is not None:
            original(message, category, filename, lineno, file, line)
            return
        get_logger(WARNINGS_LOGGER).warning(
            "python_warning",
            category=category.__name__,
            message=str(message),
            filename=filename,
            lineno=lineno,
        )

    setattr(show_warning, _HANDLER_MARK, True)
    warnings.showwarning = show_warning


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger writing through the stdlib logger ``name``.

    Parameters
    ----------
    name : str, optional
        Logger name, normally ``__name__``; it appears as ``logger`` in every line.

    Returns
    -------
    structlog.stdlib.BoundLogger
        Lazy: usable at import time, formatted by whatever :func:`configure_logging` set last.
    """
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_cycle(portfolio: str, session: str, cycle_id: str) -> Iterator[None]:
    """Tag every line logged inside the block with the cycle's portfolio, session and id.

    Uses ``structlog.contextvars``, so it holds for this thread or task and everything it calls,
    stdlib loggers included; the previous values are restored on exit (cycles may nest in
    tests).

    Parameters
    ----------
    portfolio : str
        Portfolio name.
    session : str
        Trading session, YYYY-MM-DD.
    cycle_id : str
        Identifier of this cycle run.
    """
    with structlog.contextvars.bound_contextvars(
        portfolio=portfolio, session=session, cycle_id=cycle_id
    ):
        yield
