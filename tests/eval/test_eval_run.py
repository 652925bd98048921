"""The eval.py driver (motiongpt.eval.run) end to end at nano size: every task, resume, the Real row."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from motiongpt.data.humanml3d import load_humanml3d
from motiongpt.eval.evaluator import TextMotionEvaluator
from motiongpt.eval.run import EVAL_TASKS, KEY_TASKS, CacheMismatchError, EvalConfig, canonical_poses, evaluate

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def counting_generator(run_dir):
    """The run's generator, with a count of the samples it generated (the dependency is real)."""
    from motiongpt.generate import MotionGenerator

    torch.set_num_threads(1)
    gen = MotionGenerator.from_checkpoint(run_dir)
    gen.calls = []
    real_generate = gen.generate

    def generate(requests, *args, **kwargs):
        gen.calls.append(len(requests))
        return real_generate(requests, *args, **kwargs)

    gen.generate = generate
    return gen


def _config(run_dir: Path, corpus: Path, evaluator: Path, **kw) -> EvalConfig:
    base = dict(lora_path=str(run_dir), data_root=str(corpus), evaluator=str(evaluator), tasks=list(EVAL_TASKS),
                repeats=2, mm_texts=2, mm_gens=2)
    base.update(kw)
    return EvalConfig(**base)


def _stats(metrics: dict, repeats: int) -> None:
    for name, stat in metrics.items():
        assert set(stat) == {"mean", "ci95", "n"}, name
        assert stat["n"] == repeats and math.isfinite(stat["mean"]) and stat["ci95"] >= 0, name


