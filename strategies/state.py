"""A strategy's saved state: a small JSON header and named float arrays, never pickle.

:meth:`Strategy.save_state <regime_trader.strategies.base.Strategy.save_state>` returns a
:class:`StrategyState`: the state tree of the strategy (nested dicts of scalars, strings and short
lists) with its arrays -- fitted parameters, filter values, recursions, the bounded training
window -- as NumPy arrays. It is stored as *fields*, one name to bytes each (a Redis hash maps
onto them one to one):

- ``"header"``: UTF-8 JSON ``{"schema": 2, "tree": ..., "arrays": {name: layout}}`` where each
  array of the tree is replaced by ``{"$array": name}`` and its layout is its dtype (``"<f8"``,
  ``"<i8"``, ``"|b1"``: numbers only, so nothing is ever unpickled), shape and rows per block;
- ``"a:<name>#<k>"``: block k of array ``name``, its raw little-endian C-order bytes (read
  with ``np.frombuffer`` after the sizes are checked against the layout). An array is split
  into blocks of about :data:`BLOCK_BYTES` along its first axis, so a ring buffer that
  overwrites one row a day changes one block: a store that compares the fields it loaded with
  the fields it saves writes only what changed (:func:`changed_fields`).

:meth:`StrategyState.to_bytes` frames the same fields in one blob for files and tests. Floats
are stored as their IEEE bytes, so a restored strategy continues bit for bit. The schema version
is the container's; the tree carries the strategy's own layout version (see
:mod:`regime_trader.strategies.base`), and the JSON form of earlier versions is still read there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "HEADER",
    "SCHEMA",
    "StateFormatError",
    "StrategyState",
    "changed_fields",
    "json_tree",
]

SCHEMA: Final = 2
"""Version of the field layout; 1 was the whole state as one JSON document."""
BLOCK_BYTES: Final = 32_768
"""Bytes per stored block of a long array (at least one row): small writes, few fields."""
HEADER: Final = "header"
ARRAY_PREFIX: Final = "a:"
_REF: Final = "$array"
_MAGIC: Final = b"RTSTATE2"
_LENGTHS: Final = np.dtype("<u4")  # a field's name and data lengths in a blob
_V = TypeVar("_V", str, bytes)
_DTYPES: Final = frozenset({"|b1", "<i8", "<f8"})  # what states hold: nothing needs pickle


class StateFormatError(ValueError):
    """Saved state bytes that this version cannot read (schema, framing, an array's dtype)."""


@dataclass(frozen=True)
class StrategyState:
    """A strategy's state tree: nested dicts whose leaves are JSON values or NumPy arrays.

    An array is never inside a list.
    """

    tree: dict[str, Any]

    def fields(self) -> dict[str, bytes]:
        """The stored form: ``"header"`` and one ``"a:<name>#<k>"`` per array block."""
        arrays: dict[str, np.ndarray] = {}
        header_tree = _extract(self.tree, "", arrays)
        out: dict[str, bytes] = {}
        layouts: dict[str, dict[str, Any]] = {}
        for name, array in arrays.items():
            layout, blocks = _layout(array)
            layouts[name] = layout
            for k, block in enumerate(blocks):
                out[f"{ARRAY_PREFIX}{name}#{k}"] = block
        header = {"schema": SCHEMA, "tree": header_tree, "arrays": layouts}
        out[HEADER] = json.dumps(header, separators=(",", ":")).encode()
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[str, bytes]) -> StrategyState:
        """Read what :meth:`fields` wrote.

        Raises
        ------
        StateFormatError
            For another schema, a missing, extra or mis-sized block, or a dtype that is not
            one of the plain numbers a state holds.
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
        for name, layout in header["arrays"].items():
            arrays[name], keys = _read(name, layout, fields)
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
            chunks.append(np.array([len(key), len(data)], dtype=_LENGTHS).tobytes())
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
            n_key, n_data = (int(n) for n in np.frombuffer(view[at : at + 8], dtype=_LENGTHS))
            at += 8
            end = at + n_key + n_data
            if end > len(view):
                raise StateFormatError("state blob cut short in a field")
            fields[str(bytes(view[at : at + n_key]), "utf-8")] = bytes(view[at + n_key : end])
            at = end
        return cls.from_fields(fields)


def changed_fields(
    saved: Mapping[str, _V], previous: Mapping[str, _V] | None
) -> tuple[dict[str, _V], list[str]]:
    """What to write and what to delete to turn ``previous`` into ``saved``.

    The values are compared as they are: the bytes of :meth:`StrategyState.fields`, or any
    encoding of them applied to both sides.

    Returns
    -------
    changed : dict
        Fields of ``saved`` that ``previous`` lacks or holds with another value.
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


def _layout(array: np.ndarray) -> tuple[dict[str, Any], list[bytes]]:
    """The array's dtype, shape and rows per block, and its blocks' bytes."""
    array = np.ascontiguousarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype.str not in _DTYPES:
        raise ValueError(f"state arrays must hold numbers, got dtype {array.dtype}")
    array = array.astype(dtype, copy=False)
    data = array.tobytes()
    if array.ndim == 0 or array.shape[0] == 0:
        return {"dtype": dtype.str, "shape": list(array.shape), "block_rows": 1}, [data]
    row_bytes = max(len(data) // array.shape[0], 1)
    rows = max(1, BLOCK_BYTES // row_bytes)
    step = rows * row_bytes
    blocks = [data[i : i + step] for i in range(0, len(data), step)]
    return {"dtype": dtype.str, "shape": list(array.shape), "block_rows": rows}, blocks


def _read(
    name: str, layout: Mapping[str, Any], fields: Mapping[str, bytes]
) -> tuple[np.ndarray, list[str]]:
    """Check an array's blocks against its layout and join them, without a copy per block."""
    try:
        dtype = np.dtype(str(layout["dtype"]))
        shape = tuple(int(n) for n in layout["shape"])
        rows = int(layout["block_rows"])
    except (KeyError, TypeError, ValueError) as e:
        raise StateFormatError(f"state array {name!r} has a bad layout {layout!r}: {e}") from e
    if dtype.str not in _DTYPES or rows < 1 or any(n < 0 for n in shape):
        raise StateFormatError(f"state array {name!r} has a bad layout {layout!r}")
    n_rows = shape[0] if shape else 1
    keys = [f"{ARRAY_PREFIX}{name}#{k}" for k in range(max(1, -(-n_rows // rows)))]
    missing = [k for k in keys if k not in fields]
    if missing:
        raise StateFormatError(f"state array {name!r} lacks blocks {missing}")
    data = b"".join(fields[k] for k in keys) if len(keys) > 1 else fields[keys[0]]
    size = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if len(data) != size:
        raise StateFormatError(
            f"state array {name!r} has {len(data)} bytes, its layout {layout!r} needs {size}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy(), keys
