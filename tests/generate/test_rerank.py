"""Reranking (motiongpt.generate.rerank and SamplingConfig.candidates), on the barely trained nano
checkpoints of conftest.py.

Scores are checked against full forward passes of one row at a time (no padding, float64
log-softmax); the kept candidate against the plain requests each candidate's seed gives."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from motiongpt.generate import GenerationRequest, MotionGenerator, SamplingConfig
from gen_testlib import clauses_one_by_one
from motiongpt.generate.compose import generate_composed
from motiongpt.generate.rerank import CANDIDATE_SEED_STRIDE, LogProbRecorder, best_candidates, sequence_log_probs

SAMPLED = SamplingConfig(temperature=1.0, top_k=0, seed=3)


def reference_log_prob(model, prompt: list[int], out: list[int]) -> float:
    """sum log p(out | prompt) from one unpadded forward pass (float64 log-softmax)."""
    with torch.no_grad():
        x = torch.tensor([prompt + out], dtype=torch.long)
        logits = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits[0]
    logp = torch.log_softmax(logits.double(), -1)
    return float(sum(logp[len(prompt) - 1 + t, tok] for t, tok in enumerate(out)))


def new_ids(gen, r) -> list[int]:
    """The tokens the model wrote: the raw text's tokens, then EOS (constrained outputs always end)."""
    ids = list(gen.tokenizer(r.raw_text, add_special_tokens=False)["input_ids"]) + [gen.tokenizer.eos_token_id]
    assert len(ids) == r.num_new_tokens
    return ids


def test_sequence_log_probs_match_unpadded_passes(vocab_gen):
    gen = vocab_gen
    prompts = [p.prompt_ids for p in gen.plan([GenerationRequest("t2m", "a person walks."),
                                               GenerationRequest("t2m", "someone jumps up and down twice."),
                                               GenerationRequest("t2m", "")])]
    outs = [[5, 9, 2], [7], [11, 12, 13, 14, 15, 2]]
    got = sequence_log_probs(gen.model, prompts, outs, pad_id=gen.pad_id, batch_size=2)
    want = [reference_log_prob(gen.model, p, o) for p, o in zip(prompts, outs)]
    assert got == pytest.approx(want, abs=1e-4)
    assert all(s < 0 for s in got)
    # batches of one and of three give the same scores: padding is invisible
    assert sequence_log_probs(gen.model, prompts, outs, pad_id=gen.pad_id, batch_size=3) == pytest.approx(got, abs=1e-4)
    assert sequence_log_probs(gen.model, prompts[:1], [[]], pad_id=gen.pad_id) == [0.0]
    with pytest.raises(ValueError, match="2 prompts but 1 outputs"):
        sequence_log_probs(gen.model, prompts[:2], outs[:1], pad_id=gen.pad_id)


