"""Plain-text tables and number formats for the benchmark report."""

from __future__ import annotations

from typing import Sequence


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
          notes: Sequence[str] = ()) -> str:
    """An aligned table: text columns left, everything else right."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    numeric = [all(_numeric(row[i]) for row in cells) and bool(cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(list(headers)))
    out = [title, "=" * len(title), line(list(headers)), rule]
    out += [line(row) for row in cells]
    out += [f"  {note}" for note in notes]
    return "\n".join(out) + "\n"


def _numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("x", "").replace("%", "").replace(">=", "").strip()
    if stripped in ("", "-", "n/a"):
        return True
    try:
        float(stripped)
    except ValueError:
        return False
    return True


def rate(value: float | None) -> str:
    """``12,345`` (no decimals), or ``n/a``."""
    return "n/a" if value is None else f"{value:,.0f}"


def ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.2f}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def met(value: float | None, target: float | None) -> str:
    """``yes``/``NO``/``-`` for a ratio or rate against its minimum."""
    if target is None or value is None:
        return "-"
    return "yes" if value >= target else "NO"
