"""Old home of :func:`strategies.registry.build_strategy`, re-exported for ``service.config``."""

from strategies.registry import build_strategy as build_strategy
