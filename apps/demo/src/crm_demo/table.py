"""Plain aligned text: reads the same in a terminal and in a CI log (no colour, no boxes)."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from typing import Final

from crm_demo.outcome import StepOutcome

HEADERS: Final = ("step", "guide rule", "expected", "what happened", "ok")
FIXED: Final = (24, 10, 2)  # step, rule, ok
SEPARATOR: Final = " | "
MIN_WIDTH: Final = 100
MAX_WIDTH: Final = 160
DETAIL_INDENT: Final = "    "


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def terminal_width() -> int:
    # Without a terminal (CI logs, pipes) the fallback applies: logs do not wrap lines.
    return max(MIN_WIDTH, min(shutil.get_terminal_size((140, 24)).columns, MAX_WIDTH))


def widths(total: int) -> tuple[int, int, int, int, int]:
    """Column widths filling `total` characters: the free text gets the rest, 2:3."""
    step, rule, ok = FIXED
    free = max(total - step - rule - ok - len(SEPARATOR) * 4, 40)
    expected = free * 2 // 5
    return step, rule, expected, free - expected, ok


def columns(rows: Sequence[Sequence[str]], gap: str = "  ") -> list[str]:
    """Rows as left-aligned columns, each as wide as its widest cell."""
    if not rows:
        return []
    count = max(len(row) for row in rows)
    sizes = [max(len(row[i]) for row in rows if i < len(row)) for i in range(count)]
    return [
        gap.join(cell.ljust(size) for cell, size in zip(row, sizes, strict=False)).rstrip()
        for row in rows
    ]


def _line(cells: Sequence[str], sizes: Sequence[int]) -> str:
    return SEPARATOR.join(c.ljust(w) for c, w in zip(cells, sizes, strict=True)).rstrip()


def render(outcomes: Sequence[StepOutcome], width: int | None = None) -> str:
    sizes = widths(width or terminal_width())
    rule_line = "-+-".join("-" * w for w in sizes)
    lines = [_line(HEADERS, sizes), rule_line]
    for o in outcomes:
        texts = (f"{o.step}. {o.title}", o.rule, o.expected, o.happened, mark(o.ok))
        wrapped = [
            # The step's title continues under its text, not under its number.
            textwrap.wrap(text, size, break_on_hyphens=False, subsequent_indent=indent) or [""]
            for text, size, indent in zip(texts, sizes, ("   ", "", "", "", ""), strict=True)
        ]
        for i in range(max(len(cell) for cell in wrapped)):
            lines.append(_line([c[i] if i < len(c) else "" for c in wrapped], sizes))
        lines.extend(DETAIL_INDENT + d for d in o.detail)
        lines.append(rule_line)
    return "\n".join(lines)


def summary(outcomes: Sequence[StepOutcome]) -> str:
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return f"All {len(outcomes)} steps matched the sales guide."
    names = "; ".join(f"step {o.step} ({o.title})" for o in failed)
    return f"{len(failed)} of {len(outcomes)} steps did not match the guide: {names}"
