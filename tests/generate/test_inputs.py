"""build_requests: generate_motion.py's inputs -> requests (no model)."""

from __future__ import annotations

import pytest

from motiongpt.generate.inputs import build_requests, parse_keys
from motiongpt.llm.tokens import MotionTokenFormat

FMT = MotionTokenFormat("vocab", 64)
MOTION = list(range(20))  # 80 frames


def test_repeat_times_seeds_and_names():
    reqs = build_requests("t2m", FMT, inputs=[("walks", 40), ("runs", None)], repeat_times=3, seed=10)
    assert [(r.caption, r.length_frames, r.seed, r.name) for r in reqs] == [
        ("walks", 40, 10, "000_00"), ("walks", 40, 11, "000_01"), ("walks", 40, 12, "000_02"),
        ("runs", None, 13, "001_00"), ("runs", None, 14, "001_01"), ("runs", None, 15, "001_02")]
    one = build_requests("t2m", FMT, input_text="walks", length_frames=60, instruction="Do it.", seed=4)
    assert [(r.caption, r.length_frames, r.instruction, r.seed, r.name) for r in one] == [
        ("walks", 60, "Do it.", 4, "000")]


def test_key_tokens_from_input_keys_or_frames():
    r = build_requests("t2m_init", FMT, input_text="walks<Motion Token>5</Motion Token>")[0]
    assert r.key_tokens == [5]
    assert build_requests("t2m_keys", FMT, input_text="walks", keys="1, 2,3")[0].key_tokens == [1, 2, 3]
    r = build_requests("t2m_keys_pos", FMT, input_text="walks", keys="0:1,9:2", length_frames=40)[0]
    assert r.key_tokens == [(0, 1), (9, 2)] and r.length_frames == 40
    r = build_requests("t2m_keys_pos", FMT, input_text="walks", motion_codes=MOTION, key_frames="0,41,79")[0]
    assert r.key_tokens == [(0, 0), (10, 10), (19, 19)] and r.length_frames == 80
    assert build_requests("t2m_last", FMT, input_text="walks", motion_codes=MOTION,
                          key_frames="79")[0].key_tokens == [19]
    r = build_requests("t2m_keys_pos", FMT, input_text="walks\\nLength: 3 tokens. Key tokens: 0:1")[0]
    assert r.key_tokens == [(0, 1)] and r.length_frames == 12  # a literal \n stands for a line break


def test_motion_parts():
    assert build_requests("m2t", FMT, motion_codes=MOTION)[0].motion_codes == MOTION
    assert build_requests("pred", FMT, motion_codes=MOTION)[0].motion_codes == MOTION
    assert build_requests("pred", FMT, motion_codes=MOTION, context_frames=24)[0].motion_codes == MOTION[:6]
    r = build_requests("inbetween", FMT, motion_codes=MOTION)[0]
    assert (r.motion_codes, r.end_codes, r.length_frames) == (MOTION[:5], MOTION[15:], None)
    r = build_requests("inbetween", FMT, motion_codes=MOTION, context_frames=8, length_frames=80)[0]
    assert (r.motion_codes, r.end_codes, r.length_frames) == (MOTION[:2], MOTION[18:], 80)


@pytest.mark.parametrize("kw, match", [
    (dict(task="t2m", input_text="a", inputs=[("b", None)]), "not both"),
    (dict(task="t2m", keys="1"), "apply to"),
    (dict(task="t2m_keys", keys="1", key_frames="0", motion_codes=MOTION), "not both"),
    (dict(task="t2m_keys", key_frames="0"), "needs --motion"),
    (dict(task="t2m_keys", key_frames="0,200", motion_codes=MOTION), "beyond"),
    (dict(task="t2m_keys", key_frames="8,4", motion_codes=MOTION), "increasing"),
    (dict(task="t2m_keys", keys="a,b"), "codes"),
    (dict(task="t2m_keys_pos", keys="1,2", length_frames=8), "position:code"),
    (dict(task="m2t"), "needs --motion"),
    (dict(task="inbetween", motion_codes=MOTION, context_frames=60), "do not fit"),
    (dict(task="t2m_init", input_text="w<Motion Token>1</Motion Token>", keys="2"), "not both"),
    (dict(task="t2m", repeat_times=0), "repeat_times"),
    (dict(task="walk"), "unknown task"),
])
def test_errors_name_the_option(kw, match):
    task = kw.pop("task")
    with pytest.raises(ValueError, match=match):
        build_requests(task, FMT, **kw)


def test_parse_keys():
    assert parse_keys("315,91 406", "t2m_keys") == [315, 91, 406]
    assert parse_keys("0:3 5:4", "t2m_keys_pos") == [(0, 3), (5, 4)]
    with pytest.raises(ValueError):
        parse_keys("", "t2m_keys")
