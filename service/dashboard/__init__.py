"""The operator's dashboard served by ``regime-trader run`` at ``/`` (see :mod:`.web`).

``web`` holds the routes and the controls, ``data`` reads what each panel shows into frozen
views, ``charts`` draws them as inline SVG, ``risk`` and ``schedule`` compute the realised risk
contributions and the next run; ``templates/`` and ``static/`` are package data.
"""

from __future__ import annotations

from regime_trader.service.dashboard.web import Dashboard, service_http_app

__all__ = ["Dashboard", "service_http_app"]