def test_every_task_scored_cached_and_resumed(run_dir, evaluator_dir, syn_corpus, counting_generator, tmp_path):
    gen = counting_generator
    cache = tmp_path / "cache"
    cfg = _config(run_dir, syn_corpus, evaluator_dir)
    n_test = len(load_humanml3d(syn_corpus, "test").clips)
    res = evaluate(cfg, cache_dir=cache, generator=gen)
    first_calls = len(gen.calls)
    assert first_calls > 0
    assert set(res["tasks"]) == set(EVAL_TASKS) and res["repeats"] == 2
    assert res["dataset"]["n_motions"] == n_test and res["dataset"]["labels"] is True
    real, recon = res["rows"]["real"], res["rows"]["vq_recon"]
    for m in (real, recon, *(t["metrics"] for t in res["tasks"].values())):
        _stats(m, 2)
    # the reference rows: real motions need no FID; every real clip does what its caption says
    assert "fid" not in real and recon["fid"]["mean"] > 0
    assert real["semantic_accuracy"]["mean"] == 1.0
    for row in (real, recon):
        assert 0 <= row["top1"]["mean"] <= row["top2"]["mean"] <= row["top3"]["mean"] <= 1
    for task, entry in res["tasks"].items():
        m = entry["metrics"]
        assert entry["n_texts"] == n_test, task
        if task == "m2t":
            for k in ("bleu1", "bleu4", "rouge_l", "top1", "top3"):
                assert 0 <= m[k]["mean"] <= 1, k
            assert m["cider"]["mean"] >= 0 and m["matching_score"]["mean"] > 0
            continue
        assert m["parsed_rate"]["mean"] == 1.0, task  # constrained decoding: every output parses
        assert m["fid"]["mean"] >= 0 and m["diversity"]["mean"] >= 0 and m["matching_score"]["mean"] > 0
        assert m["r_precision_batch"]["mean"] == n_test  # fewer motions than 32: the batch is capped
        if task.startswith("t2m"):
            assert 0 <= m["semantic_accuracy"]["mean"] <= 1
        if task in KEY_TASKS:
            assert m["pair_rate"]["mean"] == 1.0 and m["sample_rate"]["mean"] == 1.0  # keys forced
            for k in ("free_pair_rate", "free_sample_rate", "free_parsed_rate"):
                assert 0 <= m[k]["mean"] <= 1, (task, k)
            assert m["key_pose_mm"]["mean"] >= 0 and m["vq_recon_key_pose_mm"]["mean"] >= 0
        if task in ("pred", "inbetween"):
            for k in ("ade", "fde", "vq_recon_ade", "vq_recon_fde"):
                assert m[k]["mean"] >= 0, (task, k)
    assert 0 <= res["tasks"]["t2m"]["metrics"]["multimodality"]["mean"]
    assert sum(f["n"] for f in res["semantic_per_family"].values()) > 0

    # the cache: one file per task (and free pass, and MultiModality) and repeat
    names = set(EVAL_TASKS) | {f"{t}.free" for t in KEY_TASKS} | {"mm"}
    files = sorted(cache.glob("*/repeat_*.json"))
    assert {f.parent.name for f in files} == names and len(files) == 2 * len(names)
    assert res["cache"] == {"folder": str(cache.resolve()), "reused": 0, "generated": len(files),
                            "samples_generated": sum(gen.calls)}

    # keys come from the real motion's codes, are forced at their positions, and differ per repeat
    keys_pos = [json.loads((cache / "t2m_keys_pos" / f"repeat_{r:03d}.json").read_text())["samples"] for r in (0, 1)]
    clips = load_humanml3d(syn_corpus, "test").clips
    for rec in keys_pos[0]:
        real_codes = gen.encode_motion(clips[rec["clip"]].features)
        assert rec["length"] == 4 * len(real_codes) and len(rec["codes"]) == len(real_codes)
        for p, code in rec["keys"]:
            assert real_codes[p] == code and rec["codes"][p] == code
    assert [r["seed"] for r in keys_pos[0]] != [r["seed"] for r in keys_pos[1]]

    # a sample regenerates alone from its record with the repeat's sampling (seed = base + repeat)
    from motiongpt.generate import GenerationRequest

    rec = json.loads((cache / "t2m" / "repeat_001.json").read_text())["samples"][2]
    again = gen.generate([GenerationRequest("t2m", rec["caption"], seed=rec["seed"])], cfg.sampling(cfg.seed + 1))[0]
    assert again.codes == rec["codes"]

    # resume: nothing is generated again, nothing rewritten, the same figures come out
    gen.calls.clear()
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again_res = evaluate(cfg, cache_dir=cache, generator=gen)
    assert gen.calls == [] and {f: f.stat().st_mtime_ns for f in files} == stamps
    assert again_res["per_repeat"] == res["per_repeat"] and again_res["cache"]["reused"] == len(files)

    # one more repeat generates that repeat only (every task once, plus the free passes and MM)
    more = evaluate(_config(run_dir, syn_corpus, evaluator_dir, repeats=3), cache_dir=cache, generator=gen)
    assert len(gen.calls) == first_calls // 2 and more["tasks"]["t2m"]["metrics"]["fid"]["n"] == 3
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    assert more["per_repeat"]["t2m"][:2] == res["per_repeat"]["t2m"]

    # other sampling settings do not silently mix with the cached generations
    changed = _config(run_dir, syn_corpus, evaluator_dir, temperature=0.5, tasks=["m2t"], repeats=1)
    with pytest.raises(CacheMismatchError, match="temperature: 0.8 -> 0.5"):
        evaluate(changed, cache_dir=cache, generator=gen)
    assert all(f.is_file() for f in files)  # the error leaves the cache as it was
    fresh = evaluate(changed, cache_dir=cache, generator=gen, on_mismatch="replace")
    assert fresh["cache"]["generated"] == 1
    assert sorted(cache.glob("*/repeat_*.json")) == [cache / "m2t" / "repeat_000.json"]


def test_real_row_is_real_split_metrics_and_options_are_checked(run_dir, evaluator_dir, syn_corpus,
                                                               counting_generator):
    from motiongpt.eval.protocol import real_split_metrics

    # the train split has enough motions for the protocol's batches of 32
    cfg = _config(run_dir, syn_corpus, evaluator_dir, split="train", tasks=["t2m_init"], key_texts=3,
                  key_free_pass=False, mm_texts=0, seed=5)
    res = evaluate(cfg, generator=counting_generator)
    assert res["tasks"]["t2m_init"]["n_texts"] == 3 and res["dataset"]["n_motions"] > 32
    ref = real_split_metrics(TextMotionEvaluator.from_pretrained(evaluator_dir), str(syn_corpus), "train",
                             repeats=2, seed=5)
    for k in ("top1", "top2", "top3", "matching_score"):
        assert res["rows"]["real"][k]["mean"] == pytest.approx(ref[k], rel=1e-6, abs=1e-9), k
        assert res["rows"]["real"][k]["ci95"] == pytest.approx(ref[k + "_ci95"], rel=1e-6, abs=1e-9), k

    with pytest.raises(ValueError, match="unknown task"):
        _config(run_dir, syn_corpus, evaluator_dir, tasks=["t2m", "dance"]).validate()
    with pytest.raises(ValueError, match="inbetween_context"):
        _config(run_dir, syn_corpus, evaluator_dir, inbetween_context=0.5).validate()
    with pytest.raises(ValueError, match="dataname 'kit' expects 251-d"):
        evaluate(_config(run_dir, syn_corpus, evaluator_dir, dataname="kit"), generator=counting_generator)


