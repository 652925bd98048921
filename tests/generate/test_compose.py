"""Composed text-to-motion (``motiongpt.generate.compose``): a caption written clause by clause with
``t2m_next``, on the barely trained nano checkpoints of conftest.py (the constraints keep every
clause well-formed) and on a one-step run trained through the real data path with ``t2m_next``
records (``generate_motion.py --compose``)."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest

from gen_testlib import NB_CODE, QUICK, clauses_one_by_one, make_vq
from motiongpt.generate import GenerationRequest, MotionGenerator, SamplingConfig
from motiongpt.generate.compose import (
    CLAUSE_SEED_STRIDE,
    RESERVE_CODES,
    clause_room,
    generate_composed,
    supports_composition,
)
from motiongpt.llm.tasks import format_next_input, split_clauses
from test_generate_motion_cli import run_cli

REPO = Path(__file__).resolve().parents[2]

SAMPLING = SamplingConfig(temperature=1.0, top_k=0, seed=5)
CAPTIONS = ["a person walks forward, then turns left and then jumps.", "someone waves then sits down.",
            "a person runs in a circle."]


@pytest.fixture(scope="module")
def composer(vocab_gen) -> MotionGenerator:
    """The nano vocab generator, declared as trained with t2m_next (2 context codes)."""
    g = vocab_gen
    return MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                           max_motion_tokens=12, trained_tasks=("t2m", "t2m_next"), next_context_codes=2)


def test_composed_is_clause_by_clause(composer):
    """Each clause continues the codes so far from their last 2, with its own seed, within what the
    12-code budget leaves (a fair share kept for each later clause: 12 // 3 = 4 codes for each of the
    two after the first, then 8 left // 2 for the last); the result joins the clauses' own codes and
    decodes them."""
    res = generate_composed(composer, [GenerationRequest("t2m", CAPTIONS[0], seed=11)], SAMPLING)[0]
    clauses = split_clauses(CAPTIONS[0])
    assert len(clauses) == 3
    codes: list[int] = []
    prompts = []
    for k, clause in enumerate(clauses):
        context = codes[-2:] if k else []
        left, later = 12 - len(codes), len(clauses) - k - 1
        room = left - later * max(1, min(14, left // (later + 1))) if later else left
        one = composer.generate([GenerationRequest("t2m_next", clause, motion_codes=context,
                                                   max_length_frames=4 * (len(context) + room),
                                                   seed=11 + k * CLAUSE_SEED_STRIDE)], SAMPLING)[0]
        assert 1 <= len(one.generated_codes) <= room
        assert one.ok, one.problems
        assert format_next_input(clause, codes[-2:] if k else [], composer.fmt) in one.prompt
        prompts.append(one.prompt)
        codes += one.generated_codes
    assert res.codes == codes and res.generated_codes == codes and len(codes) <= 12
    assert res.ok and res.task == "t2m" and res.seed == 11 and res.request.caption == CAPTIONS[0]
    assert res.prompt == "\n\n".join(prompts)
    assert res.length_frames == 4 * len(codes)
    assert res.joints.shape == (4 * len(codes), 22, 3) and res.features.shape == (4 * len(codes), 263)
    joints, feats = composer.decode(codes)
    np.testing.assert_allclose(res.joints, joints, atol=1e-5)
    np.testing.assert_allclose(res.features, feats, atol=1e-5)


def test_context_zero_writes_every_clause_from_its_text(composer):
    """context_codes=0: each clause is the t2m_next request with an empty context (what it gives alone)."""
    res = generate_composed(composer, [GenerationRequest("t2m", CAPTIONS[0], seed=3)], SAMPLING, context_codes=0)[0]
    codes: list[int] = []
    clauses = split_clauses(CAPTIONS[0])
    for k, clause in enumerate(clauses):
        left, later = 12 - len(codes), len(clauses) - k - 1
        room = left - later * max(1, min(14, left // (later + 1))) if later else left
        one = composer.generate([GenerationRequest("t2m_next", clause, max_length_frames=4 * room,
                                                   seed=3 + k * CLAUSE_SEED_STRIDE)], SAMPLING)[0]
        assert format_next_input(clause, [], composer.fmt) in one.prompt
        codes += one.generated_codes
    assert res.codes == codes and res.ok


def test_one_clause_is_plain_t2m_and_batches_do_not_matter(composer):
    """A caption without "then" is an ordinary t2m request (same codes as generate); every result
    is the same alone or in a batch, whatever the batch size."""
    reqs = [GenerationRequest("t2m", c) for c in CAPTIONS]
    batch = generate_composed(composer, reqs, SAMPLING, batch_size=2)
    plain = composer.generate([GenerationRequest("t2m", CAPTIONS[2], seed=SAMPLING.seed + 2)], SAMPLING)[0]
    assert batch[2].codes == plain.codes and batch[2].prompt == plain.prompt
    for i, r in enumerate(reqs):
        alone = generate_composed(composer, [GenerationRequest("t2m", r.caption, seed=SAMPLING.seed + i)], SAMPLING)
        assert alone[0].codes == batch[i].codes, i
    assert [r.request.caption for r in batch] == CAPTIONS
    assert len(batch[1].codes) >= 2  # two clauses, one code at least each


def test_max_length_frames_bounds_the_model_choice(composer):
    """A request's max_length_frames caps the whole motion (given codes included) below
    max_motion_tokens; every sample under it stops in time."""
    for cap in (1, 3, 5):
        res = composer.generate([GenerationRequest("t2m", "a person walks.", max_length_frames=4 * cap, seed=s)
                                 for s in range(6)], SAMPLING)
        assert all(1 <= len(r.codes) <= cap and r.ok for r in res), cap
        nxt = composer.generate([GenerationRequest("t2m_next", "jumps", motion_codes=[1, 2],
                                                   max_length_frames=4 * (2 + cap), seed=s) for s in range(6)],
                                SAMPLING)
        assert all(r.codes[:2] == [1, 2] and 1 <= len(r.generated_codes) <= cap for r in nxt), cap
    # a long caption shares the budget: ten clauses fit in 12 codes, never more than 12 in all
    ten = "a person walks, then " + ", then ".join(["jumps"] * 9) + "."
    for r in generate_composed(composer, [GenerationRequest("t2m", ten, seed=s) for s in range(3)], SAMPLING):
        assert 10 <= len(r.codes) <= 12 and r.ok, r.problems
    # fifteen clauses cannot fit (one code each at least): no motion, and the result says why
    many = "a person walks, then " + ", then ".join(["jumps"] * 14) + "."
    r = generate_composed(composer, [GenerationRequest("t2m", many)], SAMPLING)[0]
    assert r.codes is None and r.joints is None and any("no room" in p for p in r.problems)


def test_clause_room_keeps_codes_for_later_clauses():
    """The reserve for each later clause is reserve_codes, or the fair share of what is left when
    smaller, never below one code."""
    assert clause_room(49, 2) == 49 - 2 * 14  # 14 kept for each of the two later clauses
    assert clause_room(30, 2) == 30 - 2 * 10  # 30 // 3 = 10 < 14: a fair share
    assert clause_room(49, 2, reserve_codes=1) == 47  # reserve 1: one code each
    assert clause_room(12, 9) == 3 and clause_room(12, 14) == -2  # ten / fifteen clauses in 12 codes
    assert clause_room(7, 0) == 7  # the last clause takes what is left
    from motiongpt.eval.run import EvalConfig
    from motiongpt.pipeline import DemoConfig

    # the evaluation's, the demo's and the CLIs' defaults are the library's
    assert EvalConfig.compose_reserve == DemoConfig.compose_reserve == RESERVE_CODES == 14
    for cli in ("eval.py", "generate_motion.py"):
        spec = importlib.util.spec_from_file_location(f"cli_{cli[:-3]}", REPO / cli)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.build_parser().get_default("compose_reserve") == RESERVE_CODES, cli


@pytest.mark.parametrize("reserve", [1, 2, 14])
def test_reserve_codes_bounds_early_clauses(composer, reserve):
    """Clause k may use what is left less min(reserve, fair share) codes per later clause: the
    composed codes equal clause-by-clause generation under exactly those caps (reserve 1: all but
    one code per later clause, the old rule)."""
    caption = "a person walks forward, then jumps, then waves."
    for seed in range(3):
        res = generate_composed(composer, [GenerationRequest("t2m", caption, seed=seed)], SAMPLING,
                                context_codes=0, reserve_codes=reserve)[0]
        codes: list[int] = []
        for k, clause in enumerate(split_clauses(caption)):
            left, later = 12 - len(codes), 2 - k
            keep = max(1, min(reserve, left // (later + 1))) if later else 0
            one = composer.generate([GenerationRequest("t2m_next", clause, max_length_frames=4 * (left - keep * later),
                                                       seed=seed + k * CLAUSE_SEED_STRIDE)], SAMPLING)[0]
            assert len(one.generated_codes) <= left - keep * later
            codes += one.generated_codes
        assert res.codes == codes and res.ok, (reserve, seed)
    with pytest.raises(ValueError, match="reserve_codes"):
        generate_composed(composer, [GenerationRequest("t2m", caption)], SAMPLING, reserve_codes=0)
    if reserve == 14:  # the caps bind: a first clause cut to 4 codes differs from one allowed 10
        loose = generate_composed(composer, [GenerationRequest("t2m", caption, seed=s) for s in range(3)], SAMPLING,
                                  context_codes=0, reserve_codes=1)
        tight = generate_composed(composer, [GenerationRequest("t2m", caption, seed=s) for s in range(3)], SAMPLING,
                                  context_codes=0)
        assert [r.codes for r in loose] != [r.codes for r in tight]


def test_guidance_only_for_one_clause_captions(composer):
    """A model without unconditional t2m_next records (guided_clauses False): composed clauses run
    unguided, single-clause captions guided (what generate gives for them with guidance)."""
    guided = SamplingConfig(temperature=1.0, top_k=0, seed=5, guidance_scale=2.0)
    out = generate_composed(composer, [GenerationRequest("t2m", c) for c in CAPTIONS[:3]], guided)
    unguided = generate_composed(composer, [GenerationRequest("t2m", c) for c in CAPTIONS[:2]], SAMPLING)
    assert [o.codes for o in out[:2]] == [u.codes for u in unguided]
    ref = composer.generate([GenerationRequest("t2m", CAPTIONS[2], seed=7)], guided)[0]
    assert out[2].codes == ref.codes


def test_guided_clauses_use_the_clause_unconditional_prompt(composer, monkeypatch):
    """A model whose clauses had unconditional copies: without context, every clause is guided
    against the canonical t2m_next instruction with an empty input (its own prompt, not t2m's);
    t2m and t2m_next requests in one guided call are batched apart and give what they give alone."""
    import motiongpt.generate.guidance as guidance_mod

    g = composer
    guided_gen = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                                 max_motion_tokens=12, trained_tasks=("t2m", "t2m_next"), guided_clauses=True)
    guided = SamplingConfig(temperature=1.0, top_k=0, seed=5, guidance_scale=2.0)
    assert guided_gen.unconditional_prompt_ids("t2m_next") != guided_gen.unconditional_prompt_ids("t2m")
    caption = CAPTIONS[0]
    res = generate_composed(guided_gen, [GenerationRequest("t2m", caption, seed=9)], guided, context_codes=0)[0]
    assert res.codes == clauses_one_by_one(guided_gen, caption, 9, guided) and res.ok
    # the unguided composer writes other clauses for some seed
    plain = generate_composed(composer, [GenerationRequest("t2m", caption, seed=s) for s in range(4)], guided,
                              context_codes=0)
    again = generate_composed(guided_gen, [GenerationRequest("t2m", caption, seed=s) for s in range(4)], guided,
                              context_codes=0)
    assert [r.codes for r in plain] != [r.codes for r in again]
    # one call with both kinds: each batch is guided by its own unconditional prompt
    seen: list[list[int]] = []
    real_prefill = guidance_mod.UnconditionalPrefix.prefill.__func__
    monkeypatch.setattr(guidance_mod.UnconditionalPrefix, "prefill",
                        classmethod(lambda cls, model, ids, device: seen.append(list(ids))
                                    or real_prefill(cls, model, ids, device)))
    guided_gen._uncond = {}
    reqs = [GenerationRequest("t2m_next", "jumps twice", seed=1), GenerationRequest("t2m", "a person jumps.", seed=2)]
    both = guided_gen.generate(reqs, guided)
    assert sorted(map(tuple, seen)) == sorted([tuple(guided_gen.unconditional_prompt_ids("t2m_next")),
                                               tuple(guided_gen.unconditional_prompt_ids("t2m"))])
    for r, req in zip(both, reqs):
        assert r.codes == guided_gen.generate([req], guided)[0].codes
    # refused: guided clauses of a model without clause copies, or with context
    with pytest.raises(ValueError, match="unconditional copies"):
        composer.generate([GenerationRequest("t2m_next", "jumps")], guided)
    with pytest.raises(ValueError, match="context codes"):
        guided_gen.generate([GenerationRequest("t2m_next", "jumps", motion_codes=[1, 2])], guided)


def test_refusals(composer, vocab_gen):
    assert not supports_composition(vocab_gen)  # its run's records were written without meta.json
    with pytest.raises(ValueError, match="t2m_next"):
        generate_composed(vocab_gen, [GenerationRequest("t2m", CAPTIONS[0])])
    for bad, match in ((GenerationRequest("t2m", CAPTIONS[0], length_frames=40), "length"),
                       (GenerationRequest("t2m_keys", CAPTIONS[0], key_tokens=[1, 2, 3]), "t2m requests"),
                       (GenerationRequest("t2m", CAPTIONS[0], instruction="Do it."), "instruction")):
        with pytest.raises(ValueError, match=match):
            generate_composed(composer, [GenerationRequest("t2m", "fine."), bad])
    with pytest.raises(ValueError, match="context_codes"):
        generate_composed(composer, [GenerationRequest("t2m", CAPTIONS[0])], context_codes=-1)
    with pytest.raises(ValueError, match="caption"):
        composer.generate([GenerationRequest("t2m_next", "", motion_codes=[1])])
    with pytest.raises(ValueError, match="key_tokens"):
        composer.generate([GenerationRequest("t2m_next", "jumps", key_tokens=[1])])
    with pytest.raises(ValueError, match="not both"):
        composer.generate([GenerationRequest("t2m", "jumps", length_frames=8, max_length_frames=8)])
    assert generate_composed(composer, []) == []


# ---------------------------------------------------------------------------------------------- real path

def _next_run(root: Path, **options) -> tuple[Path, dict]:
    """A one-step nano LoRA run on instruction data with t2m_next records, built by the dataset
    builder from codes, captions and segment labels (two segments per clip); returns (run, report)."""
    from motiongpt.config import apply_overrides
    from motiongpt.llm.dataset_builder import InstructionDataConfig, generate_instruction_dataset
    from motiongpt.llm.finetune import finetune
    from motiongpt.llm.finetune_config import FinetuneConfig
    from motiongpt.llm.prepare import PrepareConfig, prepare_dataset

    data = root / "data"
    for sub in ("VQVAE", "texts", "labels"):
        (data / sub).mkdir(parents=True)
    rng = random.Random(0)
    ids = [f"{i:06d}" for i in range(12)]
    for cid in ids:
        n = rng.randint(6, 10)
        np.save(data / "VQVAE" / f"{cid}.npy", np.array([rng.randrange(NB_CODE) for _ in range(n)], np.int64))
        (data / "texts" / f"{cid}.txt").write_text("a person walks forward, then jumps.#a/DET#0.0#0.0\n",
                                                    encoding="utf-8")
        (data / "labels" / f"{cid}.json").write_text(json.dumps(
            {"segments": [{"start": 0, "end": 12}, {"start": 12, "end": 4 * n}]}), encoding="utf-8")
    (data / "train.txt").write_text("\n".join(ids[:10]) + "\n", encoding="utf-8")
    (data / "val.txt").write_text("\n".join(ids[10:]) + "\n", encoding="utf-8")
    report = generate_instruction_dataset(InstructionDataConfig(
        data_root=str(data), out_dir=str(root / "instructions"), tasks=["t2m", "t2m_next"], nb_code=NB_CODE,
        mirror=False, splits=["train", "val"], min_tokens=4, **options))
    prepare_dataset(PrepareConfig(data_dir=str(root / "instructions"), out_dir=str(root / "prepared"),
                                  base_model="nano", max_len=320, vocab_size=360, seed=0))
    run = root / "run"
    finetune(apply_overrides(FinetuneConfig(), QUICK + [
        f"prepared={root / 'prepared'}", f"out_dir={run}", f"vq_dir={make_vq(root / 'vq')}", "method=lora",
        "train.max_steps=1",
    ]))
    return run, report


@pytest.fixture(scope="module")
def next_run(tmp_path_factory) -> Path:
    run, report = _next_run(tmp_path_factory.mktemp("compose_run"), next_context_codes=3)
    assert report["counts"]["train"]["per_task"]["t2m_next"] == 20  # 10 clips x 2 clauses
    return run


def test_guided_clauses_follow_the_instruction_data(next_run, tmp_path):
    """A run whose t2m_next records got unconditional copies guides its clauses, with exactly the
    prompt those copies were trained on (builder and generator must agree token for token); a run
    without them does not."""
    from datasets import load_from_disk

    run, report = _next_run(tmp_path, next_context_codes=0, uncond_prob=1.0, uncond_tasks=["t2m", "t2m_next"])
    assert report["counts"]["train"]["uncond"] == 30  # a copy of every train record: 10 t2m + 20 clauses
    gen = MotionGenerator.from_checkpoint(run)
    assert gen.guided_clauses and not MotionGenerator.from_checkpoint(next_run).guided_clauses
    train = load_from_disk(str(tmp_path / "prepared" / "train"))
    prompts = [[t for t, lab in zip(row["input_ids"], row["labels"]) if lab == -100] for row in train]
    assert sum(p == gen.unconditional_prompt_ids("t2m_next") for p in prompts) == 20
    assert sum(p == gen.unconditional_prompt_ids("t2m") for p in prompts) == 10


def test_checkpoint_knows_its_tasks(next_run):
    gen = MotionGenerator.from_checkpoint(next_run)
    assert supports_composition(gen) and gen.trained_tasks == ("t2m", "t2m_next")
    assert gen.next_context_codes == 3  # from the run's instruction config


def test_cli_compose(next_run, vocab_run, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("--lora_path", str(next_run), "--input", "a person walks forward, then jumps.", "--compose",
                   "--out_dir", str(out), "--no_bvh", "--seed", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["compose"] is True and len(doc["samples"]) == 1
    joints = np.load(out / f"{doc['samples'][0]['name']}.npy")
    assert joints.ndim == 3 and joints.shape[1:] == (22, 3) and joints.shape[0] >= 8  # two clauses, >= 1 code each
    # a run without t2m_next records: a clear error, nothing written
    bad = tmp_path / "bad"
    proc = run_cli("--lora_path", str(vocab_run), "--input", "walks, then jumps.", "--compose", "--out_dir", str(bad))
    assert proc.returncode == 2 and "t2m_next" in proc.stderr and not bad.exists()
    proc = run_cli("--lora_path", str(next_run), "--input", "walks", "--task", "m2t", "--compose",
                   "--out_dir", str(bad))
    assert proc.returncode == 2 and not bad.exists()
