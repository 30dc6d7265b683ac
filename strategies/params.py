"""Parameter records from plain data: the one reader of every strategy's settings.

Portfolios set a strategy's parameters in TOML, the research protocol in its trials, and a
saved state records them as JSON; all three arrive as nested mappings of plain values.
:func:`record_from_dict` turns such a mapping into the frozen dataclass it describes, by the
field annotations: nested records from tables, tuples from lists, a ``Literal`` checked against
its choices, ``int``/``float``/``bool``/``str`` checked for their type (a bool is not a number,
2.5 is not an integer). A field the mapping leaves out keeps its default (a state saved before
a field existed still loads); a key the record does not have is refused, and every error names
the dotted path of the field and the value, then the record's own ``__post_init__`` checks run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, Self, TypeVar, Union, get_args, get_origin, get_type_hints

__all__ = ["PlainRecord", "record_from_dict", "record_to_dict"]

_R = TypeVar("_R")
_UNION_TYPE = type(int | None)  # types.UnionType: what ``X | None`` annotations are


def record_to_dict(record: Any) -> dict[str, Any]:
    """The record as nested dicts of plain values (tuples stay tuples; JSON writes lists)."""
    return dataclasses.asdict(record)


def record_from_dict(cls: type[_R], data: object, where: str = "") -> _R:
    """Build the frozen dataclass ``cls`` from a mapping of its fields.

    Parameters
    ----------
    cls : dataclass type
    data : mapping
        Field values; missing fields take their defaults.
    where : str
        Dotted prefix of the fields in error messages (``"policy."``).

    Raises
    ------
    ValueError
        For a key ``cls`` lacks, a value of the wrong type or out of range; the message names
        the field's dotted path and the value.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{where.rstrip('.') or cls.__name__} must be a table, got {data!r}")
    hints, names = _fields(cls)
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise ValueError(f"unknown parameter {where}{unknown[0]!r}; known: {sorted(names)}")
    kwargs = {n: _convert(hints[n], data[n], f"{where}{n}") for n in names if n in data}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where.rstrip('.')}: {e}" if where else str(e)) from e


class PlainRecord:
    """Base of a frozen dataclass of parameters that a portfolio, a trial or a saved state
    gives as nested plain data: :meth:`from_dict` and :meth:`to_dict` by this module's rules."""

    def to_dict(self) -> dict[str, Any]:
        return record_to_dict(self)

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Read from nested plain data; missing fields keep their defaults.

        Raises
        ------
        ValueError
            For an unknown field, a value of the wrong type or out of range (the dotted path
            of the field and the value are named).
        """
        return record_from_dict(cls, data)


_FIELDS: dict[type, tuple[dict[str, Any], list[str]]] = {}


def _fields(cls: type) -> tuple[dict[str, Any], list[str]]:
    """The resolved annotations and init fields of a record class, resolved once per class
    (``get_type_hints`` costs ~0.3 ms a call, and restoring a state reads a dozen records)."""
    if cls not in _FIELDS:
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        _FIELDS[cls] = (get_type_hints(cls), names)
    return _FIELDS[cls]


def _convert(tp: Any, value: object, name: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, _UNION_TYPE):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ValueError(f"{name} must not be empty (None)")
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, name)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{name} must be one of {list(get_args(tp))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{name} must be a list, got {value!r}")
        item = get_args(tp)[0]
        return tuple(_convert(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return record_from_dict(tp, value, f"{name}.")
    return _scalar(tp, value, name)


def _scalar(tp: Any, value: object, name: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    raise TypeError(f"{name}: no reader for the annotation {tp!r}")  # a programming error
