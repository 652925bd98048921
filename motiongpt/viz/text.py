"""Captions on rendered frames: cleaning, width-aware wrapping and a font list safe for any script.

Captions come from datasets and from users (the web UI), so they may hold any Unicode: accents,
CJK, emoji, control characters, ``$`` signs. Matplotlib would read two ``$`` as math and fail or
garble the caption (the renderers pass ``parse_math=False``), and would warn and draw empty boxes
for characters its default font lacks. :data:`FONT_FAMILY` lists DejaVu Sans, then any installed
font that covers East Asian scripts, then matplotlib's bundled "Last Resort" font, which draws a
visible placeholder for every remaining code point instead of warning.
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["clean_text", "display_width", "font_family", "wrap_text"]

# Fonts tried after DejaVu Sans for the characters it lacks, when installed (none are required).
_WIDE_SCRIPT_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "Noto Sans",
    "Noto Sans Symbols",
    "Noto Sans Symbols2",
)
_LAST_RESORT = "Last Resort High-Efficiency"  # shipped with matplotlib >= 3.10


@functools.lru_cache(maxsize=1)
def font_family() -> tuple[str, ...]:
    """Font family fallback list for matplotlib text: DejaVu Sans, installed wide-script fonts,
    then the Last Resort placeholder font (each only when matplotlib knows it)."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    extra = [name for name in _WIDE_SCRIPT_FONTS if name in known]
    tail = [_LAST_RESORT] if _LAST_RESORT in known else []
    return ("DejaVu Sans", *extra, *tail)


def clean_text(text: str | None) -> str:
    """One line of printable text: whitespace runs (newlines, tabs) become one space, other
    control and format characters (NUL, bell, zero-width joiners, bidi overrides) are dropped."""
    if not text:
        return ""
    if not isinstance(text, str):
        raise TypeError(f"caption must be a string, got {type(text).__name__}")
    kept = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    return " ".join(kept.split())


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes in a monospace-ish sense: East Asian wide characters count 2."""
    return sum(_char_width(ch) for ch in text)


def _split_long(word: str, width: int) -> list[str]:
    """Break a word wider than ``width`` columns into pieces that fit (CJK has no spaces)."""
    pieces, cur, cur_w = [], "", 0
    for ch in word:
        w = _char_width(ch)
        if cur and cur_w + w > width:
            pieces.append(cur)
            cur, cur_w = "", 0
        cur += ch
        cur_w += w
    if cur:
        pieces.append(cur)
    return pieces


def wrap_text(text: str | None, width: int, max_lines: int | None = 4) -> str:
    """Clean ``text`` (:func:`clean_text`) and wrap it to lines of at most ``width`` columns.

    Words longer than a line are broken; East Asian wide characters count two columns. With
    ``max_lines``, extra lines are dropped and the last kept line ends with an ellipsis.
    Returns the lines joined by newlines ("" for an empty caption).
    """
    width = max(int(width), 8)
    lines: list[str] = []
    cur, cur_w = "", 0
    for word in clean_text(text).split(" "):
        if not word:
            continue
        for piece in _split_long(word, width) if display_width(word) > width else [word]:
            w = display_width(piece)
            if cur and cur_w + 1 + w <= width:
                cur, cur_w = f"{cur} {piece}", cur_w + 1 + w
            else:
                if cur:
                    lines.append(cur)
                cur, cur_w = piece, w
    if cur:
        lines.append(cur)
    if max_lines is not None and len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and display_width(last) + 1 > width:
            last = last[:-1]
        lines = lines[: max_lines - 1] + [last.rstrip() + "\u2026"]
    return "\n".join(lines)
