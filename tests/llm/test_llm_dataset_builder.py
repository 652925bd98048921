"""Instruction dataset builder: records against the code files, splits, mirrors, skip report,
determinism, output folder safety, the token-cache check and the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from motiongpt.data.humanml3d import read_split
from motiongpt.llm.dataset_builder import GENERATOR_NAME, InstructionDataConfig, generate_instruction_dataset
from motiongpt.llm.tasks import (
    parse_inbetween_input,
    parse_keys_pos_input,
    parse_next_input,
    parse_pred_input,
    split_clauses,
    swap_left_right,
)
from motiongpt.llm.templates import TASKS
from motiongpt.llm.tokens import MotionTokenFormat, extract_key_tokens, load_motion_format, text_to_codes

REPO = Path(__file__).resolve().parents[2]
VOCAB = MotionTokenFormat("vocab", 512)


def _write_codes(path: Path, n: int, rng: np.random.Generator) -> None:
    np.save(path, rng.integers(0, 512, size=n).astype(np.int64))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """30 synthetic clips with fake codes (+ mirrors of train clips) and planted problems."""
    from motiongpt.data.synthetic import build_synthetic_dataset

    root = tmp_path_factory.mktemp("instr") / "data"
    build_synthetic_dataset(root, num_clips=30, seed=0, workers=1)
    rng = np.random.default_rng(0)
    tok = root / "VQVAE"
    tok.mkdir()
    train, val, test = (read_split(root, s) for s in ("train", "val", "test"))
    for cid in train + val + test:
        frames = np.load(root / "new_joint_vecs" / f"{cid}.npy", mmap_mode="r").shape[0]
        _write_codes(tok / f"{cid}.npy", frames // 4, rng)
        if cid in train:
            _write_codes(tok / f"M{cid}.npy", frames // 4, rng)
    a, b, c, e, f = train[:5]
    (tok / f"{a}.npy").unlink()  # missing codes
    (root / "texts" / f"{b}.txt").write_text(  # mixed caption file: good, empty, malformed, segment
        "a person turns left and spins clockwise.#a/DET#0.0#0.0\n"
        "   #a/DET#0.0#0.0\n"
        "garbage without fields\n"
        "a person waves with the Left hand.#a/DET#0.5#2.5\n",
        encoding="utf-8",
    )
    _write_codes(tok / f"{b}.npy", 40, rng)
    _write_codes(tok / f"M{b}.npy", 40, rng)
    _write_codes(tok / f"{c}.npy", 5, rng)  # too short for min_tokens=10
    (tok / f"M{e}.npy").unlink()  # mirror missing
    _write_codes(tok / f"{f}.npy", 2, rng)  # too few for t2m_keys / pred / inbetween with min_tokens=1
    (root / "texts" / f"{val[0]}.txt").unlink()  # missing text
    return {"root": root, "train": train, "val": val, "test": test, "a": a, "b": b, "c": c, "e": e, "f": f}


def _cfg(corpus: dict, out: Path, **kw) -> InstructionDataConfig:
    return InstructionDataConfig(data_root=str(corpus["root"]), out_dir=str(out), **kw)


@pytest.fixture(scope="module")
def built(corpus: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("built") / "ds"
    report = generate_instruction_dataset(_cfg(corpus, out, tasks=list(TASKS)))
    return {"out": out, "report": report,
            **{s: json.loads((out / f"{s}.json").read_text(encoding="utf-8")) for s in ("train", "val", "test")}}


def _codes_for(root: Path, motion: str, fps: float = 20.0) -> list[int]:
    if "#" in motion:
        cid, start, end = motion.split("#")
        codes = np.load(root / "VQVAE" / f"{cid}.npy")
        return codes[int(float(start) * fps) // 4 : int(float(end) * fps) // 4].tolist()
    return np.load(root / "VQVAE" / f"{motion}.npy").tolist()


def _parse(text: str) -> list[int]:
    res = text_to_codes(text, VOCAB)
    assert res.ok, res.problems
    return res.codes


def test_outputs_written(built):
    out = built["out"]
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "motion_format.json", "test.json", "train.json",
                                                     "val.json"]
    assert load_motion_format(out) == VOCAB
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o666 & ~umask}  # not mkstemp's 0600
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["generator"] == GENERATOR_NAME and meta["format"] == VOCAB.to_dict()
    assert meta["config"]["tasks"] == list(TASKS)
    for split in ("train", "val", "test"):
        counts = meta["counts"][split]
        assert counts["records"] == len(built[split]) > 0
        per_task = {t: sum(r["task"] == t for r in built[split]) for t in TASKS}
        assert counts["per_task"] == per_task
        assert all(v > 0 for v in per_task.values())


def test_records_match_code_files(built, corpus):
    """Every motion output decodes to the codes file (sliced for segments); key tokens are the
    codes at their positions; pred / inbetween parts concatenate back to the whole sequence."""
    root = corpus["root"]
    for split in ("train", "val", "test"):
        for r in built[split]:
            codes = _codes_for(root, r["motion"])
            task = r["task"]
            if task == "t2m_next":
                _check_next_record(root, r, codes, built["report"]["config"]["next_context_codes"])
                continue
            assert r["length"] == 4 * len(codes)
            if task in ("t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos"):
                assert _parse(r["output"]) == codes
            if "keys" in r:
                assert all(codes[p] == c for p, c in r["keys"])
            if task in ("t2m_init", "t2m_last", "t2m_keys"):
                assert extract_key_tokens(r["input"], VOCAB, strict=True) == (r["caption"], [c for _, c in r["keys"]])
            elif task == "t2m_keys_pos":
                assert parse_keys_pos_input(r["input"], VOCAB) == (
                    r["caption"], [tuple(k) for k in r["keys"]], len(codes))
            elif task == "m2t":
                assert _parse(r["input"]) == codes and r["output"] == r["caption"]
            elif task == "pred":
                assert parse_pred_input(r["input"], VOCAB)[1] + _parse(r["output"]) == codes
            elif task == "inbetween":
                _, s, e = parse_inbetween_input(r["input"], VOCAB)
                assert s + _parse(r["output"]) + e == codes


def _segment_bounds(root: Path, motion: str, n: int) -> list[int]:
    """Code bounds of a clip's labelled segments (a mirror has its clip's)."""
    label = json.loads((root / "labels" / f"{motion.removeprefix('M')}.json").read_text(encoding="utf-8"))
    return [0] + [round(seg["start"] / 4) for seg in label["segments"][1:]] + [n]


def _check_next_record(root: Path, r: dict, codes: list[int], context_codes: int) -> None:
    """A t2m_next record: its clause of the caption, the codes of that labelled segment, the
    ``context_codes`` codes before it as context."""
    bounds = _segment_bounds(root, r["motion"], len(codes))
    k = r["clause"]
    a, b = bounds[k], bounds[k + 1]
    clause, context = parse_next_input(r["input"], VOCAB)
    assert clause == split_clauses(r["caption"])[k] and len(split_clauses(r["caption"])) == len(bounds) - 1
    assert context == (codes[max(0, a - context_codes):a] if context_codes else [])
    assert _parse(r["output"]) == codes[a:b] and r["length"] == 4 * (b - a)


def test_next_records_per_clip(built, corpus):
    """Every clip with two or more segments gets a record per clause of each caption stating them in
    order, and its mirror the same with mirrored captions; single-segment clips get none."""
    root = corpus["root"]
    recs = [r for r in built["train"] if r["task"] == "t2m_next"]
    assert recs
    for motion in {r["motion"] for r in built["train"] if r["task"] == "t2m" and "#" not in r["motion"]}:
        label = json.loads((root / "labels" / f"{motion.removeprefix('M')}.json").read_text(encoding="utf-8"))
        mine = [r for r in recs if r["motion"] == motion]
        n_seg = len(label["segments"])
        if n_seg < 2 or motion.removeprefix("M") in (corpus["b"], corpus["c"], corpus["f"]):
            # one segment; b's captions were rewritten; c (5 codes, filtered out) and f (2 codes) have
            # codes shorter than their labels, and c's mirror does not take timing from a clip that differs
            assert not mine, motion
            continue
        captions = {r["caption"] for r in built["train"] if r["motion"] == motion and r["task"] == "t2m"}
        stating = [c for c in captions if len(split_clauses(c)) == n_seg]
        assert sorted(r["caption"] for r in mine) == sorted(c for c in stating for _ in range(n_seg))
    assert any(r["motion"].startswith("M") for r in recs)


def test_next_records_with_context(corpus, tmp_path):
    report = generate_instruction_dataset(_cfg(corpus, tmp_path / "ctx", tasks=["t2m_next"], next_context_codes=3,
                                               splits=["train"]))
    recs = json.loads((tmp_path / "ctx" / "train.json").read_text(encoding="utf-8"))
    assert recs and report["config"]["next_context_codes"] == 3
    for r in recs:
        _check_next_record(corpus["root"], r, _codes_for(corpus["root"], r["motion"]), 3)
    assert any(len(parse_next_input(r["input"], VOCAB)[1]) == 3 for r in recs)


def test_next_needs_segment_labels(corpus, tmp_path):
    root = tmp_path / "nolabels"
    shutil.copytree(corpus["root"], root, ignore=shutil.ignore_patterns("labels"))
    with pytest.raises(ValueError, match="t2m_next made no train records.*labels"):
        generate_instruction_dataset(InstructionDataConfig(data_root=str(root), out_dir=str(tmp_path / "o"),
                                                           tasks=["t2m", "t2m_next"]))
    assert not (tmp_path / "o").exists()
    # without the task, labels are not needed
    generate_instruction_dataset(InstructionDataConfig(data_root=str(root), out_dir=str(tmp_path / "o"), tasks=["t2m"]))


def test_splits_mirrors_and_segments(built, corpus):
    train, val, test = (set(corpus[s]) for s in ("train", "val", "test"))
    motions = {s: {r["motion"] for r in built[s]} for s in ("train", "val", "test")}
    b, e = corpus["b"], corpus["e"]
    assert motions["val"] <= val and motions["test"] <= test  # no mirrors outside train
    plain = {m for m in motions["train"] if not m.startswith("M") and "#" not in m}
    assert plain == train - {corpus["a"], corpus["c"], corpus["f"]}
    mirrored = {m[1:] for m in motions["train"] if m.startswith("M") and "#" not in m}
    assert mirrored == train - {corpus["a"], e}  # a: no codes at all; e: no mirror codes
    # the segment caption became a sub-motion of b (and of its mirror), with sliced codes
    assert f"{b}#0.5#2.5" in motions["train"] and f"M{b}#0.5#2.5" in motions["train"]
    # mirrored captions: left/right and clockwise swapped, everything else the same
    caps = {r["motion"]: r["caption"] for r in built["train"]}
    assert caps[f"M{b}"] == "a person turns right and spins counterclockwise."
    assert caps[f"M{b}#0.5#2.5"] == "a person waves with the Right hand."
    for m, cap in caps.items():
        if m.startswith("M") and "#" not in m:
            lines = (corpus["root"] / "texts" / f"{m[1:]}.txt").read_text(encoding="utf-8").splitlines()
            originals = {line.split("#")[0] for line in lines}
            assert cap in {swap_left_right(o) for o in originals}
    counts = built["report"]["counts"]["train"]
    assert counts["mirrored"] == len({m for m in motions["train"] if m.startswith("M")})
    assert counts["segments"] == 2


def test_skip_report_counts(built, corpus):
    counts = built["report"]["counts"]
    assert counts["train"]["skipped"] == {
        "bad_caption_line": 1, "empty_caption": 1, "missing_codes": 1, "missing_mirror_codes": 1, "too_short": 2,
    }
    assert counts["val"]["skipped"] == {"missing_text": 1}
    assert counts["test"]["skipped"] == {}
    assert counts["train"]["skipped_tasks"] == {}
    examples = built["report"]["skip_examples"]
    assert corpus["a"] in examples["train/missing_codes"][0]
    assert corpus["c"] in " ".join(examples["train/too_short"])


def test_too_few_tokens_per_task_counted(corpus, tmp_path):
    report = generate_instruction_dataset(_cfg(corpus, tmp_path / "o", tasks=list(TASKS), min_tokens=1,
                                               splits=["train"]))
    train = report["counts"]["train"]
    # f has 2 codes: too few for t2m_keys (3), pred (3) and inbetween (3), enough for the rest; its
    # labelled segments start past its 2 codes: counted, no t2m_next records
    assert train["skipped_tasks"] == {"t2m_keys": 1, "pred": 1, "inbetween": 1}
    assert "too_short" not in train["skipped"]
    recs = json.loads((tmp_path / "o" / "train.json").read_text(encoding="utf-8"))
    assert {r["task"] for r in recs if r["motion"] == corpus["f"]} == set(TASKS) - {"t2m_keys", "pred", "inbetween",
                                                                                    "t2m_next"}
    label = json.loads((corpus["root"] / "labels" / f"{corpus['f']}.json").read_text(encoding="utf-8"))
    if len(label["segments"]) > 1:
        assert corpus["f"] in " ".join(report["skip_examples"]["train/bad_segments"])
    assert not (tmp_path / "o" / "val.json").exists()


def test_deterministic_and_seeded(corpus, built, tmp_path):
    generate_instruction_dataset(_cfg(corpus, tmp_path / "same", tasks=list(TASKS)))
    for s in ("train", "val", "test"):
        assert (tmp_path / "same" / f"{s}.json").read_bytes() == (built["out"] / f"{s}.json").read_bytes()
    generate_instruction_dataset(_cfg(corpus, tmp_path / "other", tasks=list(TASKS), seed=1))
    assert (tmp_path / "other" / "train.json").read_bytes() != (built["out"] / "train.json").read_bytes()


def test_records_per_clip_and_digits(corpus, tmp_path):
    generate_instruction_dataset(_cfg(corpus, tmp_path / "d", tasks=["t2m", "t2m_keys"], records_per_clip=2,
                                      format="digits", mirror=False, canonical_prob=1.0))
    recs = json.loads((tmp_path / "d" / "train.json").read_text(encoding="utf-8"))
    per_motion: dict[tuple[str, str], int] = {}
    for r in recs:
        per_motion[(r["motion"], r["task"])] = per_motion.get((r["motion"], r["task"]), 0) + 1
        assert not r["motion"].startswith("M")
        # MotionGPT-LoRA's train.json shape: bare comma-joined integers
        assert r["output"] == ",".join(str(c) for c in _codes_for(corpus["root"], r["motion"]))
    assert set(per_motion.values()) == {2}
    assert load_motion_format(tmp_path / "d") == MotionTokenFormat("digits", 512)


def test_uncond_records_only_in_train(corpus, built, tmp_path):
    rep = generate_instruction_dataset(_cfg(corpus, tmp_path / "u", tasks=list(TASKS), uncond_prob=0.3))
    for split in ("train", "val", "test"):
        recs = json.loads((tmp_path / "u" / f"{split}.json").read_text(encoding="utf-8"))
        unc = [r for r in recs if r.get("uncond")]
        assert rep["counts"][split]["uncond"] == len(unc)
        if split != "train":  # evaluation data stays conditional, byte for byte
            assert not unc
            assert (tmp_path / "u" / f"{split}.json").read_bytes() == (built["out"] / f"{split}.json").read_bytes()
            continue
        t2m = [r for r in recs if r["task"] == "t2m" and not r.get("uncond")]
        assert 0 < len(unc) < len(t2m)
        assert all(r["input"] == "" and r["task"] == "t2m" for r in unc)
        # the other records are the ones built without the option
        base = json.loads((built["out"] / "train.json").read_text(encoding="utf-8"))
        assert [r for r in recs if not r.get("uncond")] == base


def test_out_dir_safety_and_rerun(corpus, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_instruction_dataset(_cfg(corpus, foreign, splits=["train"]))
    assert (foreign / "notes.txt").read_text() == "mine"
    out = tmp_path / "ours"
    generate_instruction_dataset(_cfg(corpus, out, splits=["train"]))
    generate_instruction_dataset(_cfg(corpus, out, splits=["train", "val"]))  # an earlier output: replaced
    assert (out / "val.json").is_file()


def test_codes_out_of_range_is_an_error(corpus, tmp_path):
    with pytest.raises(ValueError, match=r"VQVAE/.*\.npy: codes in .* outside \[0, 8\)"):
        generate_instruction_dataset(_cfg(corpus, tmp_path / "o", nb_code=8))
    with pytest.raises(ValueError, match="min_tokens"):
        generate_instruction_dataset(_cfg(corpus, tmp_path / "o", min_tokens=0))
    with pytest.raises(FileNotFoundError, match="nope not found: encode the dataset first"):
        generate_instruction_dataset(_cfg(corpus, tmp_path / "o", token_dir="nope"))


def test_vq_token_cache_check(tmp_path):
    """With --vq the cache must come from that VQ-VAE (real encode of a 10-clip corpus)."""
    import torch

    from motiongpt.data.synthetic import build_synthetic_dataset
    from motiongpt.vq.config import get_preset
    from motiongpt.vq.model import VQVAE
    from motiongpt.vq.prepare import encode_dataset

    root = tmp_path / "data"
    build_synthetic_dataset(root, num_clips=10, seed=1, workers=1)
    vq_cfg = get_preset("tiny")
    for seed, name in ((0, "vq1"), (1, "vq2")):
        torch.manual_seed(seed)
        VQVAE(vq_cfg).save_pretrained(tmp_path / name)
    encode_dataset(tmp_path / "vq1", root, mirror=False)
    report = generate_instruction_dataset(InstructionDataConfig(
        data_root=str(root), out_dir=str(tmp_path / "ok"), vq=str(tmp_path / "vq1"), min_tokens=1))
    assert report["vq"]["checked"] and report["format"]["nb_code"] == vq_cfg.model.nb_code
    assert report["nb_code_source"] != "default"
    assert any("mirror" in n for n in report["notes"])  # mirror asked, none encoded
    with pytest.raises(ValueError, match="not current"):
        generate_instruction_dataset(InstructionDataConfig(
            data_root=str(root), out_dir=str(tmp_path / "stale"), vq=str(tmp_path / "vq2")))
    with pytest.raises(ValueError, match="nb_code=512"):
        generate_instruction_dataset(InstructionDataConfig(
            data_root=str(root), out_dir=str(tmp_path / "x"), nb_code=512))


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli(corpus, tmp_path, capsys):
    cli = _load_script("generate_dataset")
    out = tmp_path / "cli"
    report = cli.main(["--data_root", str(corpus["root"]), "--out_dir", str(out), "--tasks", "t2m,m2t",
                       "--records_per_clip", "1", "--seed", "3", "--format", "digits", "--no-mirror",
                       "canonical_prob=1.0", "max_tokens=60"])
    cfg = report["config"]
    assert (cfg["tasks"], cfg["records_per_clip"], cfg["seed"], cfg["format"], cfg["mirror"]) == (
        ["t2m", "m2t"], 1, 3, "digits", False)
    assert (cfg["canonical_prob"], cfg["max_tokens"]) == (1.0, 60)
    assert json.loads(capsys.readouterr().out)["counts"]["train"]["records"] == report["counts"]["train"]["records"]
    assert {r["task"] for r in json.loads((out / "train.json").read_text())} == {"t2m", "m2t"}
    with pytest.raises(SystemExit):
        cli.main(["--data_root", str(corpus["root"]), "--out_dir", str(out), "--tasks", "t2m,bogus"])
    with pytest.raises(SystemExit):
        cli.main(["--data_root", str(corpus["root"]), "--out_dir", str(out), "no_such_key=1"])


def test_copy_without_mirror_codes_notes(corpus, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(corpus["root"], root, ignore=shutil.ignore_patterns("new_joint*", "M*.npy"))
    report = generate_instruction_dataset(InstructionDataConfig(data_root=str(root), out_dir=str(tmp_path / "o"),
                                                                splits=["train"]))
    assert report["counts"]["train"]["mirrored"] == 0
    # every train clip but a (which has no codes at all)
    assert report["counts"]["train"]["skipped"]["missing_mirror_codes"] == len(corpus["train"]) - 1
    assert any("no mirrored codes" in n for n in report["notes"])


def test_paraphrased_captions_only_in_train(corpus, built, tmp_path, wordnet):
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("X1#a gentleman springs upward twice\n")
    rep = generate_instruction_dataset(_cfg(corpus, tmp_path / "p", tasks=list(TASKS), paraphrase_prob=0.5,
                                            paraphrase_exclude=[str(held_out)]))
    assert rep["config"]["paraphrase_prob"] == 0.5
    for split in ("val", "test"):  # evaluation data reads the captions as written, byte for byte
        assert (tmp_path / "p" / f"{split}.json").read_bytes() == (built["out"] / f"{split}.json").read_bytes()
    recs = json.loads((tmp_path / "p" / "train.json").read_text(encoding="utf-8"))
    base = built["train"]
    assert len(recs) == len(base)
    t2m = [(a, b) for a, b in zip(base, recs) if a["task"] == "t2m"]
    changed = [b["input"] for a, b in t2m if a["input"] != b["input"]]
    assert 0.3 * len(t2m) < len(changed) < 0.7 * len(t2m)
    words = {w for c in changed for w in c.lower().replace(",", " ").replace(".", " ").split()}
    assert not words & {"gentleman", "springs", "spring", "upward"}
    # everything but the caption is the record built without the option
    for a, b in zip(base, recs):
        assert {k: v for k, v in a.items() if k not in ("input", "caption")} == \
               {k: v for k, v in b.items() if k not in ("input", "caption")}
