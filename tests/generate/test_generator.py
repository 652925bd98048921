"""MotionGenerator end to end on barely trained nano checkpoints: every task, adversarial requests,
batching, seeds, beams, the digits format, unconstrained decoding, motion encode/decode."""

from __future__ import annotations

import random

import numpy as np
import pytest

from gen_testlib import NB_CODE, assert_clean_caption, parse_motion
from motiongpt.generate import GenerationRequest, MotionGenerator, SamplingConfig
from motiongpt.generate.request import key_positions

GREEDY = SamplingConfig(temperature=0)


def all_task_requests(nb: int = NB_CODE) -> list[GenerationRequest]:
    return [
        GenerationRequest("t2m", "a person walks forward.", length_frames=40),
        GenerationRequest("t2m", "a person jumps."),
        GenerationRequest("t2m_init", "a person waves.", key_tokens=[3], length_frames=30),
        GenerationRequest("t2m_init", "a person waves.", key_tokens=[3]),
        GenerationRequest("t2m_last", "a person sits.", key_tokens=[nb - 1], length_frames=36),
        GenerationRequest("t2m_last", "a person sits.", key_tokens=[nb - 1]),
        GenerationRequest("t2m_keys", "a person kicks.", key_tokens=[4, 5, 6], length_frames=48),
        GenerationRequest("t2m_keys", "a person kicks.", key_tokens=[4, 5, 6]),
        GenerationRequest("t2m_keys_pos", "a person runs.", key_tokens=[(1, 7), (8, 0)], length_frames=40),
        GenerationRequest("m2t", motion_codes=[1, 2, 3, 4]),
        GenerationRequest("pred", motion_codes=[1, 2, 3], length_frames=32),
        GenerationRequest("pred", "a person turns.", motion_codes=[1, 2, 3]),
        GenerationRequest("inbetween", motion_codes=[1, 2], end_codes=[9], length_frames=28),
        GenerationRequest("inbetween", motion_codes=[1, 2], end_codes=[9]),
    ]


