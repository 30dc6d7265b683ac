"""The dashboard's routes: the page at ``/``, its static files, and the halt/resume controls.

=======================  ========================================================================
``GET /``                the page: every portfolio's panels (server-rendered HTML, inline SVG)
``GET /static/...``      the stylesheet, shipped in the package (no CDN: it works offline)
``POST /control/halt``   form ``portfolio``, ``reason``, ``token`` (or ``Authorization: Bearer``)
``POST /control/resume`` form ``portfolio``, ``token``
=======================  ========================================================================

Read-only unless ``RT_CONTROL_TOKEN`` is set: without it, or with a wrong or missing token, a
control answers 403 and changes nothing. The token is compared in constant time
(:func:`hmac.compare_digest`) and never written anywhere: not in a log line, a page, an alert or
an error. A halt or resume does what ``regime-trader halt``/``resume`` do (the halt key, which
every cycle step obeys, and a warning alert), then redirects back to the page.

Every page goes through the service's redactor before it is sent, as ``/status`` does: a secret
that reached a stored alert or an error message never reaches a browser. The page sends
``Content-Security-Policy`` (nothing but its own stylesheet), ``X-Frame-Options: DENY`` (no
framing of the controls) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from markupsafe import escape
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from regime_trader.service.alerts import AlertKind
from regime_trader.service.cycle_report import cycle_alert
from regime_trader.service.dashboard import charts
from regime_trader.service.dashboard.data import PortfolioView, portfolio_view
from regime_trader.service.http import build_http_app
from regime_trader.service.logs import get_logger
from regime_trader.service.metrics import package_version

if TYPE_CHECKING:
    from jinja2 import Environment

    from regime_trader.service.app import Service

__all__ = ["Dashboard", "service_http_app"]

log = get_logger(__name__)

MAX_FORM_BYTES = 4096
MAX_REASON_CHARS = 200
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class Dashboard:
    """The dashboard of a running :class:`~regime_trader.service.app.Service`.

    Parameters
    ----------
    service : Service
        Whose portfolios, store, broker and alerts the page reads (and the controls write).
    control_token : SecretStr, optional
        ``RT_CONTROL_TOKEN``; None makes the dashboard read-only.
    redact : callable, default identity
        Applied to every page (the service's secret redactor).
    """

    def __init__(
        self,
        service: Service,
        *,
        control_token: SecretStr | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.service = service
        self._token = None if control_token is None else control_token.get_secret_value()
        self._redact = redact

    @functools.cached_property
    def _templates(self) -> Environment:
        # Built (and jinja2 imported) at the first page: a service nobody browses never pays
        # for it (about 0.6 MiB resident, measured with benchmarks/startup.py).
        from jinja2 import Environment, PackageLoader, select_autoescape

        return Environment(
            loader=PackageLoader("regime_trader.service.dashboard", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @property
    def controls_enabled(self) -> bool:
        return self._token is not None

    def routes(self) -> Sequence[BaseRoute]:
        """The routes to add to the ops app (:func:`regime_trader.service.http.build_http_app`)."""
        static = StaticFiles(packages=[("regime_trader.service.dashboard", "static")])
        return [
            Route("/", self.page, methods=["GET"]),
            Mount("/static", app=static, name="static"),
            Route("/control/halt", self.halt, methods=["POST"]),
            Route("/control/resume", self.resume, methods=["POST"]),
        ]

    # ------------------------------------------------------------------ the page

    def page(self, _request: Request) -> Response:
        """Render every portfolio (plain function: Starlette runs it in its thread pool)."""
        views = [portfolio_view(ctx) for ctx in self.service.contexts.values()]
        html = self._templates.get_template("dashboard.html").render(
            portfolios=[_Section(v) for v in views],
            version=package_version(),
            broker=self._broker(),
            instance=self.service.owner,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            controls=self.controls_enabled,
            percent=charts.percent,
        )
        return HTMLResponse(self._redact(html), headers=_HEADERS)

    def _broker(self) -> str:
        settings = self.service.settings
        if self.service.emulator is not None:
            return "emulator (embedded, simulated clock)"
        if settings.alpaca_base_url:
            return f"Alpaca-compatible at {settings.alpaca_base_url}"
        return "Alpaca live" if settings.live_trading else "Alpaca paper"

    # ------------------------------------------------------------------ controls

    async def halt(self, request: Request) -> Response:
        return await self._control(request, "halt")

    async def resume(self, request: Request) -> Response:
        return await self._control(request, "resume")

    async def _control(self, request: Request, action: str) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _refusal(413, "the form is too large")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", errors="replace")).items()}
        if not self._authorised(request, form.get("token")):
            # The attempt is worth a line; what was sent as a token is not.
            log.warning("dashboard control refused", action=action, reason="token")
            return _refusal(403, "wrong or missing control token" if self._token else "read-only")
        name = form.get("portfolio", "")
        if name not in self.service.contexts:
            return _refusal(404, f"unknown portfolio {name!r}")
        if action == "halt":
            reason = " ".join(form.get("reason", "").split())[:MAX_REASON_CHARS]
            if not reason:
                return _refusal(400, "a halt needs a reason")
            # Redis and the notifiers (network calls) off the event loop: /healthz keeps answering.
            await run_in_threadpool(self._halt, name, reason)
        else:
            await run_in_threadpool(self._resume, name)
        return RedirectResponse(f"/#portfolio-{name}", status_code=303)

    def _authorised(self, request: Request, form_token: str | None) -> bool:
        if self._token is None:
            return False
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else (form_token or "")
        return hmac.compare_digest(given.encode("utf-8"), self._token.encode("utf-8"))

    def _halt(self, name: str, reason: str) -> None:
        by = f"dashboard ({self.service.owner})"
        self.service.store.halt(name, reason, by=by)
        self._publish(name, "halted", f"{name}: halted from the dashboard ({reason})", reason)
        log.warning("halted from the dashboard", portfolio=name, reason=reason)

    def _resume(self, name: str) -> None:
        was = self.service.store.resume(name)
        summary = f"{name}: resumed from the dashboard" + ("" if was else " (was not halted)")
        self._publish(name, "resumed", summary, "operator resumed trading")
        log.warning("resumed from the dashboard", portfolio=name, was_halted=was)

    def _publish(self, name: str, kind: AlertKind, summary: str, reason: str) -> None:
        session = datetime.now(UTC).date().isoformat()
        # An operator's halt or resume is worth a look whichever it is: both warn (as the CLI).
        alert = cycle_alert(name, session, kind, summary, {"reason": reason}, severity="warning")
        self.service.alerts.publish(alert)


def service_http_app(
    service: Service,
    *,
    control_token: SecretStr | None = None,
    redact: Callable[[str], str] = str,
) -> Starlette:
    """The ops app ``run`` serves: ``/healthz``, ``/readyz``, ``/metrics``, ``/status`` and the
    dashboard, every body through ``redact``.

    Serve it with :func:`regime_trader.service.http.start_http_server`.
    """
    dashboard = Dashboard(service, control_token=control_token, redact=redact)
    return build_http_app(
        status=service.status,
        readiness=service.readiness,
        metrics=service.metrics,
        redact=redact,
        extra_routes=dashboard.routes(),
    )


class _Section:
    """A portfolio's view with its charts rendered, for the template."""

    def __init__(self, view: PortfolioView) -> None:
        self.view = view
        self.equity_chart = charts.line_chart(
            "equity",
            f"{view.name}: return since the first session",
            view.equity_lines,
            empty=view.notes.get("equity", "no equity recorded yet"),
        )
        self.equity_legend = charts.legend([(line.key, line.label) for line in view.equity_lines])
        labels = list(view.regime_probs)
        self.regime_chart = charts.regime_chart(
            f"{view.name}: filtered regime probabilities and {view.price_symbol}",
            view.regime_days,
            view.regime_probs,
            view.price,
            empty=view.notes.get("regimes", "no regime probabilities yet"),
        )
        self.regime_legend = charts.legend(
            [(label, f"P({label})") for label in labels]
            + [("price", f"{view.price_symbol} close (right axis)")]
        )
        symbols = list(view.symbols)
        held = view.held.weights if view.held else {}
        weights = [charts.Bars("target", "Target", [view.target.get(s, 0.0) for s in symbols])]
        if view.held is not None:
            weights.append(charts.Bars("held", "Held", [held.get(s, 0.0) for s in symbols]))
        self.weights_chart = charts.bar_chart(
            "weights",
            f"{view.name}: target and held weights",
            symbols if view.target or held else [],
            weights,
            empty=view.notes.get("weights", "no signal yet"),
        )
        self.weights_legend = charts.legend([(b.key, b.label) for b in weights])
        risk = view.risk
        self.risk_chart = charts.bar_chart(
            "risk",
            f"{view.name}: realised risk contributions",
            list(risk.symbols) if risk else [],
            [charts.Bars("held", "Share of the held portfolio's variance", list(risk.shares))]
            if risk
            else [],
            reference=1.0 / len(risk.symbols) if risk else None,
            empty=view.notes.get("risk", "not enough data yet"),
        )
        self.risk_legend = charts.legend(
            [("held", "Share of variance (held)"), ("reference", "Equal share")]
        )


def _refusal(status: int, why: str) -> Response:
    body = f"<!doctype html><title>{status}</title><p>{status}: {escape(why)}. Nothing changed.</p>"
    return HTMLResponse(body, status_code=status, headers=_HEADERS)
