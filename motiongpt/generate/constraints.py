"""Constrained decoding: a ``LogitsProcessor`` that makes every output well-formed, whatever the model.

What one output must satisfy is a :class:`RowSpec`; :class:`TokenTables` precomputes, once per
tokenizer, boolean masks and lookup tables over the vocabulary; :class:`MotionConstraintProcessor`
keeps a small per-row state (a few integer tensors) and turns it into an allowed-token mask at
every step with tensor ops only (no loop over the vocabulary, none over the rows).

Grammar of a motion output (``W`` = wrapped, the default of the ``vocab`` format)::

    [<Motion Token>] item (sep item)* [</Motion Token>] EOS

``vocab``: an item is one ``<motion_id_K>`` token, no separator. ``digits``: an item is a canonical
decimal number ``< nb_code`` (no leading zeros) written with tokens made only of digits, the
separator is the ``,`` token. In the ``digits`` format the processor allows exactly two kinds of
tokens inside the span: tokens whose string is only digits, and the single-character ``,`` token.
Tokens mixing digits and commas (``"1,2"``) or carrying a space (``" 12"``, SentencePiece
``"▁12"``) are never allowed; this restriction costs nothing with the tokenizers used here, because
the byte-level BPE's pre-tokenizer splits digit runs from punctuation and LLaMA's SentencePiece
splits every digit, so the tokenization of a canonical ``315,91,406`` itself only uses such tokens,
and it keeps the state to "one item boundary per token". The state of a ``digits`` row is the
prefix of the current item, one of ``nb_code + 1`` states (every prefix of a canonical number
below ``nb_code`` is itself such a number, so ``""`` plus one state per code covers them all).

Guarantees for motion rows: the span is exactly ``exact`` codes long (or between ``min_len`` and
``max_len`` when no length is requested), every code is in ``[0, nb_code)``, the codes at
``targets`` positions are the requested ones, ``ordered_keys`` appear in order as a subsequence
(greedy matching: emitting the next key's code places it; when the remaining room equals the number
of keys still to place, the next key is forced), ``end_code`` is the last code (when the model stops
early it may only stop right after that code; at ``max_len`` it is forced), and EOS follows the
span. Text rows (``m2t``) never contain a motion token or a span marker (``<Motion Token>``,
``</Motion Token>``, ``<motion_id_K>``) nor other special tokens, have at least one token before
EOS, start with a token that is not only whitespace (so they are never blank), and end with EOS
within ``text_budget`` new tokens. In the ``digits`` format a caption may
still contain numbers: digits are ordinary caption text.

Works with greedy decoding, sampling and beam search: the state is kept incrementally, and when a
row's history is not the previous step's history plus one token (beam search reorders its rows),
each row is matched to the row it continues (within its request's beams) and the state follows it;
anything else replays the generated tokens from the start. Rows must be in the order of
``specs`` repeated ``num_beams`` times (``repeat_interleave``: the layout ``generate`` uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from motiongpt.generate.spec import RowSpec
from motiongpt.llm.tokens import MotionTokenFormat, motion_token
from motiongpt.utils.tensors import index_of

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "NarrowedProcessors",
    "RowSpec",
    "TokenTables",
    "MotionConstraintProcessor",
    "SeededSampler",
]

_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)

# phases of a row
_BEFORE = 0  # wrapped motion, before <Motion Token>
_INSIDE = 1  # inside the motion span / writing the caption
_AFTER = 2  # after </Motion Token>: EOS next
_DONE = 3  # EOS emitted (or a beam that took a forbidden token: EOS only, its score is -inf anyway)


@dataclass
class TokenTables:
    """Vocabulary masks and lookup tables of one tokenizer + motion format (built once, reused).

    Build with :meth:`build`. Every table is a tensor on ``device``; ``vocab_size`` is the width of
    the model's logits (it may exceed ``len(tokenizer)`` when embeddings are padded).
    """

    fmt: MotionTokenFormat
    """The motion token format."""
    wrapped: bool
    """Motion outputs are wrapped in ``<Motion Token>`` ... ``</Motion Token>``."""
    vocab_size: int
    """Width of the logits."""
    eos_id: int
    """End-of-sequence id."""
    start_id: int
    """Id of ``<Motion Token>``."""
    end_id: int
    """Id of ``</Motion Token>``."""
    text_ok: torch.Tensor
    """``(V,)`` bool: tokens a caption may use (no motion token, marker or special token; EOS excluded)."""
    text_first_ok: torch.Tensor
    """``(V,)`` bool: tokens a caption may start with (``text_ok`` and not only whitespace), so that
    a caption is never blank."""
    code_ids: torch.Tensor
    """vocab: ``(nb_code,)`` ids of ``<motion_id_K>``; digits: empty."""
    code_of: torch.Tensor
    """vocab: ``(V,)`` code of each id (-1: not a code)."""
    digit_ids: torch.Tensor
    """digits: ``(S,)`` ids of the tokens made only of digits; vocab: empty."""
    digit_index: torch.Tensor
    """digits: ``(V,)`` index into ``digit_ids`` (-1: not a digit token)."""
    comma_id: int
    """digits: id of ``,`` (-1 for vocab)."""
    next_prefix: torch.Tensor
    """digits: ``(P, S)`` prefix state after appending digit token ``s`` to prefix state ``p``
    (-1: not a canonical number below ``nb_code``). State 0 is the empty prefix, state ``c + 1`` the
    decimal string of code ``c``."""
    compat: torch.Tensor
    """digits: ``(P, nb_code)`` bool, prefix state ``p`` is a prefix of the decimal string of code ``c``."""
    max_digits: int = 1
    """digits: decimal digits of ``nb_code - 1`` (most tokens per code)."""
    device: str = "cpu"
    """Device of the tables."""
    notes: list[str] = field(default_factory=list)
    """What was restricted and why (for the record)."""

    @classmethod
    def build(
        cls,
        tokenizer: "PreTrainedTokenizerBase",
        fmt: MotionTokenFormat,
        *,
        wrapped: bool,
        vocab_size: int | None = None,
        device: str | torch.device = "cpu",
    ) -> "TokenTables":
        """Precompute the tables; ``ValueError`` when the tokenizer cannot express the format."""
        from motiongpt.llm.model import verify_motion_tokens

        try:
            ids = verify_motion_tokens(tokenizer, fmt)
        except RuntimeError as e:
            raise ValueError(f"the tokenizer does not hold the {fmt.kind} motion tokens properly: {e}") from e
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos token: generated outputs could never end")
        v = int(vocab_size) if vocab_size is not None else len(tokenizer)
        if v < len(tokenizer):
            raise ValueError(f"vocab_size {v} is smaller than the tokenizer ({len(tokenizer)} ids)")
        dev = torch.device(device)
        eos = int(tokenizer.eos_token_id)

        # captions: anything but motion tokens, the markers and special tokens (EOS is added per step)
        text_ok = torch.ones(v, dtype=torch.bool)
        text_ok[len(tokenizer):] = False  # padding rows of the embedding: never real tokens
        special = set(int(i) for i in tokenizer.all_special_ids)
        for i in special | set(ids.all_ids()):
            text_ok[i] = False
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        visible = torch.zeros(v, dtype=torch.bool)
        visible[: len(pieces)] = torch.tensor([bool(p.strip()) for p in pieces])
        vocab = tokenizer.get_vocab()
        if fmt.kind == "digits":
            # a digits-format tokenizer may still hold <motion_id_K> strings from elsewhere
            for k in range(fmt.nb_code):
                tid = vocab.get(motion_token(k))
                if tid is not None:
                    text_ok[tid] = False

        code_ids = torch.tensor(ids.code_ids, dtype=torch.long)
        code_of = torch.full((v,), -1, dtype=torch.long)
        if fmt.kind == "vocab":
            code_of[code_ids] = torch.arange(fmt.nb_code)

        notes: list[str] = []
        max_digits = len(str(fmt.nb_code - 1))
        digit_ids = torch.zeros(0, dtype=torch.long)
        digit_index = torch.full((v,), -1, dtype=torch.long)
        comma_id = -1
        next_prefix = torch.zeros((0, 0), dtype=torch.long)
        compat = torch.zeros((0, 0), dtype=torch.bool)
        if fmt.kind == "digits":
            strings: list[str] = []
            id_list: list[int] = []
            for tid in range(len(tokenizer)):
                if tid in special:
                    continue
                raw = tokenizer.convert_ids_to_tokens(tid)
                if not isinstance(raw, str):
                    continue
                if raw == ",":
                    if tokenizer.decode([tid]) == ",":
                        comma_id = tid
                    continue
                # only digit runs short enough to be (part of) a code; longer ones are never valid
                if _DIGITS_RE.fullmatch(raw) and len(raw) <= max_digits and tokenizer.decode([tid]) == raw:
                    strings.append(raw)
                    id_list.append(tid)
            if comma_id < 0:
                raise ValueError("digits format: the tokenizer has no single ',' token; constrained decoding "
                                 "cannot separate codes (use constrained=False)")
            if not {str(d) for d in range(10)} <= set(strings):
                missing = sorted({str(d) for d in range(10)} - set(strings))
                raise ValueError(f"digits format: the tokenizer lacks single-digit token(s) {missing}")
            notes.append("digits: only pure digit-run tokens and the ',' token are allowed inside a span")
            digit_ids = torch.tensor(id_list, dtype=torch.long)
            digit_index[digit_ids] = torch.arange(len(id_list))
            # prefix states: 0 = "", c + 1 = str(c); every prefix of a canonical code is a code
            state_of = {"": 0}
            for c in range(fmt.nb_code):
                state_of[str(c)] = c + 1
            prefixes = [""] + [str(c) for c in range(fmt.nb_code)]
            nxt = torch.full((len(prefixes), len(strings)), -1, dtype=torch.long)
            for p, pre in enumerate(prefixes):
                if pre == "0":
                    continue  # a leading zero can never be extended
                for s, tok in enumerate(strings):
                    cand = pre + tok
                    if cand[0] == "0" and len(cand) > 1:
                        continue  # non-canonical (leading zero)
                    st = state_of.get(cand)
                    if st is not None:
                        nxt[p, s] = st
            next_prefix = nxt
            compat = torch.zeros((len(prefixes), fmt.nb_code), dtype=torch.bool)
            compat[0] = True
            for c in range(fmt.nb_code):
                text = str(c)
                for n in range(1, len(text) + 1):
                    compat[state_of[text[:n]], c] = True
        return cls(
            fmt=fmt, wrapped=bool(wrapped), vocab_size=v, eos_id=eos, start_id=ids.start_id, end_id=ids.end_id,
            text_ok=text_ok.to(dev), text_first_ok=(text_ok & visible).to(dev), code_ids=code_ids.to(dev),
            code_of=code_of.to(dev),
            digit_ids=digit_ids.to(dev), digit_index=digit_index.to(dev), comma_id=comma_id,
            next_prefix=next_prefix.to(dev), compat=compat.to(dev), max_digits=max_digits, device=str(dev),
            notes=notes,
        )

    def narrowed(self, columns: torch.Tensor) -> "TokenTables | None":
        """The same tables over the logits columns ``columns`` (token ids, ``(C,)``) only, ids
        replaced by column indices; None when a token the format needs is not among them.

        Why: a model whose head covers a few rows (:mod:`motiongpt.llm.text_conditioned`) returns
        logits over a 50k-token vocabulary that are ``-inf`` almost everywhere; the processors of a
        decoding step (guidance, constraints, reranking, sampling) then cost more than the model.
        Run on the live columns (:class:`NarrowedProcessors`), they see exactly the same numbers.
        """
        cols = columns.to(self.code_of.device)
        col_of = index_of(cols, self.vocab_size)
        needed = [self.eos_id, self.start_id, self.end_id] + ([self.comma_id] if self.comma_id >= 0 else [])
        needed_t = torch.cat([torch.tensor(needed, device=cols.device), self.code_ids, self.digit_ids])
        if bool((col_of[needed_t] < 0).any()):
            return None
        return TokenTables(
            fmt=self.fmt, wrapped=self.wrapped, vocab_size=len(cols), eos_id=int(col_of[self.eos_id]),
            start_id=int(col_of[self.start_id]), end_id=int(col_of[self.end_id]), text_ok=self.text_ok[cols],
            text_first_ok=self.text_first_ok[cols], code_ids=col_of[self.code_ids], code_of=self.code_of[cols],
            digit_ids=col_of[self.digit_ids], digit_index=self.digit_index[cols],
            comma_id=int(col_of[self.comma_id]) if self.comma_id >= 0 else -1, next_prefix=self.next_prefix,
            compat=self.compat, max_digits=self.max_digits, device=self.device,
            notes=self.notes + [f"narrowed to {len(cols)} logits columns"],
        )

    def motion_budget(self, n_codes: int) -> int:
        """New tokens that always suffice for a span of ``n_codes`` codes (markers and EOS included)."""
        per_code = 1 if self.fmt.kind == "vocab" else self.max_digits + 1  # digits: <= D tokens + ','
        return n_codes * per_code + (2 if self.wrapped else 0) + 1


class MotionConstraintProcessor:
    """``LogitsProcessor`` enforcing one :class:`RowSpec` per row (see the module docstring).

    ``prompt_width``: the (left-padded) prompt length; generated tokens start there. One instance
    serves one ``generate`` call.
    """

    def __init__(self, tables: TokenTables, specs: Sequence[RowSpec], prompt_width: int, num_beams: int = 1) -> None:
        if not specs:
            raise ValueError("MotionConstraintProcessor needs at least one row spec")
        nb = tables.fmt.nb_code
        for s in specs:
            s.validate(nb)
        self.t = tables
        self.prompt_width = int(prompt_width)
        dev = torch.device(tables.device)
        rep = int(num_beams)

        def col(values: list[int]) -> torch.Tensor:  # (n,) -> (n * beams,) in generate's row order
            return torch.tensor(values, dtype=torch.long).repeat_interleave(rep).to(dev)

        self.is_motion = col([s.kind == "motion" for s in specs]).bool()
        self.exact = col([s.exact if s.exact is not None else -1 for s in specs])
        self.n_min = col([s.min_len for s in specs])
        self.n_max = col([s.exact if s.exact is not None else s.max_len for s in specs])
        self.end_code = col([s.end_code if s.end_code is not None else -1 for s in specs])
        self.text_budget = col([s.text_budget for s in specs])
        width = max(1, max(int(s.exact if s.exact is not None else s.max_len) for s in specs))
        tgt = torch.full((len(specs), width), -1, dtype=torch.long)
        for i, s in enumerate(specs):
            for pos, code in s.targets:
                tgt[i, pos] = code
        self.targets = tgt.repeat_interleave(rep, 0).to(dev)  # (R, width)
        kmax = max(1, max(len(s.ordered_keys) for s in specs))
        keys = torch.full((len(specs), kmax), -1, dtype=torch.long)
        for i, s in enumerate(specs):
            if s.ordered_keys:
                keys[i, : len(s.ordered_keys)] = torch.tensor(s.ordered_keys)
        self.keys = keys.repeat_interleave(rep, 0).to(dev)  # (R, kmax)
        self.n_keys = col([len(s.ordered_keys) for s in specs])
        self.group = torch.arange(len(specs)).repeat_interleave(rep).to(dev)
        self.rows = len(specs) * rep
        self._arange_codes = torch.arange(nb, device=dev)
        self._reset()

    # ---- state -------------------------------------------------------------------------------

    def _reset(self) -> None:
        r, dev = self.rows, self.is_motion.device
        start = _BEFORE if self.t.wrapped else _INSIDE
        self.phase = torch.where(self.is_motion, torch.full((r,), start, device=dev),
                                 torch.full((r,), _INSIDE, device=dev))
        self.k = torch.zeros(r, dtype=torch.long, device=dev)  # codes completed
        self.p = torch.zeros(r, dtype=torch.long, device=dev)  # digits: prefix state of the current item
        self.last = torch.full((r,), -1, dtype=torch.long, device=dev)  # last completed code
        self.j = torch.zeros(r, dtype=torch.long, device=dev)  # ordered keys placed
        self._prev: torch.Tensor | None = None  # generated ids seen at the previous call (R, t)
        self._mask: torch.Tensor | None = None  # mask returned at the previous call (R, V)

    def _gather_state(self, parent: torch.Tensor) -> None:
        for name in ("phase", "k", "p", "last", "j"):
            setattr(self, name, getattr(self, name)[parent])
        if self._mask is not None:
            self._mask = self._mask[parent]

    def _force(self) -> torch.Tensor:
        """``(R,)`` the code forced at the current item (-1: free)."""
        width = self.targets.shape[1]
        fixed = self.targets.gather(1, self.k.clamp(max=width - 1)[:, None]).squeeze(1)
        fixed = torch.where(self.k < width, fixed, torch.full_like(fixed, -1))
        remaining = self.n_keys - self.j
        tight = (remaining > 0) & (self.n_max - self.k <= remaining)
        nxt = self.keys.gather(1, self.j.clamp(max=self.keys.shape[1] - 1)[:, None]).squeeze(1)
        return torch.where(fixed >= 0, fixed, torch.where(tight, nxt, torch.full_like(nxt, -1)))

    def _complete(self, done: torch.Tensor, value: torch.Tensor) -> None:
        """Rows in ``done`` completed an item of code ``value``."""
        self.k = self.k + done.long()
        self.last = torch.where(done, value, self.last)
        key = self.keys.gather(1, self.j.clamp(max=self.keys.shape[1] - 1)[:, None]).squeeze(1)
        self.j = self.j + (done & (self.j < self.n_keys) & (value == key)).long()

    def _step(self, tok: torch.Tensor) -> None:
        """Advance every row by its token ``tok`` ``(R,)``."""
        t = self.t
        ph = self.phase
        if self._mask is not None:
            ok = self._mask.gather(1, tok[:, None]).squeeze(1)  # was the token allowed?
        else:
            ok = torch.ones_like(self.is_motion)
        motion, text = self.is_motion, ~self.is_motion
        end_tok = t.end_id if t.wrapped else t.eos_id
        start_hit = motion & (ph == _BEFORE) & (tok == t.start_id)
        inside = motion & (ph == _INSIDE)
        if t.fmt.kind == "vocab":
            code = t.code_of[tok]
            self._complete(inside & (code >= 0), code)
            end_hit = inside & (tok == end_tok)
        else:
            s = t.digit_index[tok]
            is_digit = inside & (s >= 0)
            p_next = t.next_prefix[self.p, s.clamp(min=0)]
            end_hit = inside & (tok == end_tok) & (self.p > 0)
            completes = (inside & (tok == t.comma_id) & (self.p > 0)) | end_hit
            self._complete(completes, self.p - 1)
            self.p = torch.where(is_digit & (p_next >= 0), p_next,
                                 torch.where(completes, torch.zeros_like(self.p), self.p))
        new = ph.clone()
        new = torch.where(start_hit, torch.full_like(new, _INSIDE), new)
        new = torch.where(end_hit, torch.full_like(new, _AFTER if t.wrapped else _DONE), new)
        new = torch.where(motion & (ph == _AFTER) & (tok == t.eos_id), torch.full_like(new, _DONE), new)
        new = torch.where(text & (ph == _INSIDE) & (tok == t.eos_id), torch.full_like(new, _DONE), new)
        # a forbidden token can only come from a beam filled in with a -inf score: retire it
        new = torch.where(~ok, torch.full_like(new, _DONE), new)
        self.phase = new

    def _sync(self, gen: torch.Tensor) -> None:
        """Bring the state to the generated ids ``gen`` ``(R, t)``."""
        t = gen.shape[1]
        prev = self._prev
        if t == 0:
            self._reset()
            return
        if prev is not None and prev.shape == (self.rows, t - 1):
            if torch.equal(gen[:, :-1], prev):
                self._step(gen[:, -1])
                return
            # beam search reordered its rows: find the row each one continues (same request only)
            same = (gen[:, None, :-1] == prev[None, :, :]).all(-1) & (self.group[:, None] == self.group[None, :])
            if bool(same.any(1).all()):
                self._gather_state(same.int().argmax(1))
                self._step(gen[:, -1])
                return
        self._replay(gen)

    def _replay(self, gen: torch.Tensor) -> None:
        self._reset()
        for i in range(gen.shape[1]):
            self._mask = self._allowed(i)
            self._step(gen[:, i])

    # ---- masks -------------------------------------------------------------------------------

    def _allowed(self, step: int) -> torch.Tensor:
        """``(R, V)`` bool: tokens allowed next, ``step`` = tokens generated so far."""
        t = self.t
        r, v = self.rows, t.vocab_size
        ph, k, motion = self.phase, self.k, self.is_motion
        allowed = torch.zeros((r, v), dtype=torch.bool, device=ph.device)

        # captions: free text starting with a visible token (never blank), EOS forced at the budget
        writing = ~motion & (ph == _INSIDE)
        must_end = writing & (step >= self.text_budget - 1)
        allowed |= (writing & ~must_end)[:, None] & (t.text_ok if step > 0 else t.text_first_ok)[None, :]
        eos_ok = (writing & ((step >= 1) | must_end)) | (ph >= _AFTER)  # after a span / finished: EOS only
        allowed[:, t.start_id] |= motion & (ph == _BEFORE)

        inside = motion & (ph == _INSIDE)
        force = self._force()
        free = force < 0
        exact = self.exact >= 0
        cap = self.n_max
        if t.fmt.kind == "vocab":
            room = inside & (k < cap)
            code_ok = room[:, None] & (free[:, None] | (self._arange_codes[None, :] == force[:, None]))
            allowed[:, t.code_ids] = code_ok
            variable_end = (k >= self.n_min) & (k <= cap) & ((self.end_code < 0) | (self.last == self.end_code)) \
                & (self.j >= self.n_keys)
            end_ok = inside & (k >= 1) & torch.where(exact, k == self.exact, variable_end)
        else:
            nb = t.fmt.nb_code
            q = t.next_prefix[self.p]  # (R, S) state after each digit token
            forced_ok = t.compat.reshape(-1)[q.clamp(min=0) * nb + force.clamp(min=0)[:, None]]
            dig_ok = (q >= 0) & (free[:, None] | forced_ok) & (inside & (k < cap))[:, None]
            allowed[:, t.digit_ids] |= dig_ok
            have = self.p > 0
            value = self.p - 1
            value_ok = have & (free | (value == force))
            allowed[:, t.comma_id] |= inside & value_ok & (k + 1 < cap)
            n_done = k + 1
            key = self.keys.gather(1, self.j.clamp(max=self.keys.shape[1] - 1)[:, None]).squeeze(1)
            j_after = self.j + ((self.j < self.n_keys) & (value == key)).long()
            variable_end = (n_done >= self.n_min) & (n_done <= cap) \
                & ((self.end_code < 0) | (value == self.end_code)) & (j_after >= self.n_keys)
            end_ok = inside & value_ok & torch.where(exact, n_done == self.exact, variable_end)
        if t.wrapped:
            allowed[:, t.end_id] |= end_ok
        else:
            eos_ok = eos_ok | end_ok
        allowed[:, t.eos_id] |= eos_ok
        # never leave a row without a choice (only a retired beam could get here): EOS
        stuck = ~allowed.any(1)
        allowed[:, t.eos_id] |= stuck
        return allowed

    # ---- the LogitsProcessor protocol ----------------------------------------------------------

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[0] != self.rows:
            raise ValueError(f"MotionConstraintProcessor built for {self.rows} rows, got {input_ids.shape[0]}")
        if scores.shape[1] != self.t.vocab_size:
            raise ValueError(f"logits have {scores.shape[1]} columns, the token tables {self.t.vocab_size}")
        gen = input_ids[:, self.prompt_width:]
        self._sync(gen)
        allowed = self._allowed(gen.shape[1])
        self._mask = allowed
        self._prev = gen
        return scores.masked_fill(~allowed, float("-inf"))


class SeededSampler:
    """Last ``LogitsProcessor`` of seeded sampling: draws each row's token with that row's own
    random stream and returns scores that are ``0`` for the drawn token and ``-inf`` elsewhere, so
    that ``generate``'s greedy selection takes exactly it.

    Why: ``generate``'s own sampling draws every row from one global generator, so a sample would
    depend on which other prompts shared its batch. Here row ``r`` uses the ``t``-th uniform of its
    own ``torch.Generator`` (seeded with ``seeds[r]``, drawn in fixed blocks of ``BLOCK`` so the
    stream never depends on the batch's token budget) at step ``t``, and picks the token by inverse
    CDF of the softmax of its scores (exact sampling; tokens of probability 0 are never picked). A
    sample therefore depends only on its prompt, its seed and the settings and can be regenerated
    alone (up to float rounding of the batched forward pass). The draws are vectorized: no loop
    over rows or tokens per step.
    """

    BLOCK = 64
    """Uniforms drawn per generator at a time."""

    def __init__(self, seeds: Sequence[int], device: str | torch.device = "cpu", prompt_width: int = 0) -> None:
        self.device = torch.device(device)
        self.prompt_width = int(prompt_width)
        self.generators = []
        for s in seeds:
            g = torch.Generator(device="cpu")  # CPU streams: the same numbers on every device
            g.manual_seed(int(s))
            self.generators.append(g)
        self._uniforms = torch.zeros((len(self.generators), 0))

    def _uniform(self, step: int) -> torch.Tensor:
        """``(R,)`` the uniforms of every row at ``step``."""
        while self._uniforms.shape[1] <= step:
            block = torch.stack([torch.rand(self.BLOCK, generator=g) for g in self.generators])  # (R, BLOCK)
            self._uniforms = torch.cat([self._uniforms, block], 1)
        return self._uniforms[:, step].to(self.device)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"SeededSampler has {len(self.generators)} seeds for {scores.shape[0]} rows")
        u = self._uniform(input_ids.shape[1] - self.prompt_width)  # (R,)
        cdf = torch.softmax(scores.float(), dim=-1).cumsum(-1)  # (R, V)
        # first token whose cumulative probability exceeds u * total: never a zero-probability token
        picks = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp(max=scores.shape[1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, picks, 0.0)  # (R, 1) drawn ids -> 0


class NarrowedProcessors:
    """Runs a list of logits processors on the live columns of the scores only.

    ``columns`` (C,): the token ids the model can emit at all (every other column of its logits is
    ``-inf``). Each step the wrapped processors get ``scores[:, columns]`` and ``input_ids`` whose
    generated tokens (after ``prompt_width``) are given as column indices, so processors built for
    the narrowed space (:meth:`TokenTables.narrowed`; ``columns`` on the guidance processor) see
    the same numbers as on the full width; the result is spread back over the vocabulary (``-inf``
    elsewhere). Use :meth:`to_columns` on generated tokens for anything recorded in column space.
    """

    def __init__(self, processors: Sequence[object], columns: torch.Tensor, vocab_size: int,
                 prompt_width: int) -> None:
        self.processors = list(processors)
        self.columns = columns
        self.col_of = index_of(columns, vocab_size)
        self.prompt_width = int(prompt_width)

    def to_columns(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids -> column indices (``ValueError`` for a token outside the columns)."""
        cols = self.col_of.to(tokens.device)[tokens]
        if bool((cols < 0).any()):
            raise ValueError("a generated token is outside the model's live logits columns")
        return cols

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        ids = input_ids.clone()
        ids[:, self.prompt_width:] = self.to_columns(input_ids[:, self.prompt_width:])
        s = scores[:, self.columns.to(scores.device)]  # (B, V) -> (B, C)
        for p in self.processors:
            s = p(ids, s)
        out = torch.full_like(scores, float("-inf"))
        out[:, self.columns.to(scores.device)] = s
        return out  # (B, V)