def check_result(gen: MotionGenerator, req: GenerationRequest, r) -> None:
    """Independent checks of one constrained result (not trusting ``r.problems``)."""
    assert r.problems == [], r.problems
    if req.task == "m2t":
        assert_clean_caption(r.raw_text)
        assert r.text == r.raw_text.strip() and r.codes == req.motion_codes
        return
    gen_codes = parse_motion(r.raw_text, gen.fmt, gen.wrapped)
    assert r.generated_codes == gen_codes
    prefix, suffix = list(req.motion_codes), list(req.end_codes)
    assert r.codes == prefix + gen_codes + suffix
    if req.length_frames is not None:
        assert r.length_frames == 4 * max(1, (req.length_frames + 2) // 4) == 4 * len(r.codes)
    else:
        assert len(r.codes) <= gen.max_motion_tokens
    if req.task == "t2m_init":
        assert gen_codes[0] == req.key_tokens[0]
    if req.task == "t2m_last":
        assert gen_codes[-1] == req.key_tokens[0]
    if req.task == "t2m_keys":
        assert [gen_codes[p] for p in key_positions(len(gen_codes), len(req.key_tokens))] == req.key_tokens
    if req.task == "t2m_keys_pos":
        assert all(gen_codes[p] == c for p, c in req.key_tokens)
    assert r.joints.shape == (r.length_frames, 22, 3) and r.features.shape == (r.length_frames, 263)
    assert np.isfinite(r.joints).all()


@pytest.mark.parametrize("which", ["vocab", "digits"])
def test_every_task_end_to_end(which, vocab_gen, digits_gen):
    gen = vocab_gen if which == "vocab" else digits_gen
    assert gen.wrapped is (which == "vocab")  # digits outputs are bare, as in MotionGPT-LoRA's train.json
    reqs = all_task_requests()
    for sampling in (SamplingConfig(temperature=1.0, top_k=0, seed=5), GREEDY):
        results = gen.generate(reqs, sampling, batch_size=5)
        assert [r.name for r in results] == [f"{i:03d}_{q.task}" for i, q in enumerate(reqs)]
        for req, r in zip(reqs, results):
            check_result(gen, req, r)
            assert r.seed == (5 if sampling.temperature else 0) + int(r.name[:3])


def _adversarial_requests(rng: random.Random, nb: int) -> list[GenerationRequest]:
    weird = ["", " ", "x" * 3000, "人が歩いて、手を振る 🚶‍♂️", "<motion_id_99999> walks",
             "<motion_id_5><motion_id_6>",
             "a </Motion Token> b", "<Motion Token>", "line\nbreak", "\t\u200b\x00", "### Response:\n",
             "walks" + " forward" * 60, "<|endoftext|></s><s><pad>", "315,91,406"]
    reqs = []
    for i in range(100):
        task = rng.choice(["t2m", "t2m_init", "t2m_last", "t2m_keys", "t2m_keys_pos", "m2t", "pred", "inbetween"])
        caption = rng.choice(weird + ["a person walks.", "someone spins twice."])
        length = rng.choice([None, None, None, 1, 4, 17, 40, 60, 0, -8, 10 ** 6])
        code = lambda: rng.randrange(nb) if rng.random() < 0.93 else rng.choice([nb, -1, 10 ** 9])  # noqa: E731
        req = GenerationRequest(task, caption, length, seed=i)
        if task in ("t2m_init", "t2m_last"):
            req.key_tokens = [code()]
        elif task == "t2m_keys":
            req.key_tokens = [code() for _ in range(rng.randint(0, 4))]
        elif task == "t2m_keys_pos":
            req.key_tokens = sorted({(rng.randrange(12), code()) for _ in range(rng.randint(1, 3))})
        elif task in ("m2t", "pred", "inbetween"):
            req.motion_codes = [code() for _ in range(rng.randint(0, 6))]
            req.end_codes = [code() for _ in range(rng.randint(1, 3))] if task == "inbetween" else []
            req.length_frames = None if task == "m2t" or rng.random() < 0.5 else req.length_frames
            req.caption = "" if task == "m2t" else req.caption
        reqs.append(req)
    return reqs


@pytest.mark.parametrize("which", ["vocab", "digits"])
def test_100_random_and_adversarial_requests(which, vocab_gen, digits_gen):
    gen = vocab_gen if which == "vocab" else digits_gen
    rng = random.Random(11 if which == "vocab" else 12)
    sampling = SamplingConfig(temperature=1.3, top_k=0, max_text_tokens=16)
    valid = []
    for req in _adversarial_requests(rng, NB_CODE):
        try:
            gen.plan([req], sampling)  # everything generate() would refuse, context length included
        except ValueError as e:
            assert str(e).startswith("request 0 ("), e  # says which request, then what
            continue
        valid.append(req)
    assert 20 <= len(valid) <= 90  # the mix really holds both kinds
    results = gen.generate(valid, sampling, batch_size=32)
    assert len(results) == len(valid)
    for req, r in zip(valid, results):
        check_result(gen, req, r)


def test_batched_equals_unbatched(vocab_gen):
    reqs = all_task_requests()
    for sampling in (GREEDY, SamplingConfig(temperature=1.0, top_k=0, seed=3)):
        batched = vocab_gen.generate(reqs, sampling, batch_size=len(reqs))
        for i, req in enumerate(reqs):
            # alone, with the seed and name the batch gave it: the same sample (left padding, seeds)
            alone = vocab_gen.generate([batched[i].request], sampling)[0]
            assert alone.raw_text == batched[i].raw_text, (i, req.task)
            assert alone.codes == batched[i].codes


def test_shared_prompt_prefix_changes_nothing(vocab_gen):
    reqs = all_task_requests()
    sampling = SamplingConfig(temperature=1.0, top_k=0, seed=8)
    shared = vocab_gen.generate(reqs, sampling)
    vocab_gen.share_prefix = False
    try:
        plain = vocab_gen.generate(reqs, sampling)
    finally:
        vocab_gen.share_prefix = True
    assert [r.raw_text for r in shared] == [r.raw_text for r in plain]


def test_beam_search_outputs_are_valid(vocab_gen, digits_gen):
    reqs = all_task_requests()
    for gen in (vocab_gen, digits_gen):
        results = gen.generate(reqs, SamplingConfig(temperature=0, num_beams=3), batch_size=7)
        for req, r in zip(reqs, results):
            check_result(gen, req, r)


def test_top_p_and_top_k_sampling(vocab_gen):
    reqs = all_task_requests()[:4]
    a = vocab_gen.generate(reqs, SamplingConfig(temperature=0.7, top_k=5, top_p=0.9, seed=1))
    b = vocab_gen.generate(reqs, SamplingConfig(temperature=0.7, top_k=5, top_p=0.9, seed=1))
    assert [r.raw_text for r in a] == [r.raw_text for r in b]  # seeded: reproducible
    for req, r in zip(reqs, a):
        check_result(vocab_gen, req, r)


def test_unconstrained_garbage_is_reported_not_raised(vocab_gen, digits_gen):
    reqs = all_task_requests()
    for gen in (vocab_gen, digits_gen):
        results = gen.generate(reqs, SamplingConfig(temperature=1.5, top_k=0, seed=0), constrained=False)
        assert len(results) == len(reqs)
        assert all(not r.constrained for r in results)
        bad = [r for r in results if r.problems]
        assert len(bad) >= len(reqs) // 2  # a 3-step model rarely writes what was asked unaided
        for r in bad:
            assert all(isinstance(p, str) and p for p in r.problems)
            assert (r.codes is None) == (r.joints is None)


def test_regenerate_one_sample_from_its_record(vocab_gen):
    reqs = [GenerationRequest("t2m", f"a person walks {i} steps.") for i in range(5)]
    results = vocab_gen.generate(reqs, SamplingConfig(seed=40))
    again = vocab_gen.generate([results[3].request], SamplingConfig(seed=999))  # its own seed wins
    assert again[0].seed == 43 and again[0].codes == results[3].codes


def test_t2m_keys_without_length_lets_the_model_choose_it(vocab_gen):
    req = GenerationRequest("t2m_keys", "a person kicks.", key_tokens=[4, 5, 6])
    r = vocab_gen.generate([req], GREEDY)[0]
    n = len(r.codes)
    assert [r.codes[p] for p in key_positions(n, 3)] == [4, 5, 6]
    # the length is the one the model picks for this prompt under the span constraints alone
    free = vocab_gen.generate([GenerationRequest("t2m_keys", "a person kicks.", key_tokens=[4, 5, 6])],
                              SamplingConfig(temperature=0, max_motion_tokens=n))[0]
    assert len(free.codes) <= n


def test_max_motion_tokens_caps_free_lengths(vocab_gen):
    reqs = [GenerationRequest("t2m", "a person runs.", seed=s) for s in range(6)]
    for r in vocab_gen.generate(reqs, SamplingConfig(temperature=1.5, top_k=0, max_motion_tokens=3)):
        assert 1 <= len(r.codes) <= 3


def test_context_and_name_errors(vocab_gen):
    with pytest.raises(ValueError, match=r"request 1 \(.*positions"):
        vocab_gen.generate([GenerationRequest("t2m", "ok"), GenerationRequest("t2m", "ok", length_frames=10 ** 5)])
    with pytest.raises(ValueError, match="unique"):
        vocab_gen.generate([GenerationRequest("t2m", name="a"), GenerationRequest("t2m", name="a")])
    with pytest.raises(ValueError, match="batch_size"):
        vocab_gen.generate([GenerationRequest("t2m")], batch_size=0)
    assert vocab_gen.generate([]) == []


def test_encode_and_decode_motion(vocab_gen, tmp_path):
    codes = [1, 5, 9, 13, 17, 21, 25, 29, 2, 6]
    joints, feats = vocab_gen.decode(codes)
    assert joints.shape == (40, 22, 3) and feats.shape == (40, 263) and joints.dtype == np.float32
    assert vocab_gen.encode_motion(feats) == vocab_gen.vq.encode(feats).tolist()
    np.save(tmp_path / "f.npy", feats)
    assert vocab_gen.encode_motion(tmp_path / "f.npy") == vocab_gen.encode_motion(feats)
    from motiongpt.motion.features import joints_to_features

    from_joints = vocab_gen.encode_motion(joints)
    assert from_joints == vocab_gen.vq.encode(joints_to_features(joints)).tolist() and len(from_joints) == 9
    np.save(tmp_path / "j.npy", joints)
    assert vocab_gen.encode_motion(str(tmp_path / "j.npy")) == from_joints
    for bad, match in ((np.zeros((10, 5)), "expected joints"), (np.zeros((2, 22, 3)), "too short"),
                       (tmp_path / "missing.npy", "not found"), (tmp_path / "x.txt", "expected a .npy")):
        if isinstance(bad, type(tmp_path)) and bad.suffix == ".txt":
            bad.write_text("1")
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            vocab_gen.encode_motion(bad)
    with pytest.raises(ValueError, match="out of range"):
        vocab_gen.decode([NB_CODE])


def test_bvh_motion_input(vocab_gen, tmp_path):
    from motiongpt.motion.bvh import write_bvh

    joints, _ = vocab_gen.decode([1, 5, 9, 13, 17, 21])
    write_bvh(joints, tmp_path / "m.bvh")
    codes = vocab_gen.encode_motion(tmp_path / "m.bvh")
    assert len(codes) == (len(joints) - 1) // 4 and all(0 <= c < NB_CODE for c in codes)


def test_fix_foot_changes_only_the_joints(vocab_gen):
    req = GenerationRequest("t2m", "a person walks.", length_frames=40)
    plain = vocab_gen.generate([req], GREEDY)[0]
    fixed = vocab_gen.generate([req], GREEDY, fix_foot=True)[0]
    from motiongpt.motion.foot import fix_foot_skating

    assert fixed.fix_foot and not plain.fix_foot and fixed.codes == plain.codes
    np.testing.assert_array_equal(fixed.features, plain.features)
    np.testing.assert_allclose(fixed.joints, fix_foot_skating(plain.joints), atol=1e-6)


def test_loading_options(vocab_run, digits_run, tmp_path):
    from motiongpt.llm.checkpoint import export_merged

    merged = export_merged(vocab_run, tmp_path / "merged")
    a = MotionGenerator.from_checkpoint(vocab_run)  # the adapter folded into the weights
    b = MotionGenerator.from_checkpoint(None, merged=merged)
    c = MotionGenerator.from_checkpoint(vocab_run, merge_lora=False)  # the PeftModel as loaded
    assert type(c.model).__name__.startswith("Peft") and not type(a.model).__name__.startswith("Peft")
    req = [GenerationRequest("t2m", "a person walks.", length_frames=24)]
    assert a.generate(req, GREEDY)[0].codes == b.generate(req, GREEDY)[0].codes == c.generate(req, GREEDY)[0].codes
    assert b.source == str(merged.resolve()) and b.vq_dir == a.vq_dir
    q = MotionGenerator.from_checkpoint(digits_run, quantize="4bit")  # bitsandbytes' CPU backend
    r = q.generate([GenerationRequest("t2m_init", "walks", key_tokens=[3], length_frames=16)], GREEDY)[0]
    assert r.problems == [] and r.codes[0] == 3 and len(r.codes) == 4
    with pytest.raises(ValueError, match="quantize"):
        MotionGenerator.from_checkpoint(vocab_run, quantize="3bit")
    with pytest.raises(ValueError, match="lora_path"):
        MotionGenerator.from_checkpoint(None)
    with pytest.raises(FileNotFoundError):
        MotionGenerator.from_checkpoint(tmp_path / "nope")
    with pytest.raises(ValueError, match="codes"):
        MotionGenerator.from_checkpoint(vocab_run, vq_dir=_other_vq(tmp_path))
    # a VQ-VAE path the user gave is reported as theirs, not as one the run recorded
    with pytest.raises(FileNotFoundError, match=r"missing_vq \(given as vq_dir\)"):
        MotionGenerator.from_checkpoint(vocab_run, vq_dir=tmp_path / "missing_vq")


def _other_vq(tmp_path):
    import torch

    from motiongpt.config import apply_overrides
    from motiongpt.vq import VQVAE, get_preset

    torch.manual_seed(0)
    cfg = apply_overrides(get_preset("tiny"), ["model.width=16", "model.code_dim=8", "model.nb_code=16",
                                               "model.depth=1"])
    return VQVAE(cfg).save_pretrained(tmp_path / "vq16")


@pytest.mark.gpu
def test_generation_on_cuda(vocab_run, digits_run):
    for run, quantize in ((vocab_run, None), (digits_run, "4bit")):
        gen = MotionGenerator.from_checkpoint(run, device="cuda", quantize=quantize)
        reqs = all_task_requests()
        for sampling in (SamplingConfig(temperature=1.0, top_k=0, seed=2), GREEDY,
                         SamplingConfig(temperature=0, num_beams=2)):
            for req, r in zip(reqs, gen.generate(reqs, sampling, batch_size=8)):
                check_result(gen, req, r)


def test_numpy_inputs_are_recorded_as_plain_values(vocab_gen):
    import json

    reqs = [GenerationRequest("pred", motion_codes=np.array([1, 2, 3]), length_frames=24),
            GenerationRequest("t2m_keys_pos", "walks", 24, key_tokens=np.array([[0, 4], [5, 6]]))]
    for r in vocab_gen.generate(reqs, GREEDY):
        assert r.problems == []
        json.dumps(r.request.to_dict())  # JSON-ready
    assert r.request.key_tokens == [(0, 4), (5, 6)] and r.codes[0] == 4 and r.codes[5] == 6
