"""Reranking: several samples per request, the one the model itself scores highest kept.

With ``SamplingConfig.candidates = N`` the generator samples every request ``N`` times (candidate
``j`` with the request's seed + ``j *`` :data:`CANDIDATE_SEED_STRIDE`, so each candidate is the
sample a plain request with that seed would give) and keeps the candidate with the highest

    score(x) = log p(x | prompt) - w * log p(x | unconditional prompt)

summed over the output tokens ``x`` (the motion span and EOS), under the model's own distribution
(before constraints, guidance, temperature or top-k), ``w`` = ``SamplingConfig.rerank_uncond_weight``.
``w = 1`` is the pointwise mutual information of output and text (how much the text explains the
output: the model as its own text-motion matcher); ``w = 0`` the plain likelihood, which favours
short, common outputs; in between trades the two. The unconditional prompt is the one
classifier-free guidance uses (:meth:`MotionGenerator.unconditional_prompt_ids`), so ``w > 0``
needs a model trained with unconditional records for the task.

No evaluator, checker or other model takes part: the choice uses only what generation has.
Measured on the embedded default: ``docs/experiments/2026-12-05-benchmarks-history.md``, "Reranking".

Both terms come from the decoding itself (:class:`LogProbRecorder`): the conditional
log-probabilities are the logits ``generate`` computes anyway, the unconditional ones those of
classifier-free guidance's branch when guidance is on. Only ``w > 0`` without guidance needs a
second pass over the candidates (:func:`sequence_log_probs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers.generation.logits_process import LogitsProcessor

__all__ = ["CANDIDATE_SEED_STRIDE", "LogProbRecorder", "sequence_log_probs", "best_candidates"]

CANDIDATE_SEED_STRIDE = 7_919_993
"""Candidate ``j`` of a request with seed ``s`` samples with seed ``s + j * CANDIDATE_SEED_STRIDE``
(a prime far from composed decoding's clause stride, so clause and candidate seeds do not meet)."""


@torch.no_grad()
def sequence_log_probs(model: Any, prompts: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]], *,
                       pad_id: int, device: torch.device | str = "cpu", batch_size: int = 64) -> list[float]:
    """``sum_t log p(outputs[i][t] | prompts[i] + outputs[i][:t])`` for every row ``i`` (float).

    Rows are right-padded into batches: under the causal mask no real token sees the padding after
    it, so each row's log-probabilities are those it has alone. An empty output scores 0.
    """
    if len(prompts) != len(outputs):
        raise ValueError(f"{len(prompts)} prompts but {len(outputs)} outputs")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    scores: list[float] = []
    for a in range(0, len(prompts), batch_size):
        rows = [list(p) + list(o) for p, o in zip(prompts[a:a + batch_size], outputs[a:a + batch_size])]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, :len(row)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (b, W, V)
        for r, (p, o) in enumerate(zip(prompts[a:a + batch_size], outputs[a:a + batch_size])):
            if not o:
                scores.append(0.0)
                continue
            # the token at position t is predicted at position t - 1; softmax over those rows only
            pos = torch.arange(len(p) - 1, len(p) + len(o) - 1, device=logits.device)  # (n,)
            logp = torch.log_softmax(logits[r, pos].float(), dim=-1)  # (n, V)
            tgt = torch.tensor(list(o), dtype=torch.long, device=logits.device)  # (n,)
            scores.append(float(logp.gather(1, tgt[:, None]).sum()))
    return scores


class LogProbRecorder(LogitsProcessor):
    """Sums the log-probabilities of the tokens a batch samples, under the scores it is shown.

    Put in a ``LogitsProcessorList`` where it sees the distribution to score (first: the model's
    own logits), it returns the scores unchanged. At every step it keeps ``log_softmax(scores)``
    of that step only; at the next step the token just chosen (``input_ids[:, -1]``) picks its
    log-probability, so memory is ``(B, V)`` plus ``(B,)`` per step, whatever the vocabulary.
    :meth:`finish` takes the last step's token from the output; :meth:`sums` then adds up each
    row's own tokens (what :func:`sequence_log_probs` computes in a separate forward pass).
    """

    def __init__(self) -> None:
        self._last: torch.Tensor | None = None  # (B, V) log-probabilities of the current step
        self._picked: list[torch.Tensor] = []  # per finished step: (B,) log-prob of the chosen token

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._last is not None:
            self._picked.append(self._last.gather(1, input_ids[:, -1:]).squeeze(1))  # (B, V) -> (B,)
        self._last = torch.log_softmax(scores.float(), dim=-1)  # (B, V)
        return scores

    @property
    def steps(self) -> int:
        """Steps seen so far."""
        return len(self._picked) + (self._last is not None)

    def finish(self, new_tokens: torch.Tensor) -> None:
        """Close the last step with the batch's generated tokens ``(B, steps)`` (``generate``'s
        output after the prompt; each step adds one column)."""
        if new_tokens.shape[1] != self.steps:
            raise ValueError(f"{new_tokens.shape[1]} generated columns but {self.steps} recorded steps")
        if self._last is not None:
            self._picked.append(self._last.gather(1, new_tokens[:, -1:].to(self._last.device)).squeeze(1))
            self._last = None

    def sums(self, lengths: Sequence[int]) -> list[float]:
        """Per row, the summed log-probability of its first ``lengths[r]`` generated tokens (its own
        tokens: up to and including EOS), after :meth:`finish`."""
        if self._last is not None:
            raise RuntimeError("LogProbRecorder.sums before finish()")
        if not self._picked:
            return [0.0 for _ in lengths]
        picked = torch.stack(self._picked, dim=1).double().cpu()  # (B, steps)
        if len(lengths) != picked.shape[0] or any(n > picked.shape[1] for n in lengths):
            raise ValueError(f"lengths {list(lengths)} do not fit {tuple(picked.shape)} recorded log-probs")
        return [float(picked[r, :n].sum()) for r, n in enumerate(lengths)]


def best_candidates(scores: Sequence[float], n: int) -> list[int]:
    """Index (0..n-1) of the best of each consecutive group of ``n`` scores (the first on ties)."""
    if n < 1 or len(scores) % n:
        raise ValueError(f"{len(scores)} scores do not split into groups of {n}")
    return [max(range(n), key=lambda j, a=a: (scores[a + j], -j)) for a in range(0, len(scores), n)]
