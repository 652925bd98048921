"""Motion tokens as text: formats, exact round trips, problem messages, and seeded fuzzing.

``hypothesis`` is not installed in the venv, so the fuzz tests are seeded random loops
(several thousand cases, well under a second each).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from motiongpt.llm.tokens import (
    MOTION_END,
    MOTION_START,
    MotionTokenFormat,
    ParseResult,
    codes_to_text,
    extract_key_tokens,
    join_key_tokens,
    load_motion_format,
    motion_token_strings,
    parse_codes_strict,
    save_motion_format,
    text_to_codes,
)

VOCAB = MotionTokenFormat("vocab", 512)
DIGITS = MotionTokenFormat("digits", 512)
FORMATS = [VOCAB, DIGITS]


# ------------------------------------------------------------------------------------ format


def test_format_dict_round_trip_and_validation(tmp_path):
    for fmt in [VOCAB, DIGITS, MotionTokenFormat("digits", 1024), MotionTokenFormat()]:
        assert MotionTokenFormat.from_dict(fmt.to_dict()) == fmt
    assert MotionTokenFormat() == VOCAB  # vocab / 512 is the default
    with pytest.raises(ValueError, match="kind"):
        MotionTokenFormat("words", 512)
    for bad in (0, -3, True, 2.5):
        with pytest.raises(ValueError, match="nb_code"):
            MotionTokenFormat("vocab", bad)
    with pytest.raises(ValueError, match="unknown key"):
        MotionTokenFormat.from_dict({"kind": "vocab", "nb_code": 512, "extra": 1})
    path = save_motion_format(DIGITS, tmp_path)
    assert path.name == "motion_format.json"
    assert load_motion_format(tmp_path) == DIGITS
    assert load_motion_format(path) == DIGITS
    path.write_text('{"kind": "bogus", "nb_code": 5}')
    with pytest.raises(ValueError, match="motion_format.json"):
        load_motion_format(path)


def test_motion_token_strings():
    s = motion_token_strings(VOCAB)
    assert s[:2] == [MOTION_START, MOTION_END]
    assert s[2:] == [f"<motion_id_{k}>" for k in range(512)]
    assert len(set(s)) == 514
    assert motion_token_strings(DIGITS) == [MOTION_START, MOTION_END]
    assert len(motion_token_strings(MotionTokenFormat("vocab", 7))) == 9


# ------------------------------------------------------------------------------ exact texts


def test_codes_to_text_exact():
    assert codes_to_text([315, 91], VOCAB) == "<Motion Token><motion_id_315><motion_id_91></Motion Token>"
    assert codes_to_text([315, 91, 406], DIGITS) == "<Motion Token>315,91,406</Motion Token>"
    assert codes_to_text([315, 91, 406], DIGITS, wrap=False) == "315,91,406"
    assert codes_to_text([315, 91], VOCAB, wrap=False) == "<motion_id_315><motion_id_91>"
    assert codes_to_text([], VOCAB) == "<Motion Token></Motion Token>"
    assert codes_to_text([], DIGITS, wrap=False) == ""
    # numpy arrays / numpy ints are accepted
    assert codes_to_text(np.array([3, 0, 511]), DIGITS) == "<Motion Token>3,0,511</Motion Token>"
    assert codes_to_text([np.int64(7)], VOCAB) == "<Motion Token><motion_id_7></Motion Token>"


@pytest.mark.parametrize("bad", [[512], [-1], [1, 2, 600], [1.5], ["3"], [True], [None]])
def test_codes_to_text_rejects_bad_codes(bad):
    for fmt in FORMATS:
        with pytest.raises(ValueError):
            codes_to_text(bad, fmt)


def test_parse_well_formed_examples():
    r = text_to_codes("<Motion Token><motion_id_315><motion_id_91></Motion Token>", VOCAB)
    assert (r.codes, r.ok, r.problems, r.wrapped) == ([315, 91], True, [], True)
    r = text_to_codes("315,91,406", DIGITS)  # MotionGPT-LoRA train.json output: bare
    assert (r.codes, r.ok, r.wrapped) == ([315, 91, 406], True, False)
    r = text_to_codes("<Motion Token>315,91,406</Motion Token>", DIGITS)
    assert (r.codes, r.ok, r.wrapped) == ([315, 91, 406], True, True)
    r = text_to_codes("  <Motion Token></Motion Token>\n", DIGITS)
    assert (r.codes, r.ok) == ([], True)


def test_problem_messages():
    r = text_to_codes("<Motion Token>1,2,3,600</Motion Token>", DIGITS)
    assert r.problems == ["code 600 out of range [0,512) at position 3"] and r.codes == [1, 2, 3] and not r.ok
    r = text_to_codes("<Motion Token><motion_id_1><motion_id_2><motion_id_3><motion_id_600></Motion Token>", VOCAB)
    assert r.problems == ["code 600 out of range [0,512) at position 3"] and r.codes == [1, 2, 3]
    r = text_to_codes("<Motion Token><motion_id_4><motion_id_5>", VOCAB)
    assert r.problems == ["missing </Motion Token>"] and r.codes == [4, 5]
    r = text_to_codes("<Motion Token>1,abc,2</Motion Token>", DIGITS)
    assert any("unexpected text 'abc' inside motion span" in p for p in r.problems) and r.codes == [1, 2]
    r = text_to_codes("<Motion Token><motion_id_1>abc</Motion Token>", VOCAB)
    assert any("unexpected text 'abc' inside motion span" in p for p in r.problems) and r.codes == [1]
    for text in ("", "   ", "hello world"):
        for fmt in FORMATS:
            r = text_to_codes(text, fmt)
            assert not r.ok and r.codes == [] and r.problems[0].startswith("no motion span found")
    r = text_to_codes("5,6</Motion Token>", DIGITS)
    assert r.problems[0] == "missing <Motion Token>" and r.codes == [5, 6] and not r.ok
    r = text_to_codes("sure! <Motion Token>5</Motion Token>", DIGITS)
    assert r.codes == [5] and not r.ok and "outside motion span" in r.problems[0] and r.before == "sure! "
    r = text_to_codes("<Motion Token><Motion Token>5</Motion Token>", DIGITS)
    assert r.codes == [5] and not r.ok and any("nested" in p for p in r.problems)
    r = text_to_codes("<Motion Token>1</Motion Token><Motion Token>2</Motion Token>", DIGITS)
    assert r.codes == [1] and not r.ok and any("using the first span" in p for p in r.problems)


@pytest.mark.parametrize(
    "text",
    [
        "<Motion Token><motion_id_-1></Motion Token>",
        "<Motion Token><motion_id_99999></Motion Token>",
        "<Motion Token><motion_id_512></Motion Token>",
        "<Motion Token><motion_id_007></Motion Token>",
        "<Motion Token><motion_id_+7></Motion Token>",
        "<Motion Token><motion_id_></Motion Token>",
        "<Motion Token><motion_id_7 ></Motion Token>",
        "<Motion Token> <motion_id_7></Motion Token>",
        "<Motion Token><motion_id_7>\n<motion_id_8></Motion Token>",
        "<Motion Token><MOTION_ID_7></Motion Token>",
        "<motion token><motion_id_7></motion token>",
        "<Motion Token>7</Motion Token>",
        "<Motion Token><motion_id_" + "9" * 5000 + "></Motion Token>",
    ],
)
def test_vocab_look_alikes_are_not_ok(text):
    r = text_to_codes(text, VOCAB)
    assert not r.ok and r.problems
    assert all(0 <= c < 512 for c in r.codes)
    with pytest.raises(ValueError):
        parse_codes_strict(text, VOCAB)


@pytest.mark.parametrize(
    "text",
    [
        "1, 2,3", "1,2,3,", ",1", "1,,2", "1;2", "1 2", "01,2", "+1", "-1", "-0", "1,2\n,3", "1.5",
        "\u0663", "1,\u00a02", "<Motion Token>1,2", "1,2</Motion Token>", "<Motion Token>1,512</Motion Token>",
        "<Motion Token> 1</Motion Token>", "1" * 5000,
    ],
)
def test_digits_malformed_are_not_ok(text):
    r = text_to_codes(text, DIGITS)
    assert not r.ok and r.problems
    assert all(0 <= c < 512 for c in r.codes)
    with pytest.raises(ValueError):
        parse_codes_strict(text, DIGITS)


def test_strict_parser():
    assert parse_codes_strict("<Motion Token>315,91</Motion Token>", DIGITS) == [315, 91]
    assert parse_codes_strict("315,91", DIGITS) == [315, 91]
    assert parse_codes_strict("<Motion Token><motion_id_3></Motion Token>", VOCAB) == [3]
    with pytest.raises(ValueError, match=r"code 600 out of range \[0,512\) at position 1"):
        parse_codes_strict("<Motion Token>1,600</Motion Token>", DIGITS)
    with pytest.raises(ValueError, match="no motion span found"):
        parse_codes_strict("315,91", DIGITS, allow_bare=False)
    with pytest.raises(ValueError, match="missing </Motion Token>"):
        parse_codes_strict("<Motion Token>1", DIGITS)


def test_allow_bare_modes():
    assert text_to_codes("", DIGITS, allow_bare=True).ok
    assert text_to_codes("", DIGITS, allow_bare=True).codes == []
    assert not text_to_codes("", DIGITS).ok
    assert not text_to_codes("1,2", DIGITS, allow_bare=False).ok
    assert text_to_codes("1,2", DIGITS, allow_bare=False).codes == []


def test_non_string_input_never_raises():
    for obj in (None, 5, b"<Motion Token>1</Motion Token>", ["1"]):
        r = text_to_codes(obj, DIGITS)  # type: ignore[arg-type]
        assert isinstance(r, ParseResult) and not r.ok and r.codes == []


# -------------------------------------------------------------------------------- key tokens


def test_extract_key_tokens():
    # the exact shape of MotionGPT-LoRA's train.json inputs: caption glued to the span
    assert extract_key_tokens("a person walks<Motion Token>315,91</Motion Token>", DIGITS) == (
        "a person walks", [315, 91])
    assert extract_key_tokens("a person walks <Motion Token>315,91</Motion Token>", DIGITS) == (
        "a person walks", [315, 91])
    text = "a man jumps<Motion Token><motion_id_5><motion_id_9></Motion Token>"
    assert extract_key_tokens(text, VOCAB) == ("a man jumps", [5, 9])
    assert extract_key_tokens("just a caption.", VOCAB) == ("just a caption.", [])
    assert extract_key_tokens("walks<Motion Token>1,600</Motion Token>", DIGITS) == ("walks", [1])
    with pytest.raises(ValueError, match="out of range"):
        extract_key_tokens("walks<Motion Token>1,600</Motion Token>", DIGITS, strict=True)
    with pytest.raises(ValueError, match="missing"):
        extract_key_tokens("walks<Motion Token>1,2", DIGITS, strict=True)
    for fmt in FORMATS:
        for codes in ([], [0], [511, 3, 3, 42]):
            joined = join_key_tokens("a person waves", codes, fmt)
            assert extract_key_tokens(joined, fmt, strict=True) == ("a person waves", codes)
    assert join_key_tokens("walks", [315, 91], DIGITS) == "walks<Motion Token>315,91</Motion Token>"


# ------------------------------------------------------------------------------------- fuzz


def test_fuzz_round_trip_exact():
    rng = random.Random(1234)
    n = 0
    for _ in range(3000):
        nb = rng.choice([1, 2, 7, 10, 512, 1024, 8192])
        fmt = MotionTokenFormat(rng.choice(["vocab", "digits"]), nb)
        length = rng.choice([0, 0, 1, 2, rng.randint(0, 100)])
        codes = [rng.randrange(nb) for _ in range(length)]
        text = codes_to_text(codes, fmt, wrap=True)
        r = text_to_codes(text, fmt)
        assert (r.codes, r.ok, r.problems) == (codes, True, []), (fmt, codes, text, r)
        assert parse_codes_strict(text, fmt) == codes
        pad = rng.choice(["", " ", "\n", " \t\n "])
        assert text_to_codes(pad + text + pad, fmt).codes == codes
        bare = codes_to_text(codes, fmt, wrap=False)
        rb = text_to_codes(bare, fmt, allow_bare=True)
        assert (rb.codes, rb.ok) == (codes, True), (fmt, codes, bare, rb)
        if codes:
            assert text_to_codes(bare, fmt).codes == codes and text_to_codes(bare, fmt).ok
        n += 1
    assert n >= 2000


_FRAGMENTS = [
    MOTION_START, MOTION_END, "<Motion Token", "Motion Token>", "</Motion Token", "<motion token>",
    "<motion_id_", "motion_id_3>", "<motion_id_>", "<motion_id_-1>", "<motion_id_99999>", "<motion_id_007>",
    "<motion_id_+2>", "<motion_id_1 >", "<motion_id_\u0663>", ",", ",,", " ", "\n", "\t", "-", "+", "0", "00",
    "abc", "é", "\u0663", "\u200b", "\u00a0", "\U0001f600", "\x00", "<", ">", "/", "### Response:",
]


def _random_piece(rng: random.Random, fmt: MotionTokenFormat) -> str:
    r = rng.random()
    if r < 0.35:
        k = rng.choice([rng.randrange(fmt.nb_code), fmt.nb_code, fmt.nb_code + rng.randint(0, 10**6), -1])
        return f"<motion_id_{k}>" if fmt.kind == "vocab" else str(k)
    if r < 0.75:
        return rng.choice(_FRAGMENTS)
    return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(1, 4)))


def _mutate(rng: random.Random, text: str) -> str:
    if not text:
        return rng.choice(_FRAGMENTS)
    i = rng.randrange(len(text) + 1)
    op = rng.randrange(6)
    if op == 0:
        return text[:i] + text[i + 1 :]  # delete a char
    if op == 1:
        return text[:i] + rng.choice(" \n,0987<>/_-abc\u0663") + text[i:]  # insert a char
    if op == 2:
        return text[:i] + rng.choice(_FRAGMENTS) + text[i:]  # insert a fragment
    if op == 3:
        return text + text  # duplicate span
    if op == 4:
        return text[:i]  # cut (partial span)
    return text.replace(",", rng.choice([", ", " ,", ",\n", ";"]), 1) if "," in text else text[::-1]


def _check_oracle(text: str, fmt: MotionTokenFormat) -> ParseResult:
    r = text_to_codes(text, fmt)
    assert isinstance(r.codes, list) and all(isinstance(c, int) and 0 <= c < fmt.nb_code for c in r.codes)
    assert r.ok == (not r.problems), (text, r)
    canon = {codes_to_text(r.codes, fmt, wrap=True)}
    if r.codes:
        canon.add(codes_to_text(r.codes, fmt, wrap=False))
    # ok exactly when the text is (up to surrounding whitespace) what the writer produces
    assert r.ok == (text.strip() in canon), (text, r)
    if r.ok:
        assert parse_codes_strict(text, fmt) == r.codes
    else:
        with pytest.raises(ValueError):
            parse_codes_strict(text, fmt)
    extract_key_tokens(text, fmt)  # never raises in the lenient mode
    return r


def test_fuzz_garbage_never_crashes_and_ok_only_when_well_formed():
    rng = random.Random(99)
    n_ok = n_bad = 0
    for i in range(2500):
        fmt = MotionTokenFormat(rng.choice(["vocab", "digits"]), rng.choice([1, 7, 512, 1000]))
        text = "".join(_random_piece(rng, fmt) for _ in range(rng.randint(0, 12)))
        r = _check_oracle(text, fmt)
        n_ok += r.ok
        n_bad += not r.ok
    assert n_bad > 2000 and n_ok >= 1  # mostly garbage, a few lucky well-formed strings


def test_fuzz_mutated_valid_spans():
    """Near misses of valid spans are where a lax parser says ``ok`` wrongly."""
    rng = random.Random(7)
    n_ok = n_bad = 0
    for i in range(3000):
        fmt = MotionTokenFormat(rng.choice(["vocab", "digits"]), rng.choice([10, 512]))
        codes = [rng.randrange(fmt.nb_code) for _ in range(rng.randint(0, 8))]
        text = codes_to_text(codes, fmt, wrap=rng.random() < 0.8)
        for _ in range(rng.randint(1, 3)):
            text = _mutate(rng, text)
        r = _check_oracle(text, fmt)
        n_ok += r.ok
        n_bad += not r.ok
    assert n_bad > 1500 and n_ok > 50
