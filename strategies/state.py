"""A strategy's saved state: a small JSON header and named float arrays, never pickle.

:meth:`Strategy.save_state <regime_trader.strategies.base.Strategy.save_state>` returns a
:class:`StrategyState`: the state tree of the strategy (nested dicts of scalars, strings and short
lists) with its arrays -- fitted parameters, filter values, recursions, the bounded training
window -- as NumPy arrays. It is stored as *fields*, one name to bytes each (a Redis hash maps
onto them one to one):

- ``"header"``: UTF-8 JSON ``{"schema": 2, "tree": ..., "arrays": {name: n_blocks}}`` where each
  array of the tree is replaced by ``{"$array": name}``;
- ``"a:<name>#<k>"``: block k of array ``name`` as ``.npy`` bytes (``np.lib.format``, read back
  with ``allow_pickle=False``; only bool, integer and float dtypes are accepted). An array of
  more than :data:`BLOCK_ROWS` rows is split into blocks of that many rows, so a ring buffer
  that overwrites one row a day changes one block: a store that compares the fields it loaded
  with the fields it saves writes only what changed (:func:`changed_fields`).

:meth:`StrategyState.to_bytes` frames the same fields in one blob for files and tests. Floats
are stored as their IEEE bytes, so a restored strategy continues bit for bit. The schema version
is the container's; the tree carries the strategy's own layout version (see
:mod:`regime_trader.strategies.base`), and the JSON form of earlier versions is still read there.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

__all__ = [
    "BLOCK_ROWS",
    "SCHEMA",
    "StateFormatError",
    "StrategyState",
    "changed_fields",
    "json_tree",
]

SCHEMA: Final = 2
"""Version of the field layout; 1 was the whole state as one JSON document."""
BLOCK_ROWS: Final = 64
"""Rows per stored block of a long array."""
HEADER: Final = "header"
ARRAY_PREFIX: Final = "a:"
_REF: Final = "$array"
_MAGIC: Final = b"RTSTATE2"
_KINDS: Final = frozenset("biuf")  # bool, signed, unsigned, float: nothing that needs pickle


class StateFormatError(ValueError):
    """Saved state bytes that this version cannot read (schema, framing, an array's dtype)."""


@dataclass(frozen=True)
class StrategyState:
    """A strategy's state tree, with NumPy arrays at some of its leaves.

    Attributes
    ----------
    tree : dict
        Nested dicts whose leaves are JSON values or ndarrays (never inside a list).
    """

    tree: dict[str, Any]

    def fields(self) -> dict[str, bytes]:
        """The stored form: ``"header"`` and one ``"a:<name>#<k>"`` per array block."""
        arrays: dict[str, np.ndarray] = {}
        header_tree = _extract(self.tree, "", arrays)
        out: dict[str, bytes] = {}
        blocks: dict[str, int] = {}
        for name, array in arrays.items():
            parts = _blocks(array)
            blocks[name] = len(parts)
            for k, part in enumerate(parts):
                out[f"{ARRAY_PREFIX}{name}#{k}"] = _npy(part)
        header = {"schema": SCHEMA, "tree": header_tree, "arrays": blocks}
        out[HEADER] = json.dumps(header, separators=(",", ":")).encode()
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[str, bytes]) -> StrategyState:
        """Read what :meth:`fields` wrote.

        Raises
        ------
        StateFormatError
            For another schema, a missing or extra block, or an array that is not plain
            numbers.
        """
        if HEADER not in fields:
            raise StateFormatError(f"no {HEADER!r} field among {sorted(fields)[:5]}")
        try:
            header = json.loads(fields[HEADER])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StateFormatError(f"the state header is not JSON: {e}") from e
        if not isinstance(header, dict) or header.get("schema") != SCHEMA:
            found = header.get("schema") if isinstance(header, dict) else header
            raise StateFormatError(f"state schema {found!r} is not {SCHEMA}")
        arrays: dict[str, np.ndarray] = {}
        expected = {HEADER}
        for name, n_blocks in header["arrays"].items():
            keys = [f"{ARRAY_PREFIX}{name}#{k}" for k in range(int(n_blocks))]
            missing = [k for k in keys if k not in fields]
            if missing:
                raise StateFormatError(f"state array {name!r} lacks blocks {missing}")
            parts = [_read_npy(fields[k], k) for k in keys]
            arrays[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
            expected.update(keys)
        extra = sorted(set(fields) - expected)
        if extra:
            raise StateFormatError(f"state has fields its header does not name: {extra[:5]}")
        return cls(_insert(header["tree"], arrays))

    def to_bytes(self) -> bytes:
        """All fields in one blob: a magic tag, then (name, bytes) pairs, length-prefixed."""
        chunks = [_MAGIC]
        for name, data in self.fields().items():
            key = name.encode()
            chunks.append(struct.pack("<II", len(key), len(data)))
            chunks.extend((key, data))
        return b"".join(chunks)

    @classmethod
    def from_bytes(cls, data: bytes) -> StrategyState:
        """Read what :meth:`to_bytes` wrote.

        Raises
        ------
        StateFormatError
            If the blob is not such a state (or is cut short).
        """
        if not data.startswith(_MAGIC):
            raise StateFormatError("not a strategy state blob (magic tag missing)")
        fields: dict[str, bytes] = {}
        view = memoryview(data)
        at = len(_MAGIC)
        while at < len(view):
            if at + 8 > len(view):
                raise StateFormatError("state blob cut short in a field's lengths")
            n_key, n_data = struct.unpack_from("<II", view, at)
            at += 8
            end = at + n_key + n_data
            if end > len(view):
                raise StateFormatError("state blob cut short in a field")
            fields[bytes(view[at : at + n_key]).decode()] = bytes(view[at + n_key : end])
            at = end
        return cls.from_fields(fields)


def changed_fields(
    saved: Mapping[str, bytes], previous: Mapping[str, bytes] | None
) -> tuple[dict[str, bytes], list[str]]:
    """What to write and what to delete to turn ``previous`` into ``saved``.

    Returns
    -------
    changed : dict of str to bytes
        Fields of ``saved`` that ``previous`` lacks or holds with other bytes.
    removed : list of str
        Fields of ``previous`` that ``saved`` no longer has.
    """
    old = previous or {}
    changed = {k: v for k, v in saved.items() if old.get(k) != v}
    removed = sorted(set(old) - set(saved))
    return changed, removed


def json_tree(tree: Any) -> Any:
    """The tree with every array as nested lists: the JSON-serialisable form."""
    if isinstance(tree, np.ndarray):
        return tree.tolist()
    if isinstance(tree, dict):
        return {k: json_tree(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return [json_tree(v) for v in tree]
    return tree


def _extract(tree: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(tree, np.ndarray):
        arrays[path] = tree
        return {_REF: path}
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            before = len(arrays)
            out[key] = _extract(value, f"{path}.{key}" if path else str(key), arrays)
            if len(arrays) > before and ("." in str(key) or "#" in str(key)):
                raise ValueError(f"a state key above an array has '.' or '#': {key!r}")
        return out
    return tree


def _insert(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_REF}:
            name = tree[_REF]
            if name not in arrays:
                raise StateFormatError(f"state array {name!r} is referenced but not stored")
            return arrays[name]
        return {k: _insert(v, arrays) for k, v in tree.items()}
    return tree


def _blocks(array: np.ndarray) -> list[np.ndarray]:
    if array.ndim == 0 or array.shape[0] <= BLOCK_ROWS:
        return [array]
    return [array[i : i + BLOCK_ROWS] for i in range(0, array.shape[0], BLOCK_ROWS)]


def _npy(array: np.ndarray) -> bytes:
    if array.dtype.kind not in _KINDS:
        raise ValueError(f"state arrays must hold numbers, got dtype {array.dtype}")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _read_npy(data: bytes, name: str) -> np.ndarray:
    try:
        array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise StateFormatError(f"state field {name!r} is not a plain .npy array: {e}") from e
    if array.dtype.kind not in _KINDS:
        raise StateFormatError(f"state field {name!r} holds dtype {array.dtype}, not numbers")
    return array
