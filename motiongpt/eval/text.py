"""Caption processing shared by the evaluators: ``word/POS`` tokens, POS one-hots, a vocabulary.

The part-of-speech scheme is T2M's (``utils/word_vectorizer.py`` of Guo et al.'s text-to-motion
code): 15 categories, the universal tags VERB NOUN DET ADP NUM AUX PRON ADJ ADV, five "VIP"
categories that override the tag for words in fixed lists (locations, body parts, objects,
actions, descriptions) and OTHER for everything else. A word outside the vocabulary becomes
``unk`` with the OTHER category, as in T2M.

Captions are read as HumanML3D stores them (``word/POS`` tokens with lemmas, see
:mod:`motiongpt.data.humanml3d`). Plain strings (a caption typed at generation time) are
tokenized without a POS tagger (spaCy is not a dependency): each word is looked up in a
surface-form table learned from the training captions (surface word, and surface word after its
predecessor -> most frequent lemma and POS); unseen words stay as they are with OTHER.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "POS_ENUMERATOR",
    "VIP_DICT",
    "PAD",
    "UNK",
    "SOS",
    "EOS",
    "pos_category",
    "pos_one_hot",
    "split_token",
    "caption_tokens",
    "Vocabulary",
]

POS_ENUMERATOR: dict[str, int] = {
    "VERB": 0, "NOUN": 1, "DET": 2, "ADP": 3, "NUM": 4, "AUX": 5, "PRON": 6, "ADJ": 7, "ADV": 8,
    "Loc_VIP": 9, "Body_VIP": 10, "Obj_VIP": 11, "Act_VIP": 12, "Desc_VIP": 13, "OTHER": 14,
}
"""T2M's 15 part-of-speech categories (``dim_pos_ohot = 15``)."""

VIP_DICT: dict[str, tuple[str, ...]] = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward",
                "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder",
                 "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump",
                "turn", "stumble", "dance", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel",
                "stroll", "rub", "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread",
                "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily",
                 "angrily", "sadly"),
}
"""T2M's word lists whose category replaces the tagged POS (checked in this order)."""

PAD, UNK, SOS, EOS = "<pad>", "unk", "sos", "eos"
"""Special words: padding (id 0), unknown (T2M's ``unk``), start and end of sentence."""


def pos_category(word: str, pos: str, known: bool = True) -> str:
    """T2M's category of a token: OTHER for unknown words, a VIP category for listed words, else
    the tag itself when it is one of the nine universal tags, else OTHER."""
    if not known:
        return "OTHER"
    for key, words in VIP_DICT.items():
        if word in words:
            return key
    return pos if pos in POS_ENUMERATOR else "OTHER"


def pos_one_hot(category: str) -> np.ndarray:
    """``(15,)`` float32 one-hot of a category name (unknown names -> OTHER)."""
    out = np.zeros(len(POS_ENUMERATOR), dtype=np.float32)
    out[POS_ENUMERATOR.get(category, POS_ENUMERATOR["OTHER"])] = 1.0
    return out


def split_token(token: str) -> tuple[str, str]:
    """``"walk/VERB"`` -> ``("walk", "VERB")``; a token without ``/`` gets POS ``OTHER``.

    The word is lowercased (GloVe's and our vocabularies are lowercase).
    """
    word, sep, pos = str(token).rpartition("/")
    if not sep:
        return str(token).lower(), "OTHER"
    return word.lower(), pos


_WORD = re.compile(r"[A-Za-z]+")


def _surface_words(text: str) -> list[str]:
    # HumanML3D's text_process.py removes '-' then keeps alphabetic spaCy tokens
    return [w.lower() for w in _WORD.findall(text.replace("-", ""))]


def caption_tokens(caption: Any, surface: Mapping[str, Sequence[str]] | None = None) -> list[tuple[str, str]]:
    """``[(word, POS), ...]`` of a caption.

    Accepts a :class:`motiongpt.data.humanml3d.Caption` (its tokens, or its text when it has none),
    a sequence of ``word/POS`` token strings, or a plain string (tokenized with the ``surface``
    table: surface word -> ``(lemma, POS)``; words not in it keep their form with POS OTHER).

    Raises:
        ValueError: for an empty caption or an unsupported type.
    """
    tokens = getattr(caption, "tokens", None)
    if tokens is not None:  # a Caption
        if tokens:
            return [split_token(t) for t in tokens]
        caption = caption.text
    if isinstance(caption, str):
        words = _surface_words(caption)
        if not words:
            raise ValueError(f"caption {caption!r} has no words")
        table = surface or {}
        out = []
        for i, w in enumerate(words):
            # the word after its predecessor first ("two steps" is a noun, "steps back" a verb)
            lemma_pos = table.get(f"{words[i - 1]} {w}") if i > 0 else None
            lemma_pos = lemma_pos or table.get(w)
            out.append((str(lemma_pos[0]), str(lemma_pos[1])) if lemma_pos else (w, "OTHER"))
        return out
    if isinstance(caption, (list, tuple)) and all(isinstance(t, str) for t in caption):
        if not caption:
            raise ValueError("empty token list")
        return [split_token(t) for t in caption]
    raise ValueError(f"unsupported caption type {type(caption).__name__}: pass a str, a Caption or a list of 'word/POS' tokens")


