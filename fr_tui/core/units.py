"""Sizes, counts and money as people read them, shared by the CLI and the TUI."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def human_count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def parse_money(value: object) -> Decimal | None:
    """A price or amount from config or a server answer: a number or a numeric string,
    as an exact Decimal (a float goes through its shortest repr, so 0.15 stays 0.15).
    None for anything else, negatives, NaN and infinities."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int | float):
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return amount


def format_money(amount: Decimal, currency: str = "$") -> str:
    """Money as people read it, never with an exponent: cents from ten cents up
    ($12.35, $0.50), else three significant digits ($0.0431, $0.000087); $0 for zero."""
    if amount == 0:
        return f"{currency}0"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    places = Decimal(1).scaleb(amount.adjusted() - 2)  # 0.000087 -> 1e-7
    rounded = amount.quantize(places, ROUND_HALF_UP)
    if rounded >= Decimal("0.1"):
        return f"{sign}{currency}{amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    text = format(rounded, "f").rstrip("0").rstrip(".")
    return f"{sign}{currency}{text}"


def json_money(amount: Decimal | None) -> Decimal | None:
    """An amount for a --json document, rounded to 1e-10 (the CLI prints Decimals as
    plain JSON numbers, never 8.7e-05)."""
    if amount is None:
        return None
    return amount.quantize(Decimal("1e-10"), ROUND_HALF_UP)


def decimal_text(amount: Decimal) -> str:
    """A Decimal as a plain number without an exponent or trailing zeros."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
