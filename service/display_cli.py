"""How the operator commands print numbers and tables for people.

Quantities are rounded for reading (4 decimals, trailing zeros dropped: ``294.3681``, ``12``);
the ``--json`` output of every command keeps the full precision the broker reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["money", "percent", "quantity", "signed_percent", "table"]

QTY_DECIMALS = Decimal("0.0001")


def _decimal(value: Decimal | float | str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def quantity(value: Decimal | float | str | None) -> str:
    """A share quantity for reading: at most 4 decimals, no trailing zeros (``-`` if unknown)."""
    number = _decimal(value)
    if number is None:
        return "-"
    rounded = number.quantize(QTY_DECIMALS, rounding=ROUND_HALF_EVEN).normalize()
    text = format(rounded, "f")
    return "0" if text in ("-0", "") else text


def money(value: Decimal | float | str | None) -> str:
    """Dollars with thousands separators and cents: ``$100,000.00``, ``-$12.50``."""
    number = _decimal(value)
    if number is None:
        return "-"
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number):,.2f}"


def percent(value: float | Decimal | str | None, decimals: int = 1) -> str:
    """A fraction as a percentage: ``0.231`` -> ``23.1%``."""
    number = _decimal(value)
    return "-" if number is None else f"{100 * float(number):.{decimals}f}%"


def signed_percent(value: float | Decimal | str | None, decimals: int = 1) -> str:
    """A change as a signed percentage: ``0.001`` -> ``+0.1%``."""
    number = _decimal(value)
    return "-" if number is None else f"{100 * float(number):+.{decimals}f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "") -> list[str]:
    """Lines of a plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(w) for cell, w in zip(cells[1:], widths[1:], strict=True)]
        return (indent + "  ".join([first, *rest])).rstrip()

    return [line(header), *(line(row) for row in rows)]