def test_best_candidates():
    assert best_candidates([1.0, 3.0, 2.0, -1.0, -1.0, -5.0], 3) == [1, 0]  # ties: the first
    assert best_candidates([0.5, 0.1], 1) == [0, 0]
    with pytest.raises(ValueError, match="groups of 2"):
        best_candidates([1.0, 2.0, 3.0], 2)


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_the_best_scored_candidate_is_kept(vocab_gen, weight):
    """Candidate j is the plain sample of seed + j * stride; the kept one has the highest score,
    computed here from unpadded passes on the prompt and on the unconditional prompt."""
    gen, n = vocab_gen, 3
    reqs = [GenerationRequest("t2m", "a person walks forward.", seed=11, name="a"),
            GenerationRequest("t2m", "someone waves twice.", seed=40, name="b"),
            GenerationRequest("t2m_keys", "a man jumps.", key_tokens=[4, 7], length_frames=24, seed=2, name="c")]
    sampling = SamplingConfig(temperature=1.0, top_k=0, candidates=n, rerank_uncond_weight=weight)
    got = gen.generate(reqs, sampling)
    plain = SamplingConfig(temperature=1.0, top_k=0)
    uncond = gen.unconditional_prompt_ids("t2m")
    for req, r in zip(reqs, got):
        assert r.seed == req.seed and r.ok
        prompt = gen.plan([req])[0].prompt_ids
        cands = gen.generate([dataclasses.replace(req, seed=req.seed + j * CANDIDATE_SEED_STRIDE, name=f"{req.name}{j}")
                              for j in range(n)], plain)
        scores = []
        for c in cands:
            ids = new_ids(gen, c)
            s = reference_log_prob(gen.model, prompt, ids)
            if weight:
                s -= weight * reference_log_prob(gen.model, uncond, ids)
            scores.append(s)
        best = max(range(n), key=lambda j: scores[j])
        assert r.candidate == best and r.codes == cands[best].codes
        assert r.rerank_score == pytest.approx(scores[best], abs=1e-3)
    assert len({tuple(c.codes) for c in cands}) > 1  # the candidates differ (else nothing was chosen)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_guided_candidates_are_scored_by_the_unguided_model(vocab_gen, weight):
    """With guidance on, both terms come from the decoding itself (the conditional logits and
    guidance's unconditional branch): still the model's own log-probabilities before guidance,
    as unpadded passes give them, and the kept candidate the best of the plain guided samples."""
    gen, n = vocab_gen, 3
    reqs = [GenerationRequest("t2m", "a person walks forward.", seed=5, name="a"),
            GenerationRequest("t2m", "someone jumps up and down twice.", seed=8, name="b")]
    sampling = SamplingConfig(temperature=1.0, top_k=0, guidance_scale=2.0, candidates=n, rerank_uncond_weight=weight)
    got = gen.generate(reqs, sampling)
    plain = dataclasses.replace(sampling, candidates=1)
    uncond = gen.unconditional_prompt_ids("t2m")
    for req, r in zip(reqs, got):
        prompt = gen.plan([req])[0].prompt_ids
        cands = gen.generate([dataclasses.replace(req, seed=req.seed + j * CANDIDATE_SEED_STRIDE, name=f"{req.name}{j}")
                              for j in range(n)], plain)
        scores = [reference_log_prob(gen.model, prompt, new_ids(gen, c))
                  - weight * reference_log_prob(gen.model, uncond, new_ids(gen, c)) for c in cands]
        best = max(range(n), key=lambda j: scores[j])
        assert r.candidate == best and r.codes == cands[best].codes
        assert r.rerank_score == pytest.approx(scores[best], abs=1e-3)


def test_log_prob_recorder_sums_each_rows_own_tokens():
    """Three steps of a batch of two: the token chosen at a step is read at the next one (or from
    the output at the end); a row that ended early sums only its own tokens."""
    torch.manual_seed(0)
    steps = [torch.randn(2, 5) for _ in range(3)]  # (B, V) scores per step
    chosen = torch.tensor([[1, 4, 0], [3, 2, 2]])  # (B, steps)
    rec = LogProbRecorder()
    prompt = torch.zeros((2, 4), dtype=torch.long)
    for t, sc in enumerate(steps):
        ids = torch.cat([prompt, chosen[:, :t]], 1)
        assert rec(ids, sc) is sc  # scores pass through unchanged
    with pytest.raises(RuntimeError, match="before finish"):
        rec.sums([3, 2])
    with pytest.raises(ValueError, match="2 generated columns but 3"):
        rec.finish(chosen[:, :2])
    rec.finish(chosen)
    logp = [torch.log_softmax(sc.double(), -1) for sc in steps]
    want = [sum(float(logp[t][0, chosen[0, t]]) for t in range(3)),
            sum(float(logp[t][1, chosen[1, t]]) for t in range(2))]
    assert rec.sums([3, 2]) == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="do not fit"):
        rec.sums([4, 1])


def test_candidates_one_is_plain_sampling(vocab_gen):
    reqs = [GenerationRequest("t2m", "a person runs.", seed=s) for s in range(3)]
    one = vocab_gen.generate(reqs, SamplingConfig(temperature=1.0, top_k=0, candidates=1))
    plain = vocab_gen.generate(reqs, SamplingConfig(temperature=1.0, top_k=0))
    assert [r.codes for r in one] == [r.codes for r in plain]
    assert all(r.candidate == 0 and r.rerank_score is None for r in one)


