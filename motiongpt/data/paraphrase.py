"""Training captions reworded through WordNet: teach the model meaning, not the corpus's words.

A model fine-tuned on a corpus whose captions use a small vocabulary (the synthetic corpus: 128
template words; HumanML3D: the habits of its annotators) learns those word forms: a frozen
pretrained LLM reading "a gentleman springs upward" places it near "a man jumps up", but the
fine-tuned part never saw that neighbourhood used. :class:`CaptionParaphraser` rewrites a caption
by replacing content words with WordNet relatives of the same sense (synonyms of the word's most
frequent senses; more specific words, e.g. hyponyms such as "amble" for "walk"; similar
adjectives), inflected like the word they replace. The instruction builder applies it to a share
of the training records (:attr:`motiongpt.llm.tasks.TaskConfig.paraphrase_prob`); evaluation
captions are never touched.

What never changes, so that a reworded caption states the same motion: function words, the
connectors that order the clauses ("then", "after", "before", ...), sides ("left", "right",
"clockwise"), counts and numbers ("twice", "three", "times", "degrees"), and every word of
``protected``. ``exclude`` removes words from the candidates (e.g. a test set's words, to measure
generalisation to words the model never saw; see BENCHMARKS.md).

The part of speech of a word comes from the caption's tags when given (HumanML3D ``word/POS``
tags, the synthetic corpus's :func:`~motiongpt.data.synthetic.captions.tag_caption`), else from
WordNet: the part of speech with the most sense-tagged uses.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from motiongpt.data.wordnet import WordNet

__all__ = ["PROTECTED_WORDS", "MOTION_DOMAINS", "CaptionParaphraser", "inflect", "exclusion_words"]

MOTION_DOMAINS: frozenset[str] = frozenset({
    "verb.motion", "verb.body", "verb.contact", "verb.communication", "verb.stative",
    "noun.act", "noun.body", "noun.person", "noun.event", "noun.location", "noun.shape", "noun.attribute",
    "noun.time", "adj.all", "adj.pert", "adj.ppl", "adv.all",
})
"""Default :attr:`CaptionParaphraser.domains`: the WordNet domains that describe bodies moving."""

PROTECTED_WORDS: frozenset[str] = frozenset("""
a an the this that these those his her hers their theirs its it them they he she him someone somebody
one's oneself himself herself themselves itself
and or but nor so then than first next after afterwards afterward before finally later once while when
followed by to in into at with over above of on onto off up down out from for about around through
across along toward towards under below behind between against until upon within without
left right clockwise counterclockwise anticlockwise counter leftward rightward leftwards rightwards
twice thrice times time degrees degree
zero one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty sixty
seventy eighty ninety hundred
is are was were be been being do does did has have had not no
""".split())
"""Words :class:`CaptionParaphraser` never replaces: function words, clause connectors, sides,
counts and numbers (a synonym would blur the fact they state, or the clause order)."""

_UPOS_TO_WN = {"NOUN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
_VOWELS = set("aeiou")


def _double_final(base: str) -> bool:
    """Consonant-vowel-consonant ending of a short stem ("hop" -> "hopping", "stop" -> "stopped")."""
    return (len(base) >= 3 and base[-1] not in _VOWELS and base[-1] not in "wxy"
            and base[-2] in _VOWELS and base[-3] not in _VOWELS and len(base) <= 4)


def inflect(base: str, form: str) -> str:
    """``base`` (one word or a phrase whose first word inflects: "spin around") in ``form``:
    ``"base"``, ``"s"`` (third person / plural), ``"ing"`` or ``"ed"``."""
    head, _, rest = base.partition(" ")
    tail = f" {rest}" if rest else ""
    if form == "base":
        return base
    if form == "s":
        if head.endswith("y") and len(head) > 1 and head[-2] not in _VOWELS:
            out = head[:-1] + "ies"
        elif head.endswith(("s", "x", "z", "ch", "sh", "o")):
            out = head + "es"
        else:
            out = head + "s"
    elif form == "ing":
        if head.endswith("ie"):
            out = head[:-2] + "ying"
        elif head.endswith("e") and not head.endswith(("ee", "ye", "oe")) and len(head) > 2:
            out = head[:-1] + "ing"
        elif _double_final(head):
            out = head + head[-1] + "ing"
        else:
            out = head + "ing"
    elif form == "ed":
        if head.endswith("e"):
            out = head + "d"
        elif head.endswith("y") and len(head) > 1 and head[-2] not in _VOWELS:
            out = head[:-1] + "ied"
        elif _double_final(head):
            out = head + head[-1] + "ed"
        else:
            out = head + "ed"
    else:
        raise ValueError(f"unknown form {form!r} (base, s, ing, ed)")
    return out + tail


def _form_of(word: str, base: str, pos: str) -> str:
    """How ``word`` inflects ``base`` (``base``, ``s``, ``ing``, ``ed``); irregular forms count by
    their ending (a WordNet exception entry: "ran" -> "ed")."""
    if word == base:
        return "base"
    if pos in ("n", "v") and word.endswith("s"):
        return "s"
    if pos == "v" and word.endswith("ing"):
        return "ing"
    if pos == "v":
        return "ed"
    return "base"


_ARTICLE_RE = re.compile(r"\b([Aa]n?) ([A-Za-z])")


def _fix_articles(text: str) -> str:
    """"a" / "an" agreeing with the next word's first letter (a replaced word may start otherwise)."""
    def fix(m: re.Match) -> str:
        art, first = m.group(1), m.group(2)
        an = first.lower() in _VOWELS
        new = ("An" if art[0] == "A" else "an") if an else ("A" if art[0] == "A" else "a")
        return f"{new} {first}"
    return _ARTICLE_RE.sub(fix, text)


