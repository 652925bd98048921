"""Caption tokens, T2M's POS categories and the evaluator vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from motiongpt.data.humanml3d import parse_caption_line
from motiongpt.eval.text import POS_ENUMERATOR, Vocabulary, caption_tokens, pos_category


def _cap(line: str):
    return parse_caption_line(line)


def test_pos_categories_follow_t2m():
    assert pos_category("left", "ADJ") == "Loc_VIP"
    assert pos_category("hand", "NOUN") == "Body_VIP"
    assert pos_category("walk", "VERB") == "Act_VIP"
    assert pos_category("person", "NOUN") == "NOUN"
    assert pos_category("person", "PROPN") == "OTHER"  # not one of the nine tags
    assert pos_category("walk", "VERB", known=False) == "OTHER"  # unknown words are OTHER
    assert len(POS_ENUMERATOR) == 15


def test_vocabulary_build_encode_and_unknown_words():
    caps = [
        _cap("a man walks forward.#a/DET man/NOUN walk/VERB forward/ADV#0.0#0.0"),
        _cap("a man jumps.#a/DET man/NOUN jump/VERB#0.0#0.0"),
    ]
    vocab = Vocabulary.build(caps)
    assert vocab.words[:4] == ["<pad>", "unk", "sos", "eos"]
    assert vocab.words[4:6] == ["a", "man"]  # most frequent first, then alphabetical
    ids, pos, n = vocab.encode(caps[0], max_len=10)
    assert n == 6 and ids.shape == (12,) and pos.shape == (12, 15)
    assert [vocab.words[i] for i in ids[:n]] == ["sos", "a", "man", "walk", "forward", "eos"]
    assert pos[3].argmax() == POS_ENUMERATOR["Act_VIP"] and pos[n:].sum() == 0 and (ids[n:] == 0).all()
    # an unseen word maps to unk with the OTHER category
    ids2, pos2, _ = vocab.encode(["a/DET", "dog/NOUN"], max_len=10)
    assert ids2[2] == vocab.id("unk") and pos2[2].argmax() == POS_ENUMERATOR["OTHER"]
    # cropping to max_len keeps sos/eos
    ids3, _, n3 = vocab.encode(caps[0], max_len=2)
    assert n3 == 4 and [vocab.words[i] for i in ids3] == ["sos", "a", "man", "eos"]


def test_plain_strings_use_the_learned_surface_table(tmp_path):
    caps = [_cap("A man walks forward.#a/DET man/NOUN walk/VERB forward/ADV#0.0#0.0")]
    vocab = Vocabulary.build(caps)
    assert vocab.surface["walks"] == ["walk", "VERB"]
    assert caption_tokens("a man walks forward", vocab.surface) == caption_tokens(caps[0])
    assert caption_tokens("a man hops", vocab.surface)[-1] == ("hops", "OTHER")
    path = tmp_path / "vocab.json"
    path.write_text(vocab.to_json())
    again = Vocabulary.load(path)
    assert again.words == vocab.words and again.surface == vocab.surface
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="vocab.json"):
        Vocabulary.load(path)


def test_caption_tokens_rejects_what_it_cannot_read():
    with pytest.raises(ValueError):
        caption_tokens("!!!")
    with pytest.raises(ValueError):
        caption_tokens(42)
    assert caption_tokens(["Walk/VERB"]) == [("walk", "VERB")]
    assert np.array_equal(np.array(caption_tokens(["x"])), np.array([("x", "OTHER")]))


def test_surface_readings_depend_on_the_previous_word():
    caps = [
        _cap("a man steps back.#a/DET man/NOUN step/VERB back/ADV#0.0#0.0"),
        _cap("a man steps forward.#a/DET man/NOUN step/VERB forward/ADV#0.0#0.0"),
        _cap("a man takes two steps.#a/DET man/NOUN take/VERB two/NUM step/NOUN#0.0#0.0"),
    ]
    vocab = Vocabulary.build(caps)
    assert caption_tokens("a man steps back", vocab.surface)[2] == ("step", "VERB")
    assert caption_tokens("someone takes two steps", vocab.surface)[-1] == ("step", "NOUN")
    assert "man steps" not in vocab.surface  # same reading as the word alone: not stored
