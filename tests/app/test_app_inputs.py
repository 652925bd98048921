"""Validation of page inputs (no model, no gradio): every refusal names the field and the bound."""

from __future__ import annotations

import numpy as np
import pytest

from motiongpt.app.config import AppConfig, Limits, check_app_config
from motiongpt.app.inputs import (
    UserInputError,
    check_caption,
    check_length,
    check_sampling,
    check_upload,
    format_key_tokens,
    motion_frame_count,
    parse_frames,
    parse_key_tokens,
    split_frames,
)

LIM = Limits(max_caption_chars=40, max_upload_mb=0.01, max_upload_frames=100, max_frames=196, max_key_tokens=3)


def test_caption_is_stripped_and_bounded():
    assert check_caption("  a person jumps \n", LIM) == "a person jumps"
    with pytest.raises(UserInputError, match="empty"):
        check_caption("   ", LIM)
    assert check_caption("", LIM, required=False) == ""
    with pytest.raises(UserInputError, match=r"41 characters \(the limit is 40\)"):
        check_caption("x" * 41, LIM)
    assert check_caption("x" * 40, LIM) == "x" * 40
    with pytest.raises(UserInputError, match="control characters"):
        check_caption("walk\x00s", LIM)


@pytest.mark.parametrize("value, expected", [(0, None), (None, None), ("", None), (4, 4), (41, 40), (196, 196),
                                             (40.0, 40)])
def test_length_rounds_down_to_whole_tokens(value, expected):
    assert check_length(value, LIM, 4) == expected


@pytest.mark.parametrize("value", [3, 197, -4, 10.5, "ten", float("nan")])
def test_length_out_of_range_is_refused(value):
    with pytest.raises(UserInputError, match="Length"):
        check_length(value, LIM, 4)


def test_key_tokens_parse_both_spellings_and_sort():
    pairs = parse_key_tokens("9:<motion_id_31>, 0:12", nb_code=32, limits=LIM, max_tokens=10)
    assert pairs == [(0, 12), (9, 31)]
    assert parse_key_tokens(format_key_tokens(pairs), nb_code=32, limits=LIM, max_tokens=10) == pairs
    assert parse_key_tokens("  ", nb_code=32, limits=LIM, max_tokens=10) == []


@pytest.mark.parametrize("spec, message", [
    ("12", "not 'position:code'"),
    ("a:3", "not 'position:code'"),
    ("0:x", "code must be an integer"),
    ("0:32", r"outside the codebook \[0, 32\)"),
    ("10:1", "past the motion's end"),
    ("1:1, 1:2", "given twice"),
    ("0:1 1:1 2:1 3:1", r"Too many key tokens: 4 \(the limit is 3\)"),
])
def test_bad_key_tokens_are_refused(spec, message):
    with pytest.raises(UserInputError, match=message):
        parse_key_tokens(spec, nb_code=32, limits=LIM, max_tokens=10)


def test_frames_are_bounded_by_the_upload():
    assert parse_frames("40, 0 40", 48, LIM) == [0, 40]
    with pytest.raises(UserInputError, match="past the uploaded motion's end"):
        parse_frames("48", 48, LIM)
    with pytest.raises(UserInputError, match="not a frame number"):
        parse_frames("-1", 48, LIM)
    with pytest.raises(UserInputError, match="empty"):
        parse_frames("", 48, LIM)


def test_split_frames_counts_whole_tokens():
    assert split_frames(9, 10, 4, "Start") == 2
    with pytest.raises(UserInputError, match="Start"):
        split_frames(2, 10, 4, "Start")
    with pytest.raises(UserInputError, match="more than the uploaded motion's 40 frames"):
        split_frames(44, 10, 4, "Start")


