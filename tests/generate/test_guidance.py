"""Classifier-free guidance of text-to-motion decoding (motiongpt.generate.guidance and its wiring in
MotionGenerator / generate_motion.py), on the barely trained nano checkpoints of conftest.py.

The expected guided scores are computed independently: full forward passes of the model (no KV
cache, no padding) on [prompt + generated tokens] and [unconditional prompt + generated tokens]."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gen_testlib import NB_CODE
from motiongpt.generate import GenerationRequest, SamplingConfig
from motiongpt.generate import guidance as guidance_mod
from motiongpt.generate.guidance import GuidanceLogitsProcessor, UnconditionalPrefix, guided_log_probs
from test_generator import all_task_requests, check_result
from test_generate_motion_cli import run_cli

GREEDY = SamplingConfig(temperature=0)
TEXT_TO_MOTION = ("t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos")


def t2m_requests() -> list[GenerationRequest]:
    """Every text-to-motion request of test_generator (all five tasks, with and without lengths)."""
    return [r for r in all_task_requests() if r.task in TEXT_TO_MOTION]


def full_log_probs(model, ids: list[int]) -> torch.Tensor:
    """``(V,)`` log-softmax of the next-token logits after ``ids``: one forward pass, no cache, no padding."""
    with torch.no_grad():
        x = torch.tensor([ids], dtype=torch.long)
        logits = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits[0, -1]
    return torch.log_softmax(logits.double(), -1)  # float64: the reference, not the thing under test


def expected_guided(gen, prompt_ids: list[int], generated: list[int], scale: float) -> torch.Tensor:
    c = full_log_probs(gen.model, list(prompt_ids) + generated)
    u = full_log_probs(gen.model, gen.unconditional_prompt_ids() + generated)
    return u + scale * (c - u)


def test_guided_log_probs_formula():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(3, 11, generator=g) * 4, torch.randn(3, 11, generator=g) * 4
    for s in (0.0, 1.0, 2.0, 3.5):
        out = guided_log_probs(cond, uncond, s)
        c, u = cond.double().log_softmax(-1), uncond.double().log_softmax(-1)
        torch.testing.assert_close(out.double(), (1 - s) * u + s * c, atol=1e-5, rtol=0)
    torch.testing.assert_close(guided_log_probs(cond, uncond, 1.0), cond.log_softmax(-1))  # s = 1: c
    torch.testing.assert_close(guided_log_probs(cond, uncond, 0.0), uncond.log_softmax(-1))  # s = 0: u
    cond[0, 4] = float("-inf")  # a token one branch rules out stays out: never NaN / +inf
    uncond[1, 7] = float("-inf")
    out = guided_log_probs(cond, uncond, 2.0)
    assert out[0, 4] == float("-inf") and out[1, 7] == float("-inf")
    assert torch.isfinite(out).sum() == out.numel() - 2


def test_processor_scores_equal_full_forward_passes(vocab_gen, digits_gen, monkeypatch):
    """Inside real batched generation (left padding, shared prefix cache, constraints after it), the
    scores the processor returns are u + s (c - u) of full no-cache forward passes."""
    seen: list[tuple[torch.Tensor, torch.Tensor, int]] = []
    original = GuidanceLogitsProcessor.__call__

    def spy(self, input_ids, scores):
        out = original(self, input_ids, scores)
        seen.append((input_ids.clone(), out.clone(), self.prompt_width))
        return out

    monkeypatch.setattr(GuidanceLogitsProcessor, "__call__", spy)
    reqs = [GenerationRequest("t2m", "a person walks forward slowly then turns left.", length_frames=16),
            GenerationRequest("t2m_init", "a person jumps.", key_tokens=[3], length_frames=12),
            GenerationRequest("t2m", "", length_frames=12)]  # the unconditional prompt itself: g = c = u
    for gen, sampling in ((vocab_gen, SamplingConfig(temperature=0, guidance_scale=2.0)),
                          (digits_gen, SamplingConfig(temperature=1.0, top_k=0, seed=3, guidance_scale=3.0))):
        seen.clear()
        plans = gen.plan(reqs, sampling)
        results = gen.generate(reqs, sampling, batch_size=len(reqs))
        assert all(r.ok for r in results)
        assert len(seen) >= 4
        # one batch, rows in the generator's order: by prompt length, then request index
        rows = sorted(plans, key=lambda p: (len(p.prompt_ids), p.index))
        for input_ids, out, width in seen[:6]:
            t = input_ids.shape[1] - width
            for row, plan in enumerate(rows):
                ids = input_ids[row].tolist()
                assert ids[width - 4: width] == plan.prompt_ids[-4:]  # the row is that request's
                want = expected_guided(gen, plan.prompt_ids, ids[width:], sampling.guidance_scale)
                torch.testing.assert_close(out[row].double(), want, atol=1e-4, rtol=0, msg=f"step {t} row {row}")


def test_processor_handles_repeats_jumps_and_restarts(vocab_gen):
    """Called directly: a repeated step, two new tokens at once and a changed history all give the
    scores of full forward passes."""
    gen = vocab_gen
    prompts = [gen.plan([GenerationRequest("t2m", c)])[0].prompt_ids for c in ("a person runs.", "someone waves.")]
    width = max(len(p) for p in prompts)
    pad = torch.tensor([[gen.pad_id] * (width - len(p)) + p for p in prompts])  # (2, width), left padded
    codes = gen.tables.code_ids.tolist()
    hist = torch.tensor([[gen.tables.start_id, codes[5], codes[9], codes[1]],
                         [gen.tables.start_id, codes[2], codes[2], codes[30]]])  # (2, 4)
    proc = GuidanceLogitsProcessor(gen.model, gen._unconditional_prefix(), 2, width, 2.5)

    def check(gen_ids: torch.Tensor) -> None:
        input_ids = torch.cat([pad, gen_ids], 1)
        cond = torch.stack([full_log_probs(gen.model, prompts[r] + gen_ids[r].tolist()) for r in range(2)])
        out = proc(input_ids, cond.float())
        for r in range(2):
            want = expected_guided(gen, prompts[r], gen_ids[r].tolist(), 2.5)
            torch.testing.assert_close(out[r].double(), want, atol=1e-4, rtol=0)

    for steps in (0, 1, 1, 3, 4):  # first step, a step, the same step again, two tokens at once, one more
        check(hist[:, :steps])
    other = hist.clone()
    other[1, 1] = codes[7]
    check(other[:, :3])  # a history that is not the previous one extended: restarts the branch
    check(hist[:, :2])  # a shorter one (a new generate call)
    with pytest.raises(ValueError, match="rows"):
        proc(torch.cat([pad, hist], 1)[:1], torch.zeros(1, gen.tables.vocab_size))


def test_scale_one_changes_nothing_and_two_changes_outputs(vocab_gen, monkeypatch):
    reqs = t2m_requests() + [GenerationRequest("t2m", c) for c in ("a person kicks with his leg.", "someone sits.")]
    plain = vocab_gen.generate(reqs, GREEDY)
    sampled = SamplingConfig(temperature=1.0, top_k=0, seed=4)
    plain_sampled = vocab_gen.generate(reqs, sampled)
    # scale 2 changes the distribution: with the same seeds some sample differs (a barely trained
    # model's greedy choices may all survive guidance, so sampled outputs are compared too)
    guided = vocab_gen.generate(reqs, SamplingConfig(temperature=0, guidance_scale=2.0))
    guided_sampled = vocab_gen.generate(reqs, SamplingConfig(temperature=1.0, top_k=0, seed=4, guidance_scale=2.0))
    assert sum(a.raw_text != b.raw_text for a, b in zip(plain + plain_sampled, guided + guided_sampled)) >= 1

    def refuse(*args, **kwargs):
        raise AssertionError("guidance ran at scale 1")

    monkeypatch.setattr(UnconditionalPrefix, "prefill", refuse)
    monkeypatch.setattr(guidance_mod.GuidanceLogitsProcessor, "__call__", refuse)
    vocab_gen._uncond = {}
    one = vocab_gen.generate(reqs, SamplingConfig(temperature=0, guidance_scale=1.0))
    assert [r.raw_text for r in one] == [r.raw_text for r in plain]
    one_sampled = vocab_gen.generate(reqs, SamplingConfig(temperature=1.0, top_k=0, seed=4, guidance_scale=1))
    assert [r.raw_text for r in one_sampled] == [r.raw_text for r in plain_sampled]


@pytest.mark.parametrize("which", ["vocab", "digits"])
def test_guided_outputs_satisfy_every_constraint(which, vocab_gen, digits_gen):
    gen = vocab_gen if which == "vocab" else digits_gen
    reqs = t2m_requests()
    assert {r.task for r in reqs} == set(TEXT_TO_MOTION)
    for sampling in (SamplingConfig(temperature=0, guidance_scale=2.0),
                     SamplingConfig(temperature=1.0, top_k=0, seed=6, guidance_scale=3.0),
                     SamplingConfig(temperature=0.8, top_k=5, top_p=0.9, seed=1, guidance_scale=0.0)):
        for req, r in zip(reqs, gen.generate(reqs, sampling, batch_size=4)):
            check_result(gen, req, r)


def test_guided_greedy_is_batch_invariant(vocab_gen):
    reqs = t2m_requests() + [GenerationRequest("t2m", "a person walks in a circle.", length_frames=28)]
    sampling = SamplingConfig(temperature=0, guidance_scale=2.0)
    batched = vocab_gen.generate(reqs, sampling, batch_size=8)
    alone = vocab_gen.generate(reqs, sampling, batch_size=1)
    # exact, as test_generator's batched-vs-alone test: left padding and the shared caches keep a
    # row's computation its own (up to float rounding, too small to flip an argmax here)
    assert [r.raw_text for r in alone] == [r.raw_text for r in batched]
    sampled = SamplingConfig(temperature=1.0, top_k=0, seed=9, guidance_scale=2.0)
    assert [r.raw_text for r in vocab_gen.generate(reqs, sampled, batch_size=8)] == \
        [r.raw_text for r in vocab_gen.generate(reqs, sampled, batch_size=3)]


def test_unconstrained_greedy_follows_the_guided_argmax(vocab_gen):
    """constrained=False honours guidance: the tokens are the argmax of u + s (c - u) of full
    forward passes, step by step, until EOS or the budget."""
    gen, scale = vocab_gen, 2.0
    req = GenerationRequest("t2m", "a person waves the hand.", length_frames=20)
    plan = gen.plan([req])[0]
    r = gen.generate([req], SamplingConfig(temperature=0, guidance_scale=scale), constrained=False)[0]
    assert not r.constrained
    budget = gen.tables.motion_budget(5)
    want: list[int] = []
    while len(want) < budget and (not want or want[-1] != gen.tokenizer.eos_token_id):
        want.append(int(expected_guided(gen, plan.prompt_ids, want, scale).argmax()))
    assert r.num_new_tokens == len(want)
    assert r.raw_text == gen.tokenizer.decode(want, skip_special_tokens=True)


def test_validation_errors(vocab_gen):
    for bad in (float("nan"), float("inf"), -0.5, "2", True, None):
        with pytest.raises(ValueError, match="guidance_scale"):
            SamplingConfig(guidance_scale=bad).validate()
    with pytest.raises(ValueError, match=r"guidance_scale.*beam"):
        SamplingConfig(temperature=0, num_beams=2, guidance_scale=2.0).validate()
    SamplingConfig(temperature=0, num_beams=2, guidance_scale=1.0).validate()  # off: fine with beams
    assert SamplingConfig(guidance_scale=0).validate().guided and not SamplingConfig().guided
    guided = SamplingConfig(temperature=0, guidance_scale=2.0)
    ok = GenerationRequest("t2m", "a person walks.", length_frames=16)
    for bad in (GenerationRequest("m2t", motion_codes=[1, 2, 3], name="desc"),
                GenerationRequest("pred", motion_codes=[1, 2], length_frames=24, name="cont"),
                GenerationRequest("inbetween", motion_codes=[1], end_codes=[2], name="mid")):
        for call in (vocab_gen.plan, vocab_gen.generate):
            with pytest.raises(ValueError, match=rf"request 1 \({bad.name}\): guidance_scale=2.0.*{bad.task}"):
                call([ok, bad], guided)
        assert vocab_gen.plan([ok, bad], GREEDY)  # without guidance: fine
    with pytest.raises(ValueError, match="guidance_scale"):
        vocab_gen.generate([ok], SamplingConfig(guidance_scale=-1.0))
    with pytest.raises(ValueError, match="guidance_scale"):
        GuidanceLogitsProcessor(vocab_gen.model, vocab_gen._unconditional_prefix(), 1, 4, math.nan)


def test_unconditional_prompt_is_the_empty_input_t2m_prompt(vocab_gen):
    from motiongpt.llm.templates import encode_prompt

    ids = vocab_gen.unconditional_prompt_ids()
    instr = vocab_gen.instructions["t2m"][0]
    assert ids == encode_prompt(vocab_gen.tokenizer, vocab_gen.prompt_text(instr, ""), vocab_gen.template)
    # an empty-caption t2m request gets that very prompt (the record the model was trained on)
    assert vocab_gen.plan([GenerationRequest("t2m", "")])[0].prompt_ids == ids
    assert "Input" not in vocab_gen.tokenizer.decode(ids) and instr in vocab_gen.tokenizer.decode(ids)


def test_cli_flag_and_alias_reach_results_json(vocab_run, vocab_gen, tmp_path, capsys):
    import generate_motion

    assert generate_motion.build_parser().parse_args(["--cond_scale", "2.5"]).guidance_scale == 2.5
    assert generate_motion.build_parser().parse_args([]).guidance_scale == 1.0
    assert generate_motion.main(["--lora_path", str(vocab_run), "--guidance_scale", "nan",
                                 "--out_dir", str(tmp_path / "nan")]) == 2
    assert "guidance_scale" in capsys.readouterr().err and not (tmp_path / "nan").exists()
    import numpy as np

    np.save(tmp_path / "clip.npy", vocab_gen.decode([1, 5, 9, 13])[0])
    assert generate_motion.main(["--lora_path", str(vocab_run), "--task", "m2t", "--motion", str(tmp_path / "clip.npy"),
                                 "--cond_scale", "2", "--out_dir", str(tmp_path / "m2t")]) == 2
    assert "guidance_scale=2.0" in capsys.readouterr().err and not (tmp_path / "m2t").exists()

    out = tmp_path / "out"
    args = ["--lora_path", str(vocab_run), "--task", "t2m_init", "--input",
            "a person waves.<Motion Token><motion_id_3></Motion Token>", "--motion_length", "24",
            "--repeat_times", "2", "--temperature", "0", "--out_dir", str(out)]
    proc = run_cli(*args, "--cond_scale", "2")  # the alias, through a real process
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["sampling"]["guidance_scale"] == 2.0
    sampling = SamplingConfig(**doc["meta"]["sampling"])
    for s in doc["samples"]:
        assert s["ok"] and s["codes"][0] == 3
        # the recorded settings regenerate the sample, and they are the guided ones
        again = vocab_gen.generate([GenerationRequest.from_dict(s["request"])], sampling)[0]
        assert again.codes == s["codes"]
    guided = vocab_gen.generate([GenerationRequest.from_dict(doc["samples"][0]["request"])],
                                SamplingConfig(temperature=0, guidance_scale=2.0))[0]
    assert guided.codes == doc["samples"][0]["codes"]

    assert generate_motion.main(args[:-1] + [str(tmp_path / "out2"), "--guidance_scale", "3"]) == 0
    doc2 = json.loads((tmp_path / "out2" / "results.json").read_text())
    assert doc2["meta"]["sampling"]["guidance_scale"] == 3.0 and "--guidance_scale" in doc2["meta"]["argv"]
    assert all(0 <= c < NB_CODE for s in doc2["samples"] for c in s["codes"])


@pytest.mark.gpu
def test_guided_generation_on_cuda(vocab_run):
    from motiongpt.generate import MotionGenerator

    gen = MotionGenerator.from_checkpoint(vocab_run, device="cuda")
    reqs = t2m_requests()
    for sampling in (SamplingConfig(temperature=0, guidance_scale=2.0),
                     SamplingConfig(temperature=1.0, top_k=0, seed=2, guidance_scale=2.0)):
        for req, r in zip(reqs, gen.generate(reqs, sampling, batch_size=4)):
            check_result(gen, req, r)
