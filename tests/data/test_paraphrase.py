"""Caption rewording through WordNet: facts kept, words changed, exclusions honoured."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from motiongpt.data.paraphrase import PROTECTED_WORDS, CaptionParaphraser, exclusion_words, inflect
from motiongpt.data.synthetic.captions import _segment_grid, make_captions, tag_caption
from motiongpt.llm.tasks import split_clauses


@pytest.mark.parametrize("base,form,want", [
    ("jump", "s", "jumps"), ("hurry", "s", "hurries"), ("punch", "s", "punches"), ("stay", "s", "stays"),
    ("leap", "ing", "leaping"), ("amble", "ing", "ambling"), ("hop", "ing", "hopping"), ("lie", "ing", "lying"),
    ("spin around", "s", "spins around"), ("spin around", "ing", "spinning around"),
    ("stroll", "ed", "strolled"), ("hurry", "ed", "hurried"), ("move", "ed", "moved"), ("walk", "base", "walk"),
])
def test_inflect(base, form, want):
    assert inflect(base, form) == want


def test_inflect_rejects_unknown_form():
    with pytest.raises(ValueError, match="unknown form 'en'"):
        inflect("walk", "en")


def _corpus_captions(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    grid = _segment_grid()
    out = []
    for _ in range(n):
        segs = [grid[int(i)] for i in rng.integers(0, len(grid), size=int(rng.integers(1, 4)))]
        out.extend(text for text, _ in make_captions(segs, rng, 1))
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_rewording_keeps_facts_and_clause_order(wordnet):
    para = CaptionParaphraser(wordnet)
    captions = _corpus_captions(150)
    changed = 0
    for i, cap in enumerate(captions):
        new = para.paraphrase(cap, random.Random(i), tag_caption(cap))
        changed += new != cap
        # sides, counts, numbers and connectors stay, in the same order
        kept = [w for w in _words(cap) if w in PROTECTED_WORDS and w not in ("a", "an")]
        assert [w for w in _words(new) if w in set(kept)] == kept, (cap, new)
        # the clauses are still found, one per action
        assert len(split_clauses(new)) == len(split_clauses(cap)), (cap, new)
    assert changed >= 0.9 * len(captions)


def test_rewording_is_seeded_and_word_prob_zero_is_identity(wordnet):
    cap = "a man walks forward slowly, then jumps twice and then waves his left hand."
    para = CaptionParaphraser(wordnet)
    assert para.paraphrase(cap, random.Random(3)) == para.paraphrase(cap, random.Random(3))
    outs = {para.paraphrase(cap, random.Random(s)) for s in range(20)}
    assert len(outs) > 10
    assert CaptionParaphraser(wordnet, word_prob=0.0).paraphrase(cap, random.Random(0)) == cap


def test_rewording_uses_the_words_sense_and_inflection(wordnet):
    para = CaptionParaphraser(wordnet, word_prob=1.0, synonym_prob=1.0)
    synonyms, _ = para.alternatives("jump", "v")
    assert {"leap", "bound", "spring"} <= set(synonyms)
    # "back" as a motion only: the supporting-someone sense (verb.social) gives nothing
    syn_back, _ = para.alternatives("back", "v")
    assert "support" not in syn_back and "endorse" not in syn_back
    # and a rarer sense of the word is left out: "jump" as startle (tagged 6 times against 19)
    assert "startle" not in synonyms and "start" not in synonyms
    # third person stays third person; the tag's lemma is used
    for s in range(10):
        word = para.paraphrase("jumps", random.Random(s), ["jump/VERB"])
        assert word.endswith("s") and word != "jumps"
        assert word[:-1] in synonyms or word[:-2] in synonyms or word[:-3] + "y" in synonyms


def test_articles_agree_with_the_new_word(wordnet):
    para = CaptionParaphraser(wordnet, word_prob=1.0)
    for s in range(40):
        new = para.paraphrase("a man walks and an person waits", random.Random(s))
        for art, word in re.findall(r"\b(a|an) ([a-z])", new):
            assert (art == "an") == (word in "aeiou"), new


def test_excluded_words_and_their_base_forms_never_appear(wordnet):
    held_out = ["a gentleman springs upward twice", "somebody ambles onward and pivots to the left"]
    exclude = exclusion_words(held_out)
    assert {"gentleman", "springs", "ambles"} <= exclude
    para = CaptionParaphraser(wordnet, word_prob=1.0, exclude=exclude)
    syn, spec = para.alternatives("jump", "v")
    assert "spring" not in syn and "leap" in syn
    assert "amble" not in para.alternatives("walk", "v")[1]
    for s in range(100):
        new = para.paraphrase("a man jumps twice then walks forward", random.Random(s))
        assert not {"spring", "springs", "gentleman", "amble", "ambles"} & set(_words(new)), new


def test_tags_of_another_length_fall_back_to_wordnet(wordnet):
    para = CaptionParaphraser(wordnet, word_prob=1.0)
    new = para.paraphrase("a man jumps", random.Random(0), ["a/DET"])  # one tag for three words
    assert new.startswith(("a ", "an ")) and new != "a man jumps"


def test_invalid_settings_name_the_field(wordnet):
    with pytest.raises(ValueError, match="word_prob"):
        CaptionParaphraser(wordnet, word_prob=1.5)
    with pytest.raises(ValueError, match="senses"):
        CaptionParaphraser(wordnet, senses=0)
