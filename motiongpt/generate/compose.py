"""Composed text-to-motion: write a long description clause by clause (task ``t2m_next``).

A description such as "a person walks forward, then jumps three times, after that waves" is split
into its clauses in time order at the sequencing connectors people write ("then", "after that",
"afterwards", "next", "followed by", "X before Y" / "after Y, X", sentence breaks:
:func:`motiongpt.llm.tasks.split_clauses`). Each clause is written by a
``t2m_next`` request holding the clause's text and the last ``next_context_codes`` codes of the
motion so far (none by default: every clause from its text alone), which writes only that clause's
motion; the clauses' motions are joined in order, the VQ-VAE decoder smoothing the seams over its
receptive field (seams are not modelled otherwise). This is TEACH's idea (Athanasiou et al.,
"TEACH: Temporal Action Composition for 3D Humans", 2022) on a token LLM: a sequence of actions
never seen together is made of actions the model has seen, each in many sequences.

* Needs a model trained with ``t2m_next`` records (``generate_dataset.py tasks=[...,t2m_next]``,
  which need temporal segment annotations); :func:`generate_composed` refuses other models.
* A description with one clause (no connector) is an ordinary ``t2m`` request, with the sampling
  given (classifier-free guidance included). The ``t2m_next`` clauses are guided too when the model
  learned clauses without their text (``MotionGenerator.guided_clauses``: instruction options
  ``uncond_prob`` > 0 and ``uncond_tasks`` with ``t2m_next``) and no context is given; otherwise
  they run unguided.
* Reranking (``SamplingConfig.candidates``, :mod:`motiongpt.generate.rerank`) picks every clause
  among its own candidates; the score's unconditional term under the same condition as guidance
  (otherwise the clause's likelihood alone). The joined result's ``candidate`` stays 0: each
  clause's choice is its own.
* The whole motion stays within ``max_motion_tokens`` codes (the sampling's, else the generator's):
  each clause may use what the clauses before it left, less ``reserve_codes`` codes kept for each
  clause after it (less, down to one code each, when what is left cannot give every remaining
  clause that many). Why a reserve: without one an early clause could take nearly all of the
  budget (locomotion clauses of free length run long), the last clause was cut short (a squat
  without its second repetition) and such motions failed more often. 14 codes (2.8 s, about one
  action of the corpus) scored best among the reserves tried on the embedded default (the sweep:
  ``docs/experiments/2026-12-05-benchmarks-history.md``, "Counting").
* Every clause is decoded under the usual constraints; each result holds the joined codes, the
  summed token count and every clause's problems (prefixed with its clause number).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from motiongpt.generate.request import UNIT_FRAMES, GenerationRequest, GenerationResult, SamplingConfig
from motiongpt.llm.tasks import split_clauses

if TYPE_CHECKING:  # pragma: no cover
    from motiongpt.generate.generator import MotionGenerator

__all__ = ["generate_composed", "supports_composition", "clause_room", "CLAUSE_SEED_STRIDE", "RESERVE_CODES"]

CLAUSE_SEED_STRIDE = 1_000_003
"""Clause ``k`` of a request with seed ``s`` samples with seed ``s + k * CLAUSE_SEED_STRIDE``."""

RESERVE_CODES = 14
"""Default codes of the budget kept for each clause after the one being written (see the module docstring)."""


def clause_room(left: int, later: int, reserve_codes: int = RESERVE_CODES) -> int:
    """Most codes the next clause may use when ``left`` codes of the budget remain and ``later``
    clauses come after it: ``left`` less ``r`` per later clause, ``r`` = ``reserve_codes`` or the
    fair share ``left // (later + 1)`` when smaller, and at least 1. Below 1: no room."""
    if later <= 0:
        return left
    r = max(1, min(reserve_codes, left // (later + 1)))
    return left - r * later


def supports_composition(generator: "MotionGenerator") -> bool:
    """Whether the generator's run was trained with ``t2m_next`` records (None tasks: unknown, False)."""
    return bool(generator.trained_tasks) and "t2m_next" in generator.trained_tasks


def generate_composed(
    generator: "MotionGenerator",
    requests: Sequence[GenerationRequest],
    sampling: SamplingConfig | None = None,
    *,
    batch_size: int = 32,
    constrained: bool = True,
    fix_foot: bool = False,
    context_codes: int | None = None,
    reserve_codes: int = RESERVE_CODES,
    progress: bool = False,
) -> list[GenerationResult]:
    """One composed ``t2m`` result per request, in order (see the module docstring).

    Args:
        requests: ``t2m`` requests without ``length_frames`` (the model chooses each clause's
            length) and without ``instruction`` (every clause uses the canonical one of its task).
        context_codes: codes of the motion so far given with each later clause; 0: none (every
            clause written as if it came first, from its text alone); None: the value the run was
            trained with (``generator.next_context_codes``).
        reserve_codes: codes of the budget kept for each later clause (see :func:`clause_room`).

    Raises:
        ValueError: naming the request, for a non-``t2m`` request, a length or instruction, or a
            generator whose run has no ``t2m_next`` records.
    """
    sampling = (sampling or SamplingConfig()).validate()
    requests = list(requests)
    if not supports_composition(generator):
        raise ValueError(
            "composed decoding needs a model trained with t2m_next records (its instruction tasks are "
            f"{list(generator.trained_tasks) if generator.trained_tasks else 'unknown'}); build the data with "
            "tasks=[..., t2m_next] from a dataset with segment annotations, or generate without --compose"
        )
    k_ctx = generator.next_context_codes if context_codes is None else context_codes
    if isinstance(k_ctx, bool) or not isinstance(k_ctx, int) or k_ctx < 0:
        raise ValueError(f"context_codes must be an integer >= 0, got {k_ctx!r}")
    if isinstance(reserve_codes, bool) or not isinstance(reserve_codes, int) or reserve_codes < 1:
        raise ValueError(f"reserve_codes must be an integer >= 1, got {reserve_codes!r}")
    for i, r in enumerate(requests):
        what = f"request {i}" + (f" ({r.name})" if r.name else "")
        if not isinstance(r, GenerationRequest):
            raise ValueError(f"{what}: expected a GenerationRequest, got {type(r).__name__}")
        if r.task != "t2m":
            raise ValueError(f"{what}: composed decoding takes t2m requests, got task {r.task!r}")
        if r.length_frames is not None:
            raise ValueError(f"{what}: composed decoding chooses the length clause by clause; "
                             "drop length_frames or generate without composition")
        if r.instruction is not None:
            raise ValueError(f"{what}: composed decoding uses the canonical t2m_next instruction; drop instruction")
    if not requests:
        return []

    clauses = [split_clauses(r.caption) for r in requests]
    seeds = [r.seed if r.seed is not None else sampling.seed + i for i, r in enumerate(requests)]
    results: list[GenerationResult | None] = [None] * len(requests)

    # one clause (or none): an ordinary t2m request, with the caller's sampling (guidance too)
    single = [i for i, c in enumerate(clauses) if len(c) <= 1]
    if single:
        plain = generator.generate([dataclasses.replace(requests[i], seed=seeds[i]) for i in single], sampling,
                                   batch_size=batch_size, constrained=constrained, fix_foot=fix_foot, progress=progress)
        for i, res in zip(single, plain):
            results[i] = res

    multi = [i for i, c in enumerate(clauses) if len(c) > 1]
    if multi:
        # clauses have an unconditional prompt (for guidance and the reranking score's unconditional
        # term) when the run gave its clauses unconditional copies and no context is given
        has_uncond = generator.guided_clauses and k_ctx == 0
        clause_sampling = sampling if has_uncond else dataclasses.replace(sampling, guidance_scale=1.0,
                                                                          rerank_uncond_weight=0.0)
        cap = sampling.max_motion_tokens or generator.max_motion_tokens
        codes: dict[int, list[int]] = {i: [] for i in multi}
        parts: dict[int, list[GenerationResult]] = {i: [] for i in multi}
        for k in range(max(len(clauses[i]) for i in multi)):
            # a row goes on while its clauses last and it has a motion to continue from
            # (and room for this clause, with codes kept for the ones after it)
            rooms = {i: clause_room(cap - len(codes[i]), len(clauses[i]) - k - 1, reserve_codes)
                     for i in multi if len(clauses[i]) > k and (k == 0 or codes[i])}
            rows = [i for i, room in rooms.items() if room >= 1]
            if not rows:
                break
            reqs = []
            for i in rows:
                context = codes[i][-k_ctx:] if k and k_ctx else []
                room = rooms[i]
                reqs.append(GenerationRequest("t2m_next", clauses[i][k], motion_codes=context,
                                              max_length_frames=UNIT_FRAMES * (len(context) + room),
                                              seed=seeds[i] + k * CLAUSE_SEED_STRIDE,
                                              name=f"{requests[i].name or f'{i:03d}_t2m'}_c{k}"))
            for i, res in zip(rows, generator.generate(reqs, clause_sampling, batch_size=batch_size,
                                                       constrained=constrained, progress=progress)):
                parts[i].append(res)
                codes[i] += list(res.generated_codes or [])
        joined = [_joined(requests[i], seeds[i], clauses[i], parts[i], codes[i], constrained, i) for i in multi]
        generator.attach_motion(joined, fix_foot=fix_foot)  # joints / features of the joined codes
        for i, res in zip(multi, joined):
            results[i] = res
    return [r for r in results if r is not None]


def _joined(request: GenerationRequest, seed: int, clauses: list[str], parts: list[GenerationResult],
            codes: list[int], constrained: bool, index: int) -> GenerationResult:
    """The composed result of one request from its clauses' results (motion not decoded yet)."""
    problems = [f"clause {k} ({clauses[k]!r}): {p}" for k, part in enumerate(parts) for p in part.problems]
    if len(parts) < len(clauses):
        problems.append(f"clauses {len(parts)}..{len(clauses) - 1} not generated (an earlier clause made no "
                        "motion, or left no room within max_motion_tokens)")
    request = dataclasses.replace(request, seed=seed)
    return GenerationResult(
        request=request,
        name=request.name or f"{index:03d}_t2m",
        prompt="\n\n".join(p.prompt for p in parts),
        raw_text="\n".join(p.raw_text for p in parts),
        codes=list(codes) if codes else None,
        text=None,
        joints=None,
        features=None,
        length_frames=UNIT_FRAMES * len(codes) if codes else None,
        seed=seed,
        problems=problems,
        generated_codes=list(codes) if codes else None,
        task="t2m",
        constrained=constrained,
        num_new_tokens=sum(p.num_new_tokens for p in parts),
    )
