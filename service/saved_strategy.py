"""How a portfolio's strategy state is kept in Redis, and the write-ahead copy of its changes.

The key ``ns:p:strategy`` (:mod:`regime_trader.service.store`) is a hash, schema 2:

================  ===========================================================================
``header``        the JSON header of the :class:`~regime_trader.strategies.state.StrategyState`
``a:<name>#<k>``  base64 of block k of array ``name`` (blocks of ~32 kB: a day rewrites few)
``bar_basis``     JSON of the bar basis (:mod:`regime_trader.service.bar_history`)
``generation``    how many completed cycles have written this hash (1 when it was created)
================  ===========================================================================

Before schema 2 it was a string holding one JSON document, the strategy's ``state_dict()`` with
the bar basis under ``bar_basis``; such a key is still read, and the first cycle that completes
replaces it with the hash (the migration: the strategy is restored from the document and saved
again, so it continues bit for bit).

The signal step computes the new state; the cycle writes it ahead into the cycle record (JSON)
and completes by applying it to the hash, atomically with step ``done``. What it writes ahead is
a *state document* holding only the fields that differ from the stored ones::

    {"$state": 2, "base": <generation it was computed from, or None>,
     "fields": {name: text}, "removed": [name, ...], "bar_basis": {...}}

With ``base`` None (nothing stored yet, or a JSON document) it holds every field and replaces
the key; otherwise it applies only on top of that generation. At N = 50 a day changes ~100 kB of
a 1.5 MB hash. Base64 keeps every value text, so the service's ``decode_responses`` client and the
tools that dump keys read the hash like any other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from regime_trader.service.bar_history import BASIS_KEY
from regime_trader.service.exceptions import ReconciliationError
from regime_trader.strategies.state import HEADER, SCHEMA, StrategyState, changed_fields, json_tree

__all__ = [
    "GENERATION",
    "STATE_DOCUMENT",
    "HashUpdate",
    "SavedStrategy",
    "hash_update",
    "is_state_document",
    "state_document",
]

STATE_DOCUMENT = "$state"
"""Key marking a state document (its value: the schema)."""
GENERATION = "generation"


def _encode(fields: Mapping[str, bytes]) -> dict[str, str]:
    """Hash values: the header as its JSON text, array blocks as base64."""
    return {
        k: v.decode() if k == HEADER else base64.b64encode(v).decode("ascii")
        for k, v in fields.items()
    }


def _decode(fields: Mapping[str, str]) -> dict[str, bytes]:
    return {
        k: v.encode() if k == HEADER else base64.b64decode(v, validate=True)
        for k, v in fields.items()
    }


def is_state_document(value: Mapping[str, Any]) -> bool:
    """Whether ``value`` is a state document (as opposed to a JSON state of earlier releases)."""
    return value.get(STATE_DOCUMENT) == SCHEMA


@dataclass(frozen=True)
class SavedStrategy:
    """The strategy key as read: the hash's state fields, or a JSON document.

    Attributes
    ----------
    fields : dict of str to str or None
        The stored state fields (header and array blocks, as stored), schema 2.
    document : dict or None
        A JSON state of an earlier release (``state_dict()``), when the key is a string.
    generation : int or None
        The hash's generation; None for a string key.
    basis : object or None
        The bar basis as JSON data; None when none was saved.
    """

    fields: dict[str, str] | None
    document: dict[str, Any] | None
    generation: int | None
    basis: Any

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> SavedStrategy:
        """Read ``HGETALL`` of the strategy key.

        Raises
        ------
        ReconciliationError
            If the hash has no state header, or no generation or one that is not an integer.
        """
        fields = dict(raw)
        try:
            generation = int(fields.pop(GENERATION))
        except (KeyError, ValueError) as e:
            raise ReconciliationError(f"the strategy hash has no usable generation: {e}") from e
        basis = fields.pop(BASIS_KEY, None)
        if HEADER not in fields:
            raise ReconciliationError("the strategy hash has no state header")
        return cls(fields, None, generation, None if basis is None else json.loads(basis))

    @classmethod
    def from_string(cls, text: str) -> SavedStrategy:
        """Read a string key: a JSON state of an earlier release, or a whole state document.

        Raises
        ------
        ReconciliationError
            If it is a state document that holds only changes (it cannot stand alone).
        """
        value = dict(json.loads(text))
        basis = value.pop(BASIS_KEY, None)
        if not is_state_document(value):
            return cls(None, value, None, basis)
        if value.get("base") is not None:
            raise ReconciliationError(
                f"the strategy key holds the changes to generation {value['base']}, not a state"
            )
        return cls(dict(value["fields"]), None, None, basis)

    @cached_property
    def raw_fields(self) -> dict[str, bytes] | None:
        """The state fields as :meth:`StrategyState.fields` gives them (decoded once)."""
        return None if self.fields is None else _decode(self.fields)

    def state(self) -> StrategyState | dict[str, Any]:
        """What :func:`~regime_trader.strategies.registry.strategy_from_state` restores from."""
        if self.raw_fields is not None:
            return StrategyState.from_fields(self.raw_fields)
        assert self.document is not None  # nosec B101 - one of the two is always set
        return self.document

    @cached_property
    def last_date(self) -> str | None:
        """The last bar the saved strategy saw (ISO date-time), None before any bar."""
        if self.fields is not None:
            value = json.loads(self.fields[HEADER])["tree"].get("last_date")
        else:
            assert self.document is not None  # nosec B101 - one of the two is always set
            value = self.document.get("last_date")
        return None if value is None else str(value)

    def as_document(self) -> dict[str, Any]:
        """One JSON document of the whole state with its bar basis (for inspection and tests)."""
        state = self.state()
        tree = json_tree(state.tree) if isinstance(state, StrategyState) else dict(state)
        return tree if self.basis is None else {**tree, BASIS_KEY: self.basis}


def state_document(
    saved: StrategyState, basis: Mapping[str, Any], stored: SavedStrategy | None
) -> dict[str, Any]:
    """The JSON-serialisable changes that turn the stored state into ``saved``.

    Parameters
    ----------
    saved : StrategyState
        The strategy's state after today's update.
    basis : mapping
        The bar basis to keep with it.
    stored : SavedStrategy or None
        What the signal step loaded (its fields are the base of the changes when it is a hash).
    """
    fields = saved.fields()
    removed: list[str] = []
    base: int | None = None
    if stored is None or stored.generation is None or stored.raw_fields is None:
        changed = _encode(fields)
    else:  # compared as bytes, so only the fields that changed are encoded
        raw, removed = changed_fields(fields, stored.raw_fields)
        changed = _encode(raw)
        base = stored.generation
    return {
        STATE_DOCUMENT: SCHEMA,
        "base": base,
        "fields": changed,
        "removed": removed,
        BASIS_KEY: dict(basis),
    }


@dataclass(frozen=True)
class HashUpdate:
    """What completing a cycle writes to the strategy key."""

    replace: bool  # delete the key first (it is a string or absent)
    mapping: dict[str, str]  # fields to set, generation and bar basis included
    removed: list[str]  # fields to delete


def hash_update(document: Mapping[str, Any], stored_generation: int | None) -> HashUpdate:
    """The writes that apply a state document on top of the stored generation.

    Raises
    ------
    ReconciliationError
        If the document holds changes to another generation than the one stored.
    """
    base = document["base"]
    if base != stored_generation and base is not None:
        raise ReconciliationError(
            f"the cycle's strategy state changes generation {base}, but generation "
            f"{stored_generation} is stored: clear the strategy state to start over"
        )
    generation = 1 if base is None else int(base) + 1
    mapping = {
        **document["fields"],
        BASIS_KEY: json.dumps(document[BASIS_KEY], allow_nan=False),
        GENERATION: str(generation),
    }
    return HashUpdate(base is None, mapping, list(document["removed"]))