def test_composed_clauses_are_reranked(vocab_gen):
    """Each clause is the best of its candidates: the same as reranked t2m_next requests with the
    clause's seed (unconditional term from the clause prompt when the run had clause copies)."""
    g = vocab_gen
    gen = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                          max_motion_tokens=12, trained_tasks=("t2m", "t2m_next"), guided_clauses=True)
    sampling = SamplingConfig(temperature=1.0, top_k=0, candidates=3, rerank_uncond_weight=0.5)
    caption = "a person walks forward, then turns left and then jumps."
    res = generate_composed(gen, [GenerationRequest("t2m", caption, seed=9)], sampling, context_codes=0)[0]
    assert res.codes == clauses_one_by_one(gen, caption, 9, sampling) and res.ok
    # a run without clause copies: clauses reranked by their likelihood alone (no refusal)
    plain_gen = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                                max_motion_tokens=12, trained_tasks=("t2m", "t2m_next"))
    assert generate_composed(plain_gen, [GenerationRequest("t2m", caption, seed=9)], sampling,
                             context_codes=0)[0].ok


def test_validation(vocab_gen):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="candidates"):
            SamplingConfig(candidates=bad).validate()
    with pytest.raises(ValueError, match="candidates=2 needs sampling"):
        SamplingConfig(temperature=0, candidates=2).validate()
    for bad in (-0.1, 1.5, float("nan"), True, None):
        with pytest.raises(ValueError, match="rerank_uncond_weight"):
            SamplingConfig(rerank_uncond_weight=bad).validate()
    reranked = SamplingConfig(temperature=1.0, candidates=2)
    m2t = GenerationRequest("m2t", motion_codes=[1, 2, 3], name="desc")
    with pytest.raises(ValueError, match=r"request 0 \(desc\): candidates=2 with rerank_uncond_weight=0.25.*'m2t'"):
        vocab_gen.generate([m2t], reranked)
    # the likelihood alone needs no unconditional prompt: any task
    assert vocab_gen.generate([m2t], SamplingConfig(temperature=1.0, candidates=2, rerank_uncond_weight=0))[0].text
    with pytest.raises(ValueError, match="candidates=2 with .*unconditional copies"):
        vocab_gen.generate([GenerationRequest("t2m_next", "jumps")], reranked)
    g = vocab_gen
    clause_gen = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                                 trained_tasks=("t2m", "t2m_next"), guided_clauses=True)
    assert clause_gen.generate([GenerationRequest("t2m_next", "jumps")], reranked)[0].ok
    with pytest.raises(ValueError, match="candidates=2 with .*context codes.*pass rerank_uncond_weight 0"):
        clause_gen.generate([GenerationRequest("t2m_next", "jumps", motion_codes=[1, 2])], reranked)


def test_cli_flags(vocab_run, tmp_path, capsys):
    import json

    import generate_motion

    assert generate_motion.main(["--lora_path", str(vocab_run), "--candidates", "2", "--temperature", "0",
                                 "--out_dir", str(tmp_path / "bad")]) == 2
    assert "needs sampling" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    out = tmp_path / "out"
    assert generate_motion.main(["--lora_path", str(vocab_run), "--input", "a person walks.", "--temperature", "1",
                                 "--candidates", "3", "--rerank_uncond_weight", "0.25", "--out_dir", str(out)]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["sampling"]["candidates"] == 3 and doc["meta"]["sampling"]["rerank_uncond_weight"] == 0.25
    (sample,) = doc["samples"]
    assert sample["candidate"] in (0, 1, 2) and sample["rerank_score"] < 0


def test_defaults_agree():
    """The library, eval.py and generate_motion.py share the reranking defaults."""
    import importlib.util
    from pathlib import Path

    from motiongpt.eval.run import EvalConfig

    repo = Path(__file__).resolve().parents[2]
    for cli in ("eval.py", "generate_motion.py"):
        spec = importlib.util.spec_from_file_location(f"cli_{cli[:-3]}", repo / cli)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        parser = module.build_parser()
        assert parser.get_default("candidates") == SamplingConfig.candidates == EvalConfig.candidates == 1
        assert parser.get_default("rerank_uncond_weight") == SamplingConfig.rerank_uncond_weight \
            == EvalConfig.rerank_uncond_weight
