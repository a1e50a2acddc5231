"""Sizes, counts, plurals and money as people read them, shared by the CLI, the TUI and
the exports (so a cost never shows as `8.675e-05` anywhere)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def human_count(value: float) -> str:
    # the unit is chosen after rounding: 999,999 reads 1.0M, not 1000k
    if value >= 999_950_000:
        return f"{value / 1_000_000_000:.1f}B"
    if value >= 999_500:
        return f"{value / 1_000_000:.1f}M"
    if value >= 9_950:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,234 rows`; `many` for words that do not just take an s
    (`plural(n, "batch", "batches")`)."""
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {many or word + 's'}"


def _decimal(value: float | Decimal) -> Decimal:
    # repr, not the binary value: 8.675e-05 is the price the server sent, not
    # 0.0000867499999999999966...
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def plain_number(value: float | Decimal) -> str:
    """A number as digits, never in exponent form: 8.675e-05 -> `0.00008675` (for CSV
    cells and JSON-ish text, where a reader or a spreadsheet should get every digit)."""
    text = format(_decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def money(value: float | Decimal | None, *, currency: str = "$") -> str:
    """A cost as people read it: `$0.000087`, `$0.0123`, `$1.50`, `$1,234.00`.

    At least two decimals, and small amounts keep two significant digits (up to six
    decimals, below which it is `<$0.000001`); never an exponent."""
    if value is None:
        return "-"
    amount = _decimal(value)
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return f"{currency}0.00"
    if amount >= 1:
        return f"{sign}{currency}{amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    if amount < Decimal("0.000001"):
        return f"{sign}<{currency}0.000001"
    # two significant digits: the first non-zero decimal and the next one
    places = max(2, -amount.adjusted() + 1)
    text = f"{amount.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0").ljust(2, "0")  # $0.0002, not $0.00020
    return f"{sign}{currency}{whole}.{decimals}"


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


def json_money(amount: Decimal | None) -> Decimal | None:
    """An amount for a --json document, rounded to 1e-10 (the CLI prints Decimals as
    plain JSON numbers, never 8.7e-05)."""
    if amount is None:
        return None
    return amount.quantize(Decimal("1e-10"), ROUND_HALF_UP)
