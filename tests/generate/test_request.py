"""Requests, sampling settings, text files and planning (pure Python: no model)."""

from __future__ import annotations

import pytest

from motiongpt.generate.request import (
    GenerationRequest,
    SamplingConfig,
    frames_to_codes,
    key_positions,
    plan_request,
    read_text_path,
)
from motiongpt.llm.templates import load_instructions
from motiongpt.llm.tokens import MotionTokenFormat

VOCAB = MotionTokenFormat("vocab", 512)
DIGITS = MotionTokenFormat("digits", 512)


def plan(req, fmt=VOCAB, max_motion=49):
    return plan_request(req, 0, fmt, load_instructions(), max_motion_tokens=max_motion, max_text_tokens=32)


def test_frames_round_to_the_code_grid():
    assert [frames_to_codes(f) for f in (1, 2, 4, 5, 6, 7, 8, 196, 198)] == [1, 1, 1, 1, 2, 2, 2, 49, 50]
    for bad in (0, -4, 4.0, True, "8"):
        with pytest.raises(ValueError, match="length_frames"):
            frames_to_codes(bad)


def test_key_positions_are_spread_increasing_and_in_range():
    for n in range(1, 60):
        for k in range(1, n + 1):
            pos = key_positions(n, k)
            assert len(pos) == k and pos == sorted(set(pos)) and 0 <= pos[0] and pos[-1] < n
    assert key_positions(49, 3) == [12, 24, 37]
    assert key_positions(10, 1) == [5]


@pytest.mark.parametrize("fmt", [VOCAB, DIGITS])
def test_from_input_accepts_both_spellings(fmt):
    for text in ("a man jumps.<Motion Token>315,91,406</Motion Token>",
                 "a man jumps.<Motion Token><motion_id_315><motion_id_91><motion_id_406></Motion Token>"):
        req = GenerationRequest.from_input("t2m_keys", text, fmt, seed=3, name="x")
        assert (req.caption, req.key_tokens, req.seed, req.name) == ("a man jumps.", [315, 91, 406], 3, "x")
    req = GenerationRequest.from_input("t2m_keys_pos", "a man jumps.\nLength: 20 tokens. Key tokens: 0:5 19:6", fmt)
    assert (req.caption, req.key_tokens, req.length_frames) == ("a man jumps.", [(0, 5), (19, 6)], 80)
    req = GenerationRequest.from_input("inbetween", "Start: <Motion Token>1,2</Motion Token>\n"
                                                    "End: <Motion Token>3</Motion Token>", fmt)
    assert (req.motion_codes, req.end_codes, req.caption) == ([1, 2], [3], "")
    req = GenerationRequest.from_input("pred", "walks\n<Motion Token><motion_id_7></Motion Token>", fmt)
    assert (req.caption, req.motion_codes) == ("walks", [7])
    assert GenerationRequest.from_input("m2t", "<Motion Token>4,5</Motion Token>", fmt).motion_codes == [4, 5]
    assert GenerationRequest.from_input("t2m", "  a man jumps. ", fmt).caption == "a man jumps."


@pytest.mark.parametrize("task, text, match", [
    ("t2m_keys", "a man.<Motion Token>315,99999</Motion Token>", "out of range"),
    ("t2m_keys", "a man.<Motion Token><motion_id_99999></Motion Token>", "out of range"),
    ("t2m_init", "a man.<Motion Token>1,</Motion Token>", "empty item"),
    ("t2m", "a man.<Motion Token>1</Motion Token>", "caption only"),
    ("t2m_keys_pos", "a man.\nLength: 5 tokens. Key tokens: 7:1", "position"),
    ("m2t", "walks", "no motion span"),
    ("pred", "<Motion Token></Motion Token>", "empty"),
    ("nope", "x", "unknown task"),
])
def test_from_input_errors_name_the_problem(task, text, match):
    with pytest.raises(ValueError, match=match):
        GenerationRequest.from_input(task, text, VOCAB)


def test_request_dict_round_trip():
    req = GenerationRequest("t2m_keys_pos", "walks", 40, [(0, 1), (5, 2)], seed=4, name="a")
    again = GenerationRequest.from_dict(req.to_dict())
    assert again == req
    with pytest.raises(ValueError, match="unknown field"):
        GenerationRequest.from_dict({"task": "t2m", "colour": 1})


def test_sampling_config_validation():
    SamplingConfig().validate()
    SamplingConfig(temperature=0, num_beams=4).validate()
    for kw, match in ((dict(temperature=-1), "temperature"), (dict(top_k=-1), "top_k"), (dict(top_p=0), "top_p"),
                      (dict(num_beams=0), "num_beams"), (dict(num_beams=2, temperature=0.7), "deterministic"),
                      (dict(seed=-1), "seed"), (dict(max_motion_tokens=0), "max_motion_tokens"),
                      (dict(max_text_tokens=1), "max_text_tokens"), (dict(temperature=float("nan")), "temperature")):
        with pytest.raises(ValueError, match=match):
            SamplingConfig(**kw).validate()


