"""Classifier-free guidance (CFG) of text-to-motion decoding.

A model trained with some text-to-motion records duplicated with an empty input (the
*unconditional* prompt: the same t2m instruction, ``input ""``) can be steered towards the caption
at decoding time. At every step, with

* ``c = log_softmax(conditional logits)``: the model on the request's prompt + the tokens
  generated so far (the logits ``generate`` computes anyway),
* ``u = log_softmax(unconditional logits)``: the same model on the unconditional prompt + the same
  generated tokens,
* ``s`` = ``SamplingConfig.guidance_scale``,

the token is chosen from the guided log-probabilities ``g = u + s * (c - u)``. ``s = 1`` gives
``c`` (guidance off: the generator then adds nothing and decodes exactly as without it), ``s = 0``
the unconditional model, ``s > 1`` moves away from what the model would write without the
caption (MoMask's ``cond_scale``; 2 was the best scale on the embedded default model).

The unconditional prompt is the same for every row: its keys and values are computed once at
batch 1 (:meth:`UnconditionalPrefix.prefill`), kept by the generator, and expanded to the batch by
:class:`GuidanceLogitsProcessor`, which then runs the unconditional branch one token per step
(the row's last generated token, at position ``len(prompt) + step``) on its own KV cache. No
padding is needed there: every row has the same prompt.

The processor must come first in the ``LogitsProcessorList``: before
:class:`~motiongpt.generate.constraints.MotionConstraintProcessor` (which puts ``-inf`` on the
disallowed tokens: ``-inf - (-inf)`` would be NaN) and before temperature, top-k / top-p and
:class:`~motiongpt.generate.constraints.SeededSampler` (guidance shapes the distribution those
then sample from).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.generation.logits_process import LogitsProcessor

__all__ = ["GuidanceLogitsProcessor", "UnconditionalPrefix", "guided_log_probs"]


def guided_log_probs(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """``u + s * (c - u)`` with ``c = log_softmax(cond)``, ``u = log_softmax(uncond)`` (float32).

    ``cond``, ``uncond``: ``(B, V)`` logits (or log-probabilities: log-softmax is idempotent).
    A token that either branch rules out (``-inf``) stays ruled out, instead of giving NaN or
    ``+inf``.
    """
    c = torch.log_softmax(cond.float(), dim=-1)  # (B, V)
    u = torch.log_softmax(uncond.float(), dim=-1)  # (B, V)
    g = u + float(scale) * (c - u)  # (B, V)
    return torch.where(torch.isfinite(c) & torch.isfinite(u), g, torch.full_like(g, float("-inf")))


@dataclass
class UnconditionalPrefix:
    """The unconditional prompt run once at batch 1: what every guided batch starts from."""

    ids: list[int]
    """Token ids of the unconditional prompt."""
    cache: Any
    """The model's KV cache of ``ids`` (batch 1); never modified (the processor works on copies)."""
    logits: torch.Tensor
    """``(1, V)`` float32 logits of the token following the prompt (the first generated token's)."""

    @classmethod
    @torch.no_grad()
    def prefill(cls, model: Any, ids: Sequence[int], device: str | torch.device) -> UnconditionalPrefix:
        """Run ``model`` on ``ids`` (batch 1) and keep its cache and last logits."""
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError("the unconditional prompt is empty")
        x = torch.tensor([ids], dtype=torch.long, device=torch.device(device))  # (1, L)
        out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=True)
        return cls(ids=ids, cache=out.past_key_values, logits=out.logits[:, -1].float())  # (1, L, V) -> (1, V)