@dataclass
class Vocabulary:
    """Words of an evaluator's text encoder, and the surface table for plain-string captions."""

    words: list[str]
    """Id -> word; ids 0-3 are ``<pad>``, ``unk``, ``sos``, ``eos``."""
    surface: dict[str, list[str]] = field(default_factory=dict)
    """Surface word (lowercase) -> ``[lemma, POS]``, learned from the training captions; keys
    ``"<previous word> <word>"`` hold the readings that differ after that predecessor."""
    _index: dict[str, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.words[:4] != [PAD, UNK, SOS, EOS]:
            raise ValueError(f"vocabulary must start with {[PAD, UNK, SOS, EOS]}, got {self.words[:4]}")
        if len(set(self.words)) != len(self.words):
            dup = [w for w, c in Counter(self.words).items() if c > 1][:5]
            raise ValueError(f"vocabulary has duplicate words {dup}")
        self._index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def id(self, word: str) -> int:
        """Id of ``word`` (the ``unk`` id when it is not in the vocabulary)."""
        return self._index.get(word, 1)

    @classmethod
    def build(cls, captions: Iterable[Any], min_count: int = 1) -> "Vocabulary":
        """Vocabulary of the words seen at least ``min_count`` times (most frequent first, ties
        alphabetical, so the ids are deterministic), and the surface table of the captions whose
        text words line up one to one with their tokens."""
        counts: Counter = Counter()
        surface_counts: dict[str, Counter] = {}
        for cap in captions:
            toks = caption_tokens(cap)
            counts.update(w for w, _ in toks)
            text = getattr(cap, "text", None)
            if text and getattr(cap, "tokens", None):
                words = _surface_words(text)
                if len(words) == len(toks):
                    for i, (s, (w, p)) in enumerate(zip(words, toks)):
                        surface_counts.setdefault(s, Counter())[(w, p)] += 1
                        if i > 0:
                            surface_counts.setdefault(f"{words[i - 1]} {s}", Counter())[(w, p)] += 1
        specials = [PAD, UNK, SOS, EOS]
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in specials), key=lambda w: (-counts[w], w))
        # most frequent reading of every word; a word after a given predecessor is kept only where
        # its reading differs from the word's own (the table stays small)
        surface = {s: list(c.most_common(1)[0][0]) for s, c in sorted(surface_counts.items()) if " " not in s}
        for key, c in sorted(surface_counts.items()):
            if " " in key:
                best = list(c.most_common(1)[0][0])
                if best != surface.get(key.split(" ")[1]):
                    surface[key] = best
        return cls(words=specials + kept, surface=surface)

    def encode(self, caption: Any, max_len: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Word ids ``(max_len + 2,)`` int64, POS one-hots ``(max_len + 2, 15)`` float32 and the
        length (with ``sos``/``eos``), as T2M's dataset: tokens cropped to ``max_len``, wrapped in
        ``sos``/``eos``, padded (ids 0, zero one-hots)."""
        toks = caption_tokens(caption, self.surface)[:max_len]
        ids = np.zeros(max_len + 2, dtype=np.int64)
        pos = np.zeros((max_len + 2, len(POS_ENUMERATOR)), dtype=np.float32)
        seq = [(SOS, "OTHER")] + toks + [(EOS, "OTHER")]
        for i, (w, p) in enumerate(seq):
            known = w in self._index
            ids[i] = self.id(w)
            pos[i] = pos_one_hot(pos_category(w, p, known) if w not in (SOS, EOS) else "OTHER")
        return ids, pos, len(seq)

    def to_json(self) -> str:
        """JSON text of the vocabulary (``vocab.json`` of a checkpoint)."""
        return json.dumps({"format": "motiongpt-evaluator-vocab", "version": 1, "words": self.words,
                           "surface": self.surface}, indent=0)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocabulary":
        """Read a ``vocab.json``; ``ValueError`` naming the file when it is malformed."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable vocabulary JSON ({e})") from e
        if not isinstance(data, dict) or data.get("format") != "motiongpt-evaluator-vocab":
            raise ValueError(f"{path}: not a motiongpt evaluator vocabulary (format field missing or wrong)")
        words, surface = data.get("words"), data.get("surface", {})
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{path}: 'words' must be a list of strings")
        if not isinstance(surface, dict):
            raise ValueError(f"{path}: 'surface' must be a mapping")
        try:
            return cls(words=words, surface={str(k): [str(x) for x in v] for k, v in surface.items()})
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e
