"""Every paper account of one emulator, found by its API key; one market, one clock.

``EmulatorConfig.accounts`` > 1 serves that many accounts (keys from
:func:`~regime_trader.service.emulator.config.account_keys`), so a thousand portfolios can each
trade an account of their own on one emulator, as they would at Alpaca. A ``/v2`` request is
answered by the account its ``APCA-API-KEY-ID`` names, when its secret matches.

The clock is the market's: moving it (``PUT /admin/clock``, ``POST /admin/clock/advance``) and
``POST /admin/reset`` act on every account, the first account's answer is returned. The other
admin routes (faults excepted, which are the server's) act on the first account only.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any

from regime_trader.service.emulator.config import account_keys
from regime_trader.service.emulator.engine import Emulator

__all__ = ["Accounts"]


class Accounts:
    """The accounts of ``primary``'s configuration: ``primary`` itself, then its siblings."""

    def __init__(self, primary: Emulator) -> None:
        self.primary = primary
        self._by_key: dict[str, Emulator] = {primary.config.key_id: primary}
        for key_id, secret_key in account_keys(primary.config)[1:]:
            self._by_key[key_id] = primary.sibling(key_id, secret_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def authorized(self, key_id: str | None, secret_key: str | None) -> Emulator | None:
        """The account of this key pair, or None (unknown key, or the wrong secret)."""
        account = self._by_key.get(key_id or "")
        if account is None:
            return None
        expected = account.config.secret_key.encode()
        return account if hmac.compare_digest(expected, (secret_key or "").encode()) else None

    def set_clock(self, value: str) -> dict[str, Any]:
        return self._on_all(lambda e: e.set_clock(value))

    def advance(self, to: str | None, minutes: Any) -> dict[str, Any]:
        return self._on_all(lambda e: e.advance(to, minutes))

    def reset(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._on_all(lambda e: e.reset(body))

    def _on_all(self, act: Callable[[Emulator], dict[str, Any]]) -> dict[str, Any]:
        # The first account validates (a refusal raises before any account moved); the
        # others are at the same instant, so they accept what it accepted.
        answer = act(self.primary)
        for account in self._by_key.values():
            if account is not self.primary:
                act(account)
        return answer