def test_guidance_applies_to_text_to_motion_tasks_only(run_dir, evaluator_dir, syn_corpus, counting_generator,
                                                      tmp_path):
    gen = counting_generator
    seen: list[tuple[str, float]] = []
    real_generate = gen.generate

    def generate(requests, sampling, *args, **kwargs):
        seen.extend((r.task, sampling.guidance_scale) for r in requests)
        return real_generate(requests, sampling, *args, **kwargs)

    gen.generate = generate
    try:
        cfg = _config(run_dir, syn_corpus, evaluator_dir, repeats=1, mm_texts=0, key_texts=2, max_texts=4,
                      guidance_scale=2.0)
        res = evaluate(cfg, cache_dir=tmp_path / "cache", generator=gen)
    finally:
        gen.generate = real_generate
    assert set(res["tasks"]) == set(EVAL_TASKS)
    scales = {}
    for task, scale in seen:
        scales.setdefault(task, set()).add(scale)
    assert scales == {t: ({2.0} if t in ("t2m",) + KEY_TASKS else {1.0}) for t in EVAL_TASKS}
    assert res["config"]["guidance_scale"] == 2.0
    # the cache records the scale: the same cache with another scale is a mismatch, not a silent reuse
    with pytest.raises(CacheMismatchError, match="guidance_scale"):
        evaluate(dataclasses.replace(cfg, guidance_scale=1.5), cache_dir=tmp_path / "cache", generator=gen)
    with pytest.raises(ValueError, match="guidance_scale"):
        _config(run_dir, syn_corpus, evaluator_dir, guidance_scale=-1.0).validate()


def test_canonical_poses_remove_position_and_facing():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(1, 22, 3)) * 0.1
    pose[0, 1], pose[0, 2] = (0.1, 0.0, 0.0), (-0.1, 0.0, 0.0)  # hips: right hip on -x, so facing +z
    pose[0, 16], pose[0, 17] = (0.2, 0.5, 0.0), (-0.2, 0.5, 0.0)
    canon = canonical_poses(pose)
    assert np.allclose(canon[0, 0, [0, 2]], 0.0)
    # the same pose elsewhere and turned by 70 degrees has the same canonical form
    a = np.deg2rad(70)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    moved = pose @ rot.T + np.array([1.5, 0.0, -2.0])
    assert np.allclose(canonical_poses(moved), canon, atol=1e-9)
    # a pose facing +z with the pelvis at the origin only loses its pelvis x / z offset
    assert np.allclose(canon[0, :, 1], pose[0, :, 1])
    with pytest.raises(ValueError, match="22 or 21"):
        canonical_poses(np.zeros((2, 10, 3)))


@pytest.mark.gpu
def test_evaluate_on_cuda(run_dir, evaluator_dir, syn_corpus):
    cfg = _config(run_dir, syn_corpus, evaluator_dir, tasks=["t2m", "t2m_keys_pos"], repeats=1, mm_texts=0,
                  device="cuda")
    gpu = evaluate(cfg)  # the LLM, the VQ-VAE and the evaluator all on the GPU
    cpu = evaluate(_config(run_dir, syn_corpus, evaluator_dir, tasks=["t2m"], repeats=1, mm_texts=0))
    assert gpu["tasks"]["t2m"]["metrics"]["parsed_rate"]["mean"] == 1.0
    assert gpu["tasks"]["t2m_keys_pos"]["metrics"]["pair_rate"]["mean"] == 1.0
    for k in ("matching_score", "diversity"):  # the real motions: the same up to float rounding
        assert gpu["rows"]["real"][k]["mean"] == pytest.approx(cpu["rows"]["real"][k]["mean"], rel=1e-3), k
    assert gpu["rows"]["real"]["semantic_accuracy"]["mean"] == 1.0


