"""HumanML3D-layout loader: captions, segments, length filter, skip report, strict mode, KIT-ML."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from motiongpt.data.humanml3d import (
    HUMANML3D,
    KIT_ML,
    T2M_MAX_LENGTH,
    Caption,
    HumanML3DDataset,
    SkipReason,
    format_caption_line,
    load_humanml3d,
    parse_caption_line,
    read_captions,
    read_split,
    spec_for,
)

REAL_ID = "012314"  # 170 frames


# ---------------------------------------------------------------- helpers


def make_root(tmp_path: Path, name: str = "ds") -> Path:
    root = tmp_path / name
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    return root


def write_clip(root: Path, clip_id: str, feats: np.ndarray | None, lines: list[str] | None) -> None:
    """Features (None: no file) and caption lines (None: no text file)."""
    if feats is not None:
        np.save(root / "new_joint_vecs" / f"{clip_id}.npy", feats)
    if lines is not None:
        (root / "texts" / f"{clip_id}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_split(root: Path, ids: list[str], split: str = "train") -> None:
    (root / f"{split}.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")


def write_stats(root: Path, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.standard_normal(dim).astype(np.float32)
    std = (0.5 + rng.random(dim)).astype(np.float32)
    np.save(root / "Mean.npy", mean)
    np.save(root / "Std.npy", std)
    return mean, std


def rand_feats(n: int, dim: int = 263, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


WHOLE = "a person walks forward#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0"


# ---------------------------------------------------------------- captions and segments (real clip)


def test_real_clip_whole_and_segment_captions(hml_dir: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path)
    shutil.copy(hml_dir / "new_joint_vecs" / f"{REAL_ID}.npy", root / "new_joint_vecs")
    (root / "new_joints").mkdir()
    shutil.copy(hml_dir / "new_joints" / f"{REAL_ID}.npy", root / "new_joints")
    shutil.copy(hml_dir / "Mean.npy", root)
    shutil.copy(hml_dir / "Std.npy", root)
    write_clip(root, REAL_ID, None, [
        WHOLE,
        "someone bends over#someone/PRON bend/VERB over/ADP#nan#nan",  # NaN times: whole clip (T2M)
        "the person turns around#the/DET person/NOUN turn/VERB around/ADV#1.0#5.0",  # frames 20..100
        "and steps back#and/CCONJ step/VERB back/ADV#1.0#5.0",  # same segment: same sub-clip
        "then stops#then/ADV stop/VERB#6.0#7.5",  # frames 120..150: 30 < 40, dropped
    ])
    write_split(root, [REAL_ID])

    ds = load_humanml3d(root, "train", joints="file")
    real = np.load(hml_dir / "new_joint_vecs" / f"{REAL_ID}.npy")
    real_j = np.load(hml_dir / "new_joints" / f"{REAL_ID}.npy")

    assert ds.spec is HUMANML3D and ds.fps == 20.0 and ds.joints_num == 22 and ds.feature_dim == 263
    assert ds.ids == [REAL_ID, f"{REAL_ID}#1.0#5.0"]
    whole = ds[REAL_ID]
    assert whole.length == 170 and whole.features.dtype == np.float32 and not whole.is_segment
    np.testing.assert_array_equal(whole.features, real)
    np.testing.assert_array_equal(whole.joints, real_j)
    assert [c.text for c in whole.captions] == ["a person walks forward", "someone bends over"]
    assert whole.captions[0].tokens == ("a/DET", "person/NOUN", "walk/VERB", "forward/ADV")
    assert all(c.is_whole_clip for c in whole.captions)

    seg = ds[1]
    assert seg.source_id == REAL_ID and seg.is_segment and seg.start_frame == 20 and seg.length == 80
    np.testing.assert_array_equal(seg.features, real[20:100])
    np.testing.assert_array_equal(seg.joints, real_j[20:100])
    assert [c.text for c in seg.captions] == ["the person turns around", "and steps back"]
    assert (seg.captions[0].start, seg.captions[0].end) == (1.0, 5.0)

    rep = ds.report
    assert (rep.n_ids, rep.n_clips, rep.n_subclips) == (1, 1, 1)
    assert rep.counts == {SkipReason.TOO_SHORT: 1}
    assert rep.skipped[0].id == f"{REAL_ID}#6.0#7.5" and "30 < min_length 40" in rep.skipped[0].detail

    # Normalization with the real statistics.
    mean, std = np.load(hml_dir / "Mean.npy"), np.load(hml_dir / "Std.npy")
    norm = ds.normalize(whole.features)
    np.testing.assert_allclose(norm, (real - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(ds.denormalize(norm), real, atol=1e-5)
    with pytest.raises(ValueError, match="D=263"):
        ds.normalize(np.zeros((3, 251), np.float32))


def test_joints_from_features_match_real_joints(hml_dir: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path)
    shutil.copy(hml_dir / "new_joint_vecs" / f"{REAL_ID}.npy", root / "new_joint_vecs")
    write_clip(root, REAL_ID, None, [WHOLE, "a segment#a/DET#2.0#5.0"])
    write_split(root, [REAL_ID])
    ds = load_humanml3d(root, "train", joints="features", require_stats=False)
    real_j = np.load(hml_dir / "new_joints" / f"{REAL_ID}.npy")
    assert ds[REAL_ID].joints.shape == (170, 22, 3)
    np.testing.assert_allclose(ds[REAL_ID].joints, real_j, atol=1e-4)
    np.testing.assert_allclose(ds[f"{REAL_ID}#2.0#5.0"].joints, real_j[40:100], atol=1e-4)


def test_segment_only_clip_and_lookup(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    feats = rand_feats(150)
    write_clip(root, "a", feats, ["first part#first/ADJ part/NOUN#0.0#3.0", "second part#second/ADJ#3.0#7.5"])
    write_clip(root, "b", rand_feats(60, seed=1), [WHOLE])
    write_split(root, ["a", "b"])
    ds = load_humanml3d(root, "train", require_stats=False)
    # "a" has no whole-clip caption: only its two segments (0..60 and 60..150) are items.
    assert ds.ids == ["a#0.0#3.0", "a#3.0#7.5", "b"]
    assert ds.report.n_segment_only == 1 and ds.report.n_clips == 1 and ds.report.n_subclips == 2
    np.testing.assert_array_equal(ds["a#3.0#7.5"].features, feats[60:150])
    assert "a" not in ds and "b" in ds
    assert [clip.id for clip in ds] == ds.ids and len(ds) == 3
    assert ds[-1] is ds["b"] is ds.get("b")
    assert ds.lengths.tolist() == [60, 90, 60]
    with pytest.raises(KeyError, match="'a'"):
        ds.get("a")
    assert ds.mean is None
    with pytest.raises(RuntimeError, match="require_stats=False"):
        ds.normalize(feats)


# ---------------------------------------------------------------- length filter


def test_length_filter_boundaries(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    lengths = {"l39": 39, "l40": 40, "l196": 196, "l197": 197, "l199": 199, "l200": 200}
    for i, (cid, n) in enumerate(lengths.items()):
        write_clip(root, cid, rand_feats(n, seed=i), [WHOLE])
    # Segments of exactly 40 and 39 frames (2.0 s and 1.95 s at 20 fps) of a 100-frame clip.
    write_clip(root, "seg", rand_feats(100, seed=9), [WHOLE, "s40#s/X#1.0#3.0", "s39#s/X#1.0#2.95"])
    write_split(root, list(lengths) + ["seg"])
    write_stats(root, 263)

    ds = load_humanml3d(root, "train")
    assert ds.ids == ["l40", "l196", "seg", "seg#1.0#3.0"]
    assert ds.report.counts == {SkipReason.TOO_SHORT: 2, SkipReason.TOO_LONG: 3}
    short = {s.id for s in ds.report.skipped if s.reason is SkipReason.TOO_SHORT}
    assert short == {"l39", "seg#1.0#2.95"}

    # T2M's own filter: keep < 200 frames.
    t2m = load_humanml3d(root, "train", max_length=T2M_MAX_LENGTH)
    assert set(t2m.ids) == {"l40", "l196", "l197", "l199", "seg", "seg#1.0#3.0"}
    # Custom bounds, inclusive on both ends.
    custom = load_humanml3d(root, "train", min_length=39, max_length=197)
    assert set(custom.ids) == {"l39", "l40", "l196", "l197", "seg", "seg#1.0#3.0", "seg#1.0#2.95"}
    with pytest.raises(ValueError, match="min_length"):
        load_humanml3d(root, "train", min_length=50, max_length=40)


def test_long_clip_drops_its_segments_too(tmp_path: Path) -> None:
    # T2M checks the clip length before reading the text: segments of a too-long clip are lost.
    root = make_root(tmp_path)
    write_clip(root, "long", rand_feats(300), [WHOLE, "a part#a/X#1.0#4.0"])
    write_split(root, ["long"])
    ds = load_humanml3d(root, "train", require_stats=False)
    assert len(ds) == 0
    assert ds.report.counts == {SkipReason.TOO_LONG: 1}
    assert ds.report.skipped[0].id == "long" and "300 > max_length 196" in ds.report.skipped[0].detail


# ---------------------------------------------------------------- skip reasons and strict mode


def build_bad_root(tmp_path: Path) -> tuple[Path, dict[str, SkipReason]]:
    """One item per skip reason, plus two good clips. Returns the root and id -> expected reason."""
    root = make_root(tmp_path, "bad")
    (root / "new_joints").mkdir()
    good = rand_feats(50)
    for cid in ("good1", "good2"):
        write_clip(root, cid, good, [WHOLE])
        np.save(root / "new_joints" / f"{cid}.npy", np.zeros((50, 22, 3), np.float32))
    expected: dict[str, SkipReason] = {}

    expected["nofeat"] = SkipReason.MISSING_FEATURES
    write_clip(root, "nofeat", None, [WHOLE])

    expected["garbage"] = SkipReason.UNREADABLE_FEATURES
    (root / "new_joint_vecs" / "garbage.npy").write_bytes(b"this is not an npy file at all")
    write_clip(root, "garbage", None, [WHOLE])

    expected["truncated"] = SkipReason.UNREADABLE_FEATURES
    np.save(root / "new_joint_vecs" / "truncated.npy", good)
    data = (root / "new_joint_vecs" / "truncated.npy").read_bytes()
    (root / "new_joint_vecs" / "truncated.npy").write_bytes(data[: len(data) // 2])
    write_clip(root, "truncated", None, [WHOLE])

    expected["dim251"] = SkipReason.WRONG_FEATURE_SIZE
    write_clip(root, "dim251", rand_feats(50, 251), [WHOLE])
    expected["flat"] = SkipReason.WRONG_FEATURE_SIZE
    write_clip(root, "flat", good.reshape(-1), [WHOLE])

    expected["nan"] = SkipReason.NON_FINITE
    bad = good.copy()
    bad[7, 3] = np.nan
    write_clip(root, "nan", bad, [WHOLE])
    expected["inf"] = SkipReason.NON_FINITE
    bad = good.copy()
    bad[0, 0] = np.inf
    write_clip(root, "inf", bad, [WHOLE])

    expected["notext"] = SkipReason.MISSING_TEXT
    write_clip(root, "notext", good, None)
    expected["emptytext"] = SkipReason.EMPTY_TEXT
    write_clip(root, "emptytext", good, ["", "   "])
    expected["badtext"] = SkipReason.UNPARSEABLE_TEXT
    write_clip(root, "badtext", good, [WHOLE, "no separators in this line"])
    expected["badtime"] = SkipReason.UNPARSEABLE_TEXT
    write_clip(root, "badtime", good, ["caption#tok/X#zero#1.0"])

    expected["short"] = SkipReason.TOO_SHORT
    write_clip(root, "short", rand_feats(10), [WHOLE])
    expected["long"] = SkipReason.TOO_LONG
    write_clip(root, "long", rand_feats(250), [WHOLE])

    ids = ["good1", *expected, "good2", "good1"]  # good1 listed twice
    write_split(root, ids)
    write_stats(root, 263)
    return root, expected


def test_every_skip_reason_counted(tmp_path: Path) -> None:
    root, expected = build_bad_root(tmp_path)
    ds = load_humanml3d(root, "train")
    rep = ds.report
    assert ds.ids == ["good1", "good2"]
    want = {reason: 0 for reason in expected.values()}
    for reason in expected.values():
        want[reason] += 1
    want[SkipReason.DUPLICATE_ID] = 1
    assert dict(rep.counts) == want
    by_id = {s.id: s for s in rep.skipped if s.reason is not SkipReason.DUPLICATE_ID}
    assert {cid: s.reason for cid, s in by_id.items()} == expected
    # Each record names the file that caused it.
    assert by_id["nofeat"].path == root / "new_joint_vecs" / "nofeat.npy"
    assert by_id["notext"].path == root / "texts" / "notext.txt"
    assert by_id["badtext"].path == root / "texts" / "badtext.txt"
    assert "(50, 251)" in by_id["dim251"].detail
    assert "first 7" in by_id["nan"].detail
    assert rep.n_ids == len(expected) + 2 and rep.n_clips == 2
    assert rep.n_errors == len(rep.skipped) - 2  # all but too short / too long
    text = rep.summary()
    for reason, n in want.items():
        assert f"{reason.value}: {n}" in text
    assert "nofeat" in text and str(root / "texts" / "notext.txt") in text
    assert text.splitlines()[0].endswith(f"{len(rep.skipped)} skipped ({rep.n_errors} data errors)")


def test_missing_and_bad_joints_are_reported(tmp_path: Path) -> None:
    root, _ = build_bad_root(tmp_path)
    write_clip(root, "nojoints", rand_feats(50), [WHOLE])
    write_clip(root, "badjoints", rand_feats(50), [WHOLE])
    np.save(root / "new_joints" / "badjoints.npy", np.zeros((49, 22, 3), np.float32))  # wrong T
    ds = load_humanml3d(root, ids=["good1", "nojoints", "badjoints"], joints="file")
    assert ds.ids == ["good1"] and ds.split == "<ids>"
    assert ds.report.counts == {SkipReason.MISSING_JOINTS: 1, SkipReason.BAD_JOINTS: 1}
    assert ds[0].joints.shape == (50, 22, 3)
    assert "(49, 22, 3)" in ds.report.skipped[1].detail


@pytest.mark.parametrize(
    ("clip_id", "fragment"),
    [
        ("nofeat", "new_joint_vecs/nofeat.npy: missing features file"),
        ("garbage", "new_joint_vecs/garbage.npy: unreadable features npy"),
        ("dim251", "new_joint_vecs/dim251.npy: wrong feature shape"),
        ("nan", "new_joint_vecs/nan.npy: NaN/inf in features"),
        ("notext", "texts/notext.txt: missing text file"),
        ("emptytext", "texts/emptytext.txt: empty text file"),
        ("badtext", "texts/badtext.txt: unparseable text"),
    ],
)
def test_strict_mode_names_file_and_reason(tmp_path: Path, clip_id: str, fragment: str) -> None:
    root, _ = build_bad_root(tmp_path)
    with pytest.raises(ValueError) as info:
        load_humanml3d(root, ids=["good1", clip_id], strict=True)
    assert fragment in str(info.value).replace("\\", "/")
    assert str(root) in str(info.value)


def test_strict_mode_keeps_length_filter_silent(tmp_path: Path) -> None:
    root, _ = build_bad_root(tmp_path)
    ds = load_humanml3d(root, ids=["good1", "short", "long", "good2"], strict=True)
    assert ds.ids == ["good1", "good2"]
    assert ds.report.counts == {SkipReason.TOO_SHORT: 1, SkipReason.TOO_LONG: 1}


def test_require_text_false_keeps_motion_only_clips(tmp_path: Path) -> None:
    root, _ = build_bad_root(tmp_path)
    ds = load_humanml3d(root, ids=["good1", "notext"], require_text=False)
    assert ds.ids == ["good1", "notext"]
    assert ds["notext"].captions == [] and not ds.report.skipped


# ---------------------------------------------------------------- statistics and splits


def test_mean_std_shape_mismatch_and_missing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    write_clip(root, "a", rand_feats(60), [WHOLE])
    write_split(root, ["a"])
    write_stats(root, 251)  # KIT-sized statistics next to HumanML3D features
    with pytest.raises(ValueError, match=r"Mean\.npy has shape \(251,\), expected \(263,\)"):
        load_humanml3d(root, "train")
    np.save(root / "Mean.npy", np.zeros(263, np.float32))
    with pytest.raises(ValueError, match=r"Std\.npy has shape \(251,\)"):
        load_humanml3d(root, "train")
    np.save(root / "Std.npy", np.zeros(263, np.float32))
    with pytest.raises(ValueError, match="non-positive"):
        load_humanml3d(root, "train")
    (root / "Std.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"Std\.npy not found"):
        load_humanml3d(root, "train")
    ds = load_humanml3d(root, "train", require_stats=False)
    assert ds.mean is None and len(ds) == 1
    # Statistics from another folder.
    other = tmp_path / "meta"
    other.mkdir()
    mean, std = write_stats(other, 263, seed=3)
    ds = load_humanml3d(root, "train", stats_dir=other)
    np.testing.assert_array_equal(ds.mean, mean)
    np.testing.assert_array_equal(ds.std, std)


def test_read_split_and_missing_split_file(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "val.txt").write_text("000001\n\n  000002  \n000003", encoding="utf-8")
    assert read_split(root, "val") == ["000001", "000002", "000003"]
    with pytest.raises(FileNotFoundError, match=r"test\.txt"):
        read_split(root, "test")
    with pytest.raises(FileNotFoundError, match=r"test\.txt"):
        load_humanml3d(root, "test", require_stats=False)
    with pytest.raises(FileNotFoundError, match="new_joint_vecs"):
        load_humanml3d(tmp_path / "nowhere", "train")


# ---------------------------------------------------------------- KIT-ML through the same loader


def test_kit_ml_via_same_loader(shared_data: Path, tmp_path: Path) -> None:
    captions = json.loads((shared_data / "kitml" / "captions_train.json").read_text(encoding="utf-8"))
    kit_ids = sorted(captions)[:12]
    root = make_root(tmp_path, "kit")
    lengths = {}
    for i, cid in enumerate(kit_ids):
        n = [20, 23, 24, 60, 196, 197][i % 6]  # KIT keeps 24..196 by default
        lengths[cid] = n
        lines = [format_caption_line(c, [w.lower() + "/X" for w in c.split()]) for c in captions[cid]]
        write_clip(root, cid, rand_feats(n, 251, seed=i), lines)
    write_split(root, kit_ids, "test")
    write_stats(root, 251)

    ds = load_humanml3d(root, "test")  # detected from the 251-d features
    assert ds.spec is KIT_ML and ds.fps == 12.5 and ds.joints_num == 21 and ds.feature_dim == 251
    kept = [cid for cid in kit_ids if 24 <= lengths[cid] <= 196]
    assert ds.ids == kept
    for cid in kept:
        assert [c.text for c in ds[cid].captions] == captions[cid]
        assert ds[cid].features.shape == (lengths[cid], 251)
    assert ds.report.counts == {SkipReason.TOO_SHORT: 4, SkipReason.TOO_LONG: 2}
    # The explicit name gives the same result; the wrong one flags every clip's feature size.
    assert load_humanml3d(root, "test", dataset="kit").ids == kept
    with pytest.raises(ValueError, match=r"Mean\.npy has shape \(251,\), expected \(263,\)"):
        load_humanml3d(root, "test", dataset="humanml3d")
    wrong = load_humanml3d(root, "test", dataset="humanml3d", stats_dir=tmp_path / "none", require_stats=False)
    assert len(wrong) == 0 and wrong.report.counts == {SkipReason.WRONG_FEATURE_SIZE: 12}


def test_kit_segments_use_kit_fps(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    feats = rand_feats(100, 251)
    write_clip(root, "k", feats, [WHOLE, "a part#a/X#2.0#6.0"])  # 12.5 fps: frames 25..75
    write_split(root, ["k"])
    ds = load_humanml3d(root, "train", require_stats=False)
    np.testing.assert_array_equal(ds["k#2.0#6.0"].features, feats[25:75])
    ds20 = load_humanml3d(root, "train", require_stats=False, fps=20)
    np.testing.assert_array_equal(ds20["k#2.0#6.0"].features, feats[40:100])


def test_spec_for() -> None:
    assert spec_for("KIT") is KIT_ML and spec_for("humanml3d") is HUMANML3D
    assert spec_for(None, 251) is KIT_ML and spec_for(None, 263) is HUMANML3D
    assert spec_for(None, 12 * 24 - 1).joints_num == 24
    with pytest.raises(ValueError, match="264"):
        spec_for(None, 264)
    with pytest.raises(ValueError, match="unknown dataset"):
        spec_for("amass")
    with pytest.raises(ValueError, match="251"):
        spec_for("humanml3d", 251)


# ---------------------------------------------------------------- caption line parsing / writing


def test_parse_real_format_lines() -> None:
    c = parse_caption_line("a man kicks something or someone with his left leg.#a/DET man/NOUN kick/VERB#0.0#0.0\n")
    assert c == Caption("a man kicks something or someone with his left leg.", ("a/DET", "man/NOUN", "kick/VERB"), 0.0, 0.0)
    assert c.is_whole_clip
    c = parse_caption_line("take #2: jump # twice#take/VERB jump/VERB#1.5#4.25")
    assert c.text == "take #2: jump # twice" and c.tokens == ("take/VERB", "jump/VERB")
    assert (c.start, c.end) == (1.5, 4.25) and not c.is_whole_clip
    c = parse_caption_line("someone waves##nan#nan")
    assert c.tokens == () and c.is_whole_clip and (c.start, c.end) == (0.0, 0.0)


@pytest.mark.parametrize(
    "line",
    ["no hashes", "only#two#fields", "#tokens#0.0#0.0", "   #tok#0.0#0.0", "cap#tok#a#0.0", "cap#tok#0.0#inf",
     "cap#tok#-1.0#2.0"],
)
def test_parse_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError, match="texts/x.txt:3"):
        parse_caption_line(line, source="texts/x.txt:3")


def test_format_rejects_what_would_not_round_trip() -> None:
    with pytest.raises(ValueError, match="line break"):
        format_caption_line("two\nlines", ["a/X"])
    with pytest.raises(ValueError, match="empty"):
        format_caption_line("   ", ["a/X"])
    for bad in ("two words", "a#b", ""):
        with pytest.raises(ValueError, match="token"):
            format_caption_line("ok", [bad])
    with pytest.raises(ValueError, match="segment"):
        format_caption_line("ok", ["a/X"], -1.0, 2.0)


def test_parse_format_round_trip_property() -> None:
    rng = random.Random(1234)
    alphabet = "abcdefghij XYZ #/.,!?'-éßü中文0123456789\t"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))).strip()
        if not text:
            continue
        tokens = [
            "".join(rng.choice("abcxyz/.,-'ü") for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(0, 6))
        ]
        if rng.random() < 0.3:
            start = end = 0.0
        else:
            start = rng.choice([rng.uniform(0, 10), float(rng.randint(0, 10)), 1 / 3])
            end = start + rng.uniform(0, 10)
        line = format_caption_line(text, tokens, start, end)
        assert "\n" not in line
        c = parse_caption_line(line)
        assert (c.text, c.tokens, c.start, c.end) == (text, tuple(tokens), start, end), line
    # Padding around the caption is normalized away, not kept.
    assert parse_caption_line(format_caption_line("  padded  ", ["p/X"])).text == "padded"


def test_written_texts_file_reads_back(tmp_path: Path) -> None:
    caps = [("a person # jumps", ["a/DET", "person/NOUN"], 0.0, 0.0), ("then sits", ["sit/VERB"], 2.5, 6.05)]
    path = tmp_path / "t.txt"
    path.write_text("\n".join(format_caption_line(*c) for c in caps) + "\n", encoding="utf-8")
    got = read_captions(path)
    assert [(c.text, list(c.tokens), c.start, c.end) for c in got] == caps
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no captions"):
        read_captions(empty)


def test_dataset_class_load_matches_function(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    write_clip(root, "a", rand_feats(60), [WHOLE])
    write_split(root, ["a"], "all")
    ds = HumanML3DDataset.load(root, "all", require_stats=False)
    assert ds.ids == ["a"] and ds.split == "all"
    assert "clips=1" in repr(ds) and "(60, 263)" in repr(ds[0])
