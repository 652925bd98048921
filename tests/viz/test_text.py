"""Caption cleaning and wrapping."""

from __future__ import annotations

from motiongpt.viz.text import clean_text, display_width, font_family, wrap_text


def test_clean_text_drops_controls_and_collapses_space() -> None:
    assert clean_text("  a\tperson\n\nwalks\x00\x07 \u200bfast ") == "a person walks fast"
    assert clean_text(None) == "" and clean_text("") == ""
    assert clean_text("saute à la corde — 人") == "saute à la corde — 人"


def test_wrap_respects_width_and_keeps_words() -> None:
    text = "a person walks forward slowly then turns left and waves with both hands"
    lines = wrap_text(text, 20, max_lines=None).split("\n")
    assert all(display_width(line) <= 20 for line in lines)
    assert " ".join(lines) == text  # no word lost or split


def test_wrap_breaks_cjk_by_display_width() -> None:
    text = "一个人向前走然后转身挥手" * 2  # 24 wide characters, no spaces
    lines = wrap_text(text, 10, max_lines=None).split("\n")
    assert all(display_width(line) <= 10 for line in lines)
    assert "".join(lines) == text and len(lines) == 5


def test_wrap_truncates_with_ellipsis() -> None:
    out = wrap_text("word " * 50, 12, max_lines=3)
    lines = out.split("\n")
    assert len(lines) == 3 and lines[-1].endswith("\u2026") and all(display_width(x) <= 12 for x in lines)
    assert wrap_text("   ", 10) == ""


def test_font_family_starts_with_dejavu() -> None:
    fam = font_family()
    assert fam[0] == "DejaVu Sans" and len(set(fam)) == len(fam)