def test_sampling_settings():
    s = check_sampling(0.8, 50, 1.0, 3)
    assert (s.temperature, s.top_k, s.top_p, s.seed) == (0.8, 50, None, 3)
    s = check_sampling(0, 0, 0.9, -1)
    assert (s.temperature, s.top_k, s.top_p, s.seed) == (0.0, None, 0.9, None)
    assert check_sampling(1, None, None, None).seed is None
    for args, message in [((-0.1, 0, 1, 0), "Temperature"), ((1, -1, 1, 0), "Top-k"), ((1, 2.5, 1, 0), "Top-k"),
                          ((1, 0, 0, 0), "Top-p"), ((1, 0, 1.5, 0), "Top-p"), ((1, 0, 1, -2), "Seed"),
                          ((1, 0, 1, 0.5), "Seed"), (("hot", 0, 1, 0), "Temperature")]:
        with pytest.raises(UserInputError, match=message):
            check_sampling(*args)


def test_guidance_scale_setting():
    assert check_sampling(0.8, 50, 1.0, 3).guidance_scale == 1.0  # off unless set
    for value, expected in [(2.5, 2.5), ("1.5", 1.5), (0, 0.0), (5, 5.0), ("", 1.0), (None, 1.0)]:
        assert check_sampling(0.8, 50, 1.0, 3, guidance_scale=value).guidance_scale == expected
    for value, message in [(-0.1, r"Guidance scale must be in 0\.\.5 \(1 = off\), got -0\.1"),
                           (5.1, r"Guidance scale must be in 0\.\.5 \(1 = off\), got 5\.1"),
                           ("strong", "Guidance scale must be a number, got 'strong'"),
                           (float("nan"), "Guidance scale must be a finite number"),
                           (float("inf"), "Guidance scale must be a finite number")]:
        with pytest.raises(UserInputError, match=message):
            check_sampling(0.8, 50, 1.0, 3, guidance_scale=value)


def test_uploads_are_checked_before_any_model_work(tmp_path):
    with pytest.raises(UserInputError, match="upload a motion first"):
        check_upload(None, LIM)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(UserInputError, match="unsupported type '.txt'"):
        check_upload(txt, LIM)
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((100, 263), np.float32))  # ~103 KiB > 0.01 MiB
    with pytest.raises(UserInputError, match="big.npy.*the limit is 0.01 MiB"):
        check_upload(big, LIM)
    with pytest.raises(UserInputError, match="is gone"):
        check_upload(tmp_path / "missing.npy", LIM)


def test_frame_count_of_npy_and_bvh(tmp_path):
    ok = tmp_path / "j.npy"
    np.save(ok, np.zeros((48, 22, 3), np.float32))
    assert motion_frame_count(ok, LIM) == 48
    long = tmp_path / "long.npy"
    np.save(long, np.zeros((101, 263), np.float32))
    with pytest.raises(UserInputError, match=r"101 frames \(the limit is 100"):
        motion_frame_count(long, LIM)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros(10, np.float32))
    with pytest.raises(UserInputError, match=r"shape \(10,\)"):
        motion_frame_count(flat, LIM)
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserInputError, match="not a readable .npy"):
        motion_frame_count(pickled, LIM)
    bvh = tmp_path / "m.bvh"
    bvh.write_text("HIERARCHY\nROOT Hips\n{\n}\nMOTION\nFrames: 37\nFrame Time: 0.05\n")
    assert motion_frame_count(bvh, LIM) == 37
    bad = tmp_path / "bad.bvh"
    bad.write_text("hello\n")
    with pytest.raises(UserInputError, match="does not start with HIERARCHY"):
        motion_frame_count(bad, LIM)
    nomotion = tmp_path / "nomotion.bvh"
    nomotion.write_text("HIERARCHY\nROOT Hips\n{\n}\n")
    with pytest.raises(UserInputError, match="no MOTION section"):
        motion_frame_count(nomotion, LIM)


def test_app_config_checks_name_the_field():
    assert check_app_config(AppConfig()).port == 8888
    assert AppConfig().host == "127.0.0.1"
    with pytest.raises(ValueError, match="AppConfig.port"):
        check_app_config(AppConfig(port=70000))
    with pytest.raises(ValueError, match="Limits.max_frames"):
        check_app_config(AppConfig(limits=Limits(max_frames=0)))
    with pytest.raises(ValueError, match="Limits.max_upload_mb"):
        check_app_config(AppConfig(limits=Limits(max_upload_mb=0)))
