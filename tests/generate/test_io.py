"""save_results: per-sample files, results.json, all-or-nothing writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motiongpt.generate import GenerationRequest, SamplingConfig, save_results

GREEDY = SamplingConfig(temperature=0)


@pytest.fixture(scope="module")
def results(vocab_gen):
    reqs = [GenerationRequest("t2m", "a person walks.", length_frames=24, name="walk"),
            GenerationRequest("m2t", motion_codes=[1, 2, 3], name="cap")]
    return vocab_gen.generate(reqs, GREEDY)


def test_files_and_record(results, vocab_gen, tmp_path):
    out = tmp_path / "gen"
    path = save_results(results, out, render=True, bvh=True, mp4=False, meta={"checkpoint": "x"})
    assert path == out / "results.json"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["results.json", "walk.npy", "walk_feats.npy", "walk_tokens.txt", "walk.gif", "walk.bvh",
                            "cap.txt", "cap.npy", "cap_feats.npy", "cap_tokens.txt", "cap.gif", "cap.bvh"])
    doc = json.loads(path.read_text())
    assert doc["meta"] == {"checkpoint": "x"} and doc["count"] == 2 and doc["ok"] == 2
    walk, cap = doc["samples"]
    r = results[0]
    assert walk["codes"] == r.codes and walk["seed"] == r.seed and walk["prompt"] == r.prompt
    assert walk["request"]["length_frames"] == 24 and walk["length_frames"] == 24
    assert walk["files"]["joints"] == "walk.npy" and walk["files"]["gif"] == "walk.gif"
    np.testing.assert_array_equal(np.load(out / "walk.npy"), r.joints)
    assert np.load(out / "walk_feats.npy").shape == (24, 263)
    assert (out / "walk_tokens.txt").read_text() == ",".join(map(str, r.codes)) + "\n"
    assert (out / "cap.txt").read_text() == results[1].text + "\n" and cap["text"] == results[1].text
    from motiongpt.motion.bvh import bvh_to_joints

    assert bvh_to_joints(out / "walk.bvh").shape == (24, 22, 3)
    from PIL import Image

    with Image.open(out / "walk.gif") as im:
        assert im.n_frames == 24
    # the record regenerates the sample
    from motiongpt.generate.request import GenerationRequest as Req

    again = vocab_gen.generate([Req.from_dict(walk["request"])], GREEDY)[0]
    assert again.codes == walk["codes"]


def test_mp4_when_ffmpeg_is_available(results, tmp_path):
    from motiongpt.viz import ffmpeg_available

    if not ffmpeg_available():
        with pytest.raises(RuntimeError, match="ffmpeg"):
            save_results(results[:1], tmp_path / "m", render=True, bvh=False, mp4=True)
        return
    save_results(results[:1], tmp_path / "m", render=True, bvh=False)  # mp4=None: when available
    assert (tmp_path / "m" / "walk.mp4").is_file()


def test_failures_leave_nothing_half_written(results, tmp_path, monkeypatch):
    out = tmp_path / "gen"
    save_results(results, out, render=False, bvh=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    import motiongpt.motion.bvh as bvh

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(bvh, "write_bvh", broken)
    with pytest.raises(OSError, match="disk full"):
        save_results(results, out, render=False, bvh=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous output, intact
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]  # no temporary folder left behind


def test_refuses_foreign_folders_and_bad_names(results, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="results.json"):
        save_results(results, other, render=False, bvh=False)
    assert (other / "notes.txt").read_text() == "mine"
    save_results(results, other, render=False, bvh=False, overwrite=True)
    assert not (other / "notes.txt").exists()
    import dataclasses

    bad = [dataclasses.replace(results[0], name="a/b")]
    with pytest.raises(ValueError, match="file name"):
        save_results(bad, tmp_path / "x", render=False, bvh=False)
    dup = [results[0], results[0]]
    with pytest.raises(ValueError, match="unique"):
        save_results(dup, tmp_path / "y", render=False, bvh=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