class GuidanceLogitsProcessor(LogitsProcessor):
    """``LogitsProcessor`` of classifier-free guidance: returns ``u + s * (c - u)`` (see the module docstring).

    ``model``: the model ``generate`` runs (the unconditional branch is the same model).
    ``prefix``: the unconditional prompt's batch-1 cache (:meth:`UnconditionalPrefix.prefill`).
    ``rows``: the batch size. ``prompt_width``: the (padded) width of the conditional prompts;
    generated tokens start there. ``guidance_scale``: ``s``. ``recorder`` (optional, a
    :class:`~motiongpt.generate.rerank.LogProbRecorder`): called with each step's unconditional logits.

    ``generate`` calls it once per step with ``input_ids`` ``(B, prompt_width + t)``; the
    processor keeps the generated tokens its branch has consumed and feeds only the new ones.
    Anything else (a call for the same step again, several new tokens at once, a history that is
    not the previous one extended, a new ``generate`` call) is handled too: repeated steps reuse
    the last result, missing tokens are fed in one forward pass, and a changed history restarts
    the branch from the prefix. One instance serves one batch; it holds the branch's KV cache
    (as large as the conditional one, minus the padding) until it is dropped.
    """

    def __init__(self, model: Any, prefix: UnconditionalPrefix, rows: int, prompt_width: int,
                 guidance_scale: float, recorder: Any = None, columns: torch.Tensor | None = None) -> None:
        scale = float(guidance_scale)
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}")
        if int(rows) < 1:
            raise ValueError(f"rows must be >= 1, got {rows!r}")
        self.model = model
        self.prefix = prefix
        self.rows = int(rows)
        self.prompt_width = int(prompt_width)
        self.scale = scale
        self.recorder = recorder  # sees the unconditional logits of every step (reranking's score)
        # under NarrowedProcessors: generated tokens arrive as column indices of these token ids,
        # and the branch's logits are kept on these columns only
        self.columns = columns
        self._cache: Any = None
        self._fed: torch.Tensor | None = None  # (B, n) generated tokens the branch has consumed
        self._logits: torch.Tensor | None = None  # (B, V) unconditional logits after them

    def _restart(self, device: torch.device) -> None:
        """The branch back at the end of the unconditional prompt, for every row."""
        cache = copy.deepcopy(self.prefix.cache)
        cache.batch_repeat_interleave(self.rows)  # (1, ...) -> (B, ...): every row shares the prompt
        self._cache = cache
        self._fed = torch.zeros((self.rows, 0), dtype=torch.long, device=device)  # (B, 0)
        first = self.prefix.logits.to(device)  # (1, V)
        if self.columns is not None:
            first = first[:, self.columns.to(device)]  # (1, C)
        self._logits = first.expand(self.rows, -1)  # (1, V) -> (B, V)

    @torch.no_grad()
    def _feed(self, new: torch.Tensor) -> None:
        """Run the branch on ``new`` ``(B, k)`` tokens following those already fed."""
        assert self._fed is not None
        start = len(self.prefix.ids) + self._fed.shape[1]  # position of new[:, 0]
        k = new.shape[1]
        positions = torch.arange(start, start + k, device=new.device).expand(self.rows, -1)  # (B, k)
        mask = torch.ones((self.rows, start + k), dtype=torch.long, device=new.device)  # no padding: same prompt
        tokens = new if self.columns is None else self.columns.to(new.device)[new]  # columns -> token ids
        out = self.model(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=self._cache,
                         use_cache=True)
        self._cache = out.past_key_values
        logits = out.logits[:, -1].float()  # (B, k, V) -> (B, V)
        self._logits = logits if self.columns is None else logits[:, self.columns.to(logits.device)]
        self._fed = torch.cat([self._fed, new], 1)  # (B, n + k)

    def unconditional_logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, V)`` float32 unconditional logits of the step after ``input_ids`` ``(B, prompt_width + t)``."""
        if input_ids.shape[0] != self.rows:
            raise ValueError(f"GuidanceLogitsProcessor built for {self.rows} rows, got {input_ids.shape[0]}")
        gen = input_ids[:, self.prompt_width:]  # (B, t) generated so far
        t = gen.shape[1]
        fed = self._fed
        if fed is None or fed.shape[1] > t or not torch.equal(gen[:, : fed.shape[1]], fed):
            self._restart(gen.device)
        assert self._fed is not None and self._logits is not None
        if t > self._fed.shape[1]:
            self._feed(gen[:, self._fed.shape[1]:])  # usually one token: the row's last
        return self._logits

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        uncond = self.unconditional_logits(input_ids)  # (B, V)
        if uncond.shape[1] != scores.shape[1]:
            raise ValueError(f"unconditional logits have {uncond.shape[1]} columns, the scores {scores.shape[1]}")
        if self.recorder is not None:
            self.recorder(input_ids, uncond)
        return guided_log_probs(scores, uncond, self.scale).to(scores.dtype)  # (B, V)
