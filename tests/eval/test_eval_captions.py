"""eval.py --captions: text-to-motion from caption files (rewordings), scored caption-free, cached, fingerprinted."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from motiongpt.data.synthetic.rewording import read_caption_file, write_caption_file
from motiongpt.eval.run import CacheMismatchError, EvalConfig, evaluate, format_markdown

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gen(run_dir):
    from motiongpt.generate import MotionGenerator

    torch.set_num_threads(1)
    return MotionGenerator.from_checkpoint(run_dir)


@pytest.fixture(scope="module")
def caption_files(syn_corpus, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rewordings")
    out = {}
    for style in ("synonyms", "connectors"):
        out[style] = folder / f"{style}.txt"
        write_caption_file(syn_corpus, "test", style, out[style])
    return out


def _config(run_dir: Path, corpus: Path, **kw) -> EvalConfig:
    base = dict(lora_path=str(run_dir), data_root=str(corpus), tasks=["t2m"], repeats=2, mm_texts=0)
    base.update(kw)
    return EvalConfig(**base)


def _samples(cache: Path, name: str, repeat: int) -> list[dict]:
    return json.loads((cache / name / f"repeat_{repeat:03d}.json").read_text())["samples"]


def test_caption_files_scored_paired_cached_and_fingerprinted(run_dir, syn_corpus, gen, caption_files, tmp_path):
    files = [str(caption_files["synonyms"]), str(caption_files["connectors"])]
    n_test = len(read_caption_file(files[0]))

    # without caption files: no trace of them, and the cache they would invalidate
    plain = evaluate(_config(run_dir, syn_corpus), cache_dir=tmp_path / "plain", generator=gen)
    assert "captions" not in plain and "captions" not in plain["config"]
    with pytest.raises(CacheMismatchError, match="caption_files"):
        evaluate(_config(run_dir, syn_corpus, captions=files), cache_dir=tmp_path / "plain", generator=gen)

    cache = tmp_path / "cache"
    cfg = _config(run_dir, syn_corpus, captions=files)
    res = evaluate(cfg, cache_dir=cache, generator=gen)
    # the template figures are those of a run without caption files
    assert res["per_repeat"] == plain["per_repeat"] and res["rows"] == plain["rows"]
    assert res["tasks"] == plain["tasks"] and res["semantic_per_family"] == plain["semantic_per_family"]
    assert res["config"]["captions"] == files
    assert set(res["captions"]) == {"synonyms", "connectors"}
    for stem, path in zip(("synonyms", "connectors"), files):
        e = res["captions"][stem]
        assert e["n"] == e["n_listed"] == n_test and e["not_evaluated"] == 0 and e["file"] == str(Path(path).resolve())
        for k in ("semantic_accuracy", "template_semantic_accuracy", "parsed_rate"):
            assert set(e[k]) == {"mean", "ci95", "n"} and e[k]["n"] == 2 and 0 <= e[k]["mean"] <= 1, k
        assert e["parsed_rate"]["mean"] == 1.0  # constrained decoding
        assert sum(v["n"] for v in e["per_action"].values()) > 0
        assert e["per_action"].keys() == e["template_per_action"].keys()
        # the t2m task's requests with the file's captions: same clips, same seeds, same lengths
        for r in range(2):
            ours, t2m = _samples(cache, f"captions/{stem}", r), _samples(cache, "t2m", r)
            assert [(s["id"], s["caption"]) for s in ours] == read_caption_file(path)
            by_clip = {s["clip"]: s for s in t2m}
            assert [s["seed"] for s in ours] == [by_clip[s["clip"]]["seed"] for s in ours]
            assert all(s["caption"] != by_clip[s["clip"]]["caption"] for s in ours)
        # the template column: the t2m samples of the same clips under the caption-free checks
        assert e["template_semantic_accuracy"]["mean"] == pytest.approx(res["captions"]["synonyms"]
                                                                        ["template_semantic_accuracy"]["mean"])
    md = format_markdown(res)
    assert "## Caption files" in md and f"| synonyms | {n_test} |" in md and f"| connectors | {n_test} |" in md

    assert res["cache"]["generated"] == 2 * 3  # t2m and the two files, two repeats
    # resume: nothing generated again, the same figures
    again = evaluate(cfg, cache_dir=cache, generator=gen)
    assert again["cache"]["samples_generated"] == 0 and again["cache"]["reused"] == 6
    assert again["captions"] == res["captions"]

    # a changed caption file is never served the old generations
    changed = tmp_path / "synonyms.txt"
    changed.write_text(caption_files["synonyms"].read_text().replace(".\n", " again.\n", 1))
    moved = dataclasses.replace(cfg, captions=[str(changed), files[1]])
    with pytest.raises(CacheMismatchError, match="caption_files.synonyms"):
        evaluate(moved, cache_dir=cache, generator=gen)
    fresh = evaluate(moved, cache_dir=cache, generator=gen, on_mismatch="replace")
    assert _samples(cache, "captions/synonyms", 0)[0]["caption"].endswith(" again.")
    assert fresh["captions"]["synonyms"]["sha256"] != res["captions"]["synonyms"]["sha256"]


def test_caption_files_use_the_t2m_sampling(run_dir, syn_corpus, gen, caption_files, tmp_path):
    """Guidance, reranking and composed decoding reach the caption files' generations as they reach t2m's."""
    from motiongpt.generate import GenerationRequest, MotionGenerator
    from motiongpt.generate.compose import generate_composed

    cfg = _config(run_dir, syn_corpus, repeats=1, max_texts=3, temperature=1.0, guidance_scale=2.0, candidates=2,
                  captions=[str(caption_files["connectors"])])
    res = evaluate(cfg, cache_dir=tmp_path / "guided", generator=gen)
    e = res["captions"]["connectors"]
    assert e["n"] == 3 and e["n_listed"] == 6 and e["not_evaluated"] == 3  # max_texts leaves the rest out
    recs = _samples(tmp_path / "guided", "captions/connectors", 0)
    reqs = [GenerationRequest("t2m", r["caption"], seed=r["seed"]) for r in recs]
    assert [r["codes"] for r in recs] == [x.codes for x in gen.generate(reqs, cfg.sampling(cfg.seed))]

    composer = MotionGenerator(gen.model, gen.tokenizer, gen.fmt, gen.vq, template=gen.template,
                               wrap_output=gen.wrapped, max_motion_tokens=gen.max_motion_tokens,
                               trained_tasks=("t2m", "m2t", "t2m_next"))
    cfg = _config(run_dir, syn_corpus, repeats=1, max_texts=2, compose=True, compose_context=0, compose_reserve=3,
                  tasks=["m2t"], captions=[str(caption_files["synonyms"])])
    res = evaluate(cfg, cache_dir=tmp_path / "composed", generator=composer)
    assert "template_semantic_accuracy" not in res["captions"]["synonyms"]  # no t2m task: nothing to pair with
    assert "| synonyms | 2 |" in format_markdown(res)
    recs = _samples(tmp_path / "composed", "captions/synonyms", 0)
    reqs = [GenerationRequest("t2m", r["caption"], seed=r["seed"]) for r in recs]
    expected = generate_composed(composer, reqs, cfg.sampling(cfg.seed), batch_size=cfg.batch_size, context_codes=0,
                                 reserve_codes=3)
    assert [r["codes"] for r in recs] == [x.codes for x in expected]


def test_caption_file_errors(run_dir, syn_corpus, gen, caption_files, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(caption_files["synonyms"].read_text() + "S999999#a gentleman pauses.\n")
    with pytest.raises(ValueError, match=f"{bad}: clip S999999 is not a captioned motion of split 'test'"):
        evaluate(_config(run_dir, syn_corpus, captions=[str(bad)]), cache_dir=tmp_path / "c", generator=gen)
    assert not (tmp_path / "c").exists()  # refused before the cache was made
    bad.write_text("S000001 no hash\n")
    with pytest.raises(ValueError, match=f"{bad}: line 1"):
        evaluate(_config(run_dir, syn_corpus, captions=[str(bad)]), generator=gen)
    with pytest.raises(ValueError, match="caption file not found"):
        _config(run_dir, syn_corpus, captions=[str(tmp_path / "nope.txt")]).validate()
    other = tmp_path / "x" / "synonyms.txt"
    other.parent.mkdir()
    other.write_text(caption_files["synonyms"].read_text())
    with pytest.raises(ValueError, match="share the name 'synonyms'"):
        _config(run_dir, syn_corpus, captions=[str(caption_files["synonyms"]), str(other)]).validate()


def test_cli_option(tmp_path):
    spec = importlib.util.spec_from_file_location("eval_cli", REPO / "eval.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    base = ["--lora_path", "r", "--data_root", "d", "--out_dir", "o"]
    assert cli.build_parser().parse_args(base).captions is None
    assert cli.build_parser().parse_args(base + ["--captions", "a.txt", "--captions", "b.txt"]).captions == [
        "a.txt", "b.txt"]
    proc = subprocess.run([sys.executable, str(REPO / "eval.py"), "--lora_path", str(tmp_path), "--data_root",
                           str(tmp_path), "--out_dir", str(tmp_path / "o"), "--captions", str(tmp_path / "no.txt")],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "caption file not found" in proc.stderr and not (tmp_path / "o").exists()