def test_plans_per_task():
    p = plan(GenerationRequest("t2m", "walks", length_frames=40))
    assert (p.input_text, p.spec.exact) == ("walks", 10)
    p = plan(GenerationRequest("t2m", ""))
    assert p.input_text == "" and (p.spec.exact, p.spec.min_len, p.spec.max_len) == (None, 1, 49)
    p = plan(GenerationRequest("t2m_init", "walks", key_tokens=[7]))
    assert p.input_text == "walks<Motion Token><motion_id_7></Motion Token>" and p.spec.targets == ((0, 7),)
    p = plan(GenerationRequest("t2m_last", "walks", key_tokens=[7], length_frames=40))
    assert p.spec.targets == ((9, 7),) and p.spec.exact == 10
    p = plan(GenerationRequest("t2m_last", "walks", key_tokens=[7]))
    assert p.spec.end_code == 7 and p.spec.targets == ((48, 7),)
    p = plan(GenerationRequest("t2m_keys", "walks", key_tokens=[1, 2, 3], length_frames=196))
    assert p.spec.targets == ((12, 1), (24, 2), (37, 3))
    p = plan(GenerationRequest("t2m_keys", "walks", key_tokens=[1, 2, 3]))
    assert p.choose_length and p.spec.ordered_keys == (1, 2, 3)
    assert p.with_length(10).spec.targets == tuple(zip(key_positions(10, 3), (1, 2, 3)))
    p = plan(GenerationRequest("t2m_keys_pos", "walks", 40, [(0, 5), (9, 6)]), DIGITS)
    assert p.input_text == "walks\nLength: 10 tokens. Key tokens: 0:5 9:6" and p.spec.targets == ((0, 5), (9, 6))
    p = plan(GenerationRequest("pred", motion_codes=[1, 2, 3], length_frames=40))
    assert p.spec.exact == 7 and p.prefix == [1, 2, 3]
    p = plan(GenerationRequest("pred", motion_codes=[1, 2, 3]))
    assert p.spec.max_len == 46
    p = plan(GenerationRequest("inbetween", "walks", 40, motion_codes=[1], end_codes=[2, 3]))
    assert p.input_text.startswith("walks\nStart: ") and p.spec.exact == 7 and p.suffix == [2, 3]
    p = plan(GenerationRequest("m2t", motion_codes=[1, 2]))
    assert p.spec.kind == "text" and p.spec.text_budget == 32
    assert p.instruction == load_instructions()["m2t"][0]


@pytest.mark.parametrize("req, match", [
    (GenerationRequest("t2m", "a </Motion Token> b"), "must not contain"),
    (GenerationRequest("t2m", "walks", key_tokens=[1]), "no key_tokens"),
    (GenerationRequest("t2m_init", "walks", key_tokens=[1, 2]), "exactly one"),
    (GenerationRequest("t2m_init", "walks", key_tokens=[512]), "out of range"),
    (GenerationRequest("t2m_keys", "walks", key_tokens=[]), "at least one"),
    (GenerationRequest("t2m_keys", "walks", 4, key_tokens=[1, 2]), "do not fit"),
    (GenerationRequest("t2m_keys_pos", "walks", key_tokens=[(0, 1)]), "needs length_frames"),
    (GenerationRequest("t2m_keys_pos", "walks", 8, key_tokens=[(2, 1)]), "position"),
    (GenerationRequest("t2m_keys_pos", "walks", 8, key_tokens=[3]), "pair"),
    (GenerationRequest("t2m_keys_pos", "two\nlines", 8, key_tokens=[(0, 1)]), "one line"),
    (GenerationRequest("m2t"), "needs motion_codes"),
    (GenerationRequest("m2t", motion_codes=[1], length_frames=8), "does not apply"),
    (GenerationRequest("pred", motion_codes=[1, 2], length_frames=8), "no room"),
    (GenerationRequest("inbetween", motion_codes=[1]), "end_codes"),
    (GenerationRequest("t2m", motion_codes=[1]), "no motion_codes"),
    (GenerationRequest("t2m", length_frames=-3), "length_frames"),
    (GenerationRequest("t2m", seed=-1), "seed"),
    (GenerationRequest("t2m", name="../x"), "file name"),
    (GenerationRequest("t2m", instruction="  "), "instruction"),
    (GenerationRequest("dance"), "unknown task"),
])
def test_bad_requests_raise_clear_errors(req, match):
    with pytest.raises(ValueError, match=match):
        plan(req)


def test_read_text_path(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a man walks.#80\n\na # in a caption#41\n")
    assert read_text_path(f) == [("a man walks.", 80), ("a # in a caption", 41)]
    f.write_text("a man walks.#80\nruns#NA\n")
    assert read_text_path(f) == [("a man walks.", None), ("runs", None)]  # one NA makes all NA (LaMP)
    f.write_text("jumps\n")
    assert read_text_path(f) == [("jumps", None)]
    for body, match in (("walks#-3\n", r"p.txt:1: length"), ("ok#8\n#8\n", r"p.txt:2: empty caption"),
                        ("walks#ten\n", "length 'ten'"), ("\n\n", "no captions")):
        f.write_text(body)
        with pytest.raises(ValueError, match=match):
            read_text_path(f)
    with pytest.raises(FileNotFoundError):
        read_text_path(tmp_path / "missing.txt")


def test_numpy_integers_are_codes_but_floats_are_not():
    import numpy as np

    p = plan(GenerationRequest("t2m_keys_pos", "walks", 40, [(np.int64(0), np.int32(5))]))
    assert p.spec.targets == ((0, 5),)
    assert plan(GenerationRequest("pred", motion_codes=np.arange(3))).prefix == [0, 1, 2]
    for bad in ([1.0], [True], ["1"]):
        with pytest.raises(ValueError, match="not an integer"):
            plan(GenerationRequest("t2m_init", "walks", key_tokens=bad))
    p = plan(GenerationRequest("t2m_keys", "walks", key_tokens=np.array([3, 4])))
    assert p.spec.ordered_keys == (3, 4)
    with pytest.raises(ValueError, match="no motion_codes"):
        plan(GenerationRequest("t2m", "walks", motion_codes=np.array([1])))