_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z'-]*|[^A-Za-z]+")


@dataclass
class CaptionParaphraser:
    """Rewords captions with WordNet relatives of their content words (see the module docstring)."""

    wordnet: WordNet
    word_prob: float = 0.6
    """Probability that each replaceable word is replaced (a caption keeps some of its own words)."""
    senses: int = 3
    """Synonyms come from the word's first ``senses`` senses (most frequent first) whose domain is
    in ``domains``."""
    domains: frozenset[str] = MOTION_DOMAINS
    """WordNet lexicographer files a sense must belong to (:data:`~motiongpt.data.wordnet.LEXNAMES`):
    a caption of a motion means "back" as moving back, not as supporting someone. Adjectives and
    adverbs have one file each (``adj.all``, ``adv.all``) and use only their first sense."""
    hyponyms: bool = True
    """Also more specific words of the first sense (troponyms of verbs: "amble" for "walk"), drawn
    when the word has no synonym or with probability ``1 - synonym_prob``."""
    max_hyponyms: int = 100
    """A first sense with more hyponyms than this gives none (see :meth:`alternatives`)."""
    synonym_prob: float = 0.6
    """Probability of drawing from the synonyms when both kinds exist."""
    protected: frozenset[str] = PROTECTED_WORDS
    exclude: frozenset[str] = frozenset()
    """Words never produced (lower case, single words; a phrase is dropped when any of its words is
    excluded), e.g. a held-out test set's vocabulary."""
    _cache: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=dict, init=False, repr=False)
    _excluded_bases: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.word_prob <= 1.0:
            raise ValueError(f"word_prob must be in [0, 1], got {self.word_prob}")
        if self.senses < 1:
            raise ValueError(f"senses must be >= 1, got {self.senses}")
        if not 0.0 <= self.synonym_prob <= 1.0:
            raise ValueError(f"synonym_prob must be in [0, 1], got {self.synonym_prob}")
        if self.max_hyponyms < 0:
            raise ValueError(f"max_hyponyms must be >= 0, got {self.max_hyponyms}")
        self.exclude = frozenset(w.lower() for w in self.exclude)
        # a candidate is a base form ("spring"); the texts hold inflected words ("springs",
        # "springing"): exclude the base forms of the excluded words too
        self._excluded_bases = frozenset(b for w in self.exclude for p in ("n", "v", "a", "r")
                                         for b in self.wordnet.base_forms(w, p))

    # -- candidates ---------------------------------------------------------------------------

    def _guess_pos(self, word: str) -> str | None:
        best, best_n = None, 0
        for p in ("v", "n", "a", "r"):
            for base in self.wordnet.base_forms(word, p):
                n = len(self.wordnet.synsets(base, p))
                if n > best_n:
                    best, best_n = p, n
        return best

    def alternatives(self, base: str, pos: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Replacement base forms for ``base`` as ``pos``: ``(synonyms, more specific words)``, each
        sorted without duplicates (spaces in phrases). Synonyms: the lemmas of its first senses in
        ``domains`` (and similar adjectives). More specific: single-word hyponyms of its first
        sense, when that sense has at most ``max_hyponyms`` of them (a broad verb such as "move"
        has hundreds, most of them another motion: "crawl")."""
        key = (base, pos)
        if key in self._cache:
            return self._cache[key]
        senses = 1 if pos in ("a", "r") else self.senses
        synsets = [s for s in self.wordnet.synsets(base, pos)[:senses] if s.lexname in self.domains]
        if synsets:
            # a rarer sense of the word is another meaning more often than a shade of this one
            # ("jump" as startle: tagged 6 times against 19): keep the senses used half as often
            # as its most frequent one
            counts = [self.wordnet.tag_count(base, s) for s in synsets]
            top = max(counts)
            synsets = [s for s, c in zip(synsets, counts) if c * 2 >= top] if top > 0 else synsets[:1]
        synonyms: set[str] = set()
        for s in synsets:
            synonyms.update(s.lemmas)
            if pos == "a":
                for sim in self.wordnet.related(s, "&"):
                    synonyms.update(sim.lemmas)
        specific: set[str] = set()
        if self.hyponyms and synsets and pos in ("n", "v"):
            hypos = self.wordnet.related(synsets[0], "~")
            if len(hypos) <= self.max_hyponyms:
                specific.update(w for h in hypos for w in h.lemmas if "_" not in w)
        result = (self._keep(synonyms, base), self._keep(specific - synonyms, base))
        self._cache[key] = result
        return result

    def _keep(self, lemmas: set[str], base: str) -> tuple[str, ...]:
        out = set()
        for lemma in lemmas:
            phrase = lemma.replace("_", " ")
            words = phrase.split()
            if phrase == base or not phrase.replace(" ", "").replace("-", "").isalpha() or len(words) > 3:
                continue
            if any(w in self.exclude or w in self._excluded_bases or w in self.protected for w in words):
                continue
            out.add(phrase)
        return tuple(sorted(out))

    # -- captions -----------------------------------------------------------------------------

    def paraphrase(self, caption: str, rng: random.Random, tags: Sequence[str] | None = None) -> str:
        """``caption`` with some content words replaced. ``tags``: one per alphabetic word of the
        caption, in order: HumanML3D's ``lemma/POS`` (universal POS: ``NOUN VERB ADJ ADV ...``) or
        the POS alone; None (or a count that does not match the words): WordNet guesses the part of
        speech and the base form."""
        pieces = _TOKEN_RE.findall(caption)
        words = [p for p in pieces if p[0].isalpha()]
        if tags is not None and len(tags) != len(words):
            tags = None  # tokenised otherwise (hyphens, apostrophes): WordNet guesses instead
        out: list[str] = []
        k = 0
        for piece in pieces:
            if not piece[0].isalpha():
                out.append(piece)
                continue
            tag = tags[k] if tags is not None else None
            k += 1
            out.append(self._replace(piece, tag, rng))
        return _fix_articles("".join(out))

    def _replace(self, word: str, tag: str | None, rng: random.Random) -> str:
        low = word.lower()
        if low in self.protected or rng.random() >= self.word_prob:
            return word
        lemma, pos = None, None
        if tag is not None:
            lemma, _, upos = tag.rpartition("/")
            pos = _UPOS_TO_WN.get(upos)
        else:
            pos = self._guess_pos(low)
        if pos is None:
            return word
        if lemma and (lemma, pos) in self.wordnet:
            base = lemma
        else:
            bases = self.wordnet.base_forms(low, pos)
            if not bases:
                return word
            base = bases[0]
        synonyms, specific = self.alternatives(base, pos)
        if not synonyms and not specific:
            return word
        pool = synonyms if synonyms and (not specific or rng.random() < self.synonym_prob) else specific
        choice = inflect(rng.choice(pool), _form_of(low, base, pos))
        return choice.capitalize() if word[0].isupper() else choice


def exclusion_words(texts: Iterable[str]) -> frozenset[str]:
    """The lower-case words of ``texts``, for :attr:`CaptionParaphraser.exclude` (which also
    excludes their base forms: "springs" excludes "spring")."""
    words = {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}
    return frozenset(words)