def test_compose_writes_t2m_clause_by_clause(run_dir, evaluator_dir, syn_corpus, counting_generator, tmp_path):
    """compose: the t2m samples are generate_composed's (the key-token tasks are not); the cache
    records compose, compose_context and compose_reserve; a model without t2m_next records is refused."""
    from motiongpt.generate import GenerationRequest, MotionGenerator
    from motiongpt.eval.run import format_markdown
    from motiongpt.generate.compose import generate_composed

    cfg = _config(run_dir, syn_corpus, evaluator_dir, tasks=["t2m", "t2m_keys"], repeats=1, mm_texts=0, key_texts=2,
                  max_texts=4, compose=True, compose_context=0, compose_reserve=3)
    with pytest.raises(ValueError, match="t2m_next"):
        evaluate(cfg, cache_dir=tmp_path / "refused", generator=counting_generator)
    g = counting_generator
    composer = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                               max_motion_tokens=g.max_motion_tokens, trained_tasks=("t2m", "t2m_keys", "t2m_next"))
    res = evaluate(cfg, cache_dir=tmp_path / "cache", generator=composer)
    assert res["config"]["compose"] is True and res["config"]["compose_context"] == 0
    assert res["config"]["compose_reserve"] == 3
    assert "composed clause by clause (t2m_next, context 0 codes, 3 codes kept for each later clause)" \
        in format_markdown(res)
    records = json.loads((tmp_path / "cache" / "t2m" / "repeat_000.json").read_text())["samples"]
    reqs = [GenerationRequest("t2m", r["caption"], seed=r["seed"]) for r in records]
    expected = generate_composed(composer, reqs, cfg.sampling(cfg.seed), batch_size=cfg.batch_size, context_codes=0,
                                 reserve_codes=3)
    assert [r["codes"] for r in records] == [e.codes for e in expected]
    with pytest.raises(CacheMismatchError, match="compose_context"):
        evaluate(dataclasses.replace(cfg, compose_context=1), cache_dir=tmp_path / "cache", generator=composer)
    with pytest.raises(CacheMismatchError, match="compose_reserve"):
        evaluate(dataclasses.replace(cfg, compose_reserve=14), cache_dir=tmp_path / "cache", generator=composer)
    with pytest.raises(ValueError, match="compose_reserve"):
        dataclasses.replace(cfg, compose_reserve=0).validate()
    with pytest.raises(ValueError, match="gt_length"):
        dataclasses.replace(cfg, gt_length=True).validate()
    with pytest.raises(ValueError, match="compose_context"):
        dataclasses.replace(cfg, compose_context=-1).validate()


def test_reranking_reaches_the_text_to_motion_tasks(run_dir, evaluator_dir, syn_corpus, counting_generator, tmp_path):
    """candidates > 1: the t2m samples are the reranked ones (the m2t ones are not: no caption to
    score against), the cache and metrics.md record it, a cache made without it is not reused."""
    from motiongpt.eval.run import format_markdown
    from motiongpt.generate import GenerationRequest

    cfg = _config(run_dir, syn_corpus, evaluator_dir, tasks=["t2m", "m2t"], repeats=1, mm_texts=0, max_texts=4,
                  temperature=1.0, candidates=3, rerank_uncond_weight=0.25)
    assert cfg.sampling(0).candidates == 3 and cfg.sampling(0, guided=False).candidates == 1
    res = evaluate(cfg, cache_dir=tmp_path / "cache", generator=counting_generator)
    assert res["config"]["candidates"] == 3
    assert "best of 3 candidates by the model's own score (unconditional weight 0.25" in format_markdown(res)
    records = json.loads((tmp_path / "cache" / "t2m" / "repeat_000.json").read_text())["samples"]
    reqs = [GenerationRequest("t2m", r["caption"], seed=r["seed"]) for r in records]
    expected = counting_generator.generate(reqs, cfg.sampling(cfg.seed), batch_size=cfg.batch_size)
    assert [r["codes"] for r in records] == [e.codes for e in expected]
    plain = counting_generator.generate(reqs, dataclasses.replace(cfg.sampling(cfg.seed), candidates=1))
    assert [r["codes"] for r in records] != [p.codes for p in plain]  # reranking chose other samples
    with pytest.raises(CacheMismatchError, match="candidates"):
        evaluate(dataclasses.replace(cfg, candidates=1), cache_dir=tmp_path / "cache", generator=counting_generator)
    with pytest.raises(ValueError, match="candidates"):
        dataclasses.replace(cfg, temperature=0.0).validate()
