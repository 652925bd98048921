"""Synthetic captions: lexicon coverage, HumanML3D token format, faithfulness to the labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from motiongpt.data.humanml3d import read_captions
from motiongpt.data.synthetic import build_synthetic_dataset
from motiongpt.data.synthetic.captions import (
    ANGLE_WORDS,
    COUNT_ADV,
    LEXICON,
    NUM_WORD,
    _segment_grid,
    make_captions,
    segment_phrases,
    tag_caption,
    template_vocabulary,
)

UPOS = {"NOUN", "VERB", "ADJ", "ADV", "ADP", "DET", "NUM", "PRON", "CCONJ", "SCONJ", "PART"}
SLOW_WORDS = {"slowly", "slow", "leisurely", "strolls"}
FAST_WORDS = {"quickly", "briskly", "fast", "hurries"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sync") / "c"
    build_synthetic_dataset(out, 60, seed=3, workers=1)
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_every_template_word_in_lexicon() -> None:
    vocab = template_vocabulary()
    assert len(vocab) > 80
    assert sorted(vocab - set(LEXICON)) == []
    assert all(pos in UPOS for _, pos in LEXICON.values())


def test_tagging_rules() -> None:
    toks = tag_caption("a man kicks with his left leg, then turns to the right and walks forward.")
    assert toks == [
        "a/DET", "man/NOUN", "kick/VERB", "with/ADP", "his/DET", "left/ADJ", "leg/NOUN", "then/ADV", "turn/VERB",
        "to/ADP", "the/DET", "right/NOUN", "and/CCONJ", "walk/VERB", "forward/ADV",
    ]
    assert tag_caption("someone does two squats, then squats.") == [
        "someone/PRON", "do/VERB", "two/NUM", "squat/NOUN", "then/ADV", "squat/VERB",
    ]
    assert tag_caption("takes a few steps, steps back at a fast pace") == [
        "take/VERB", "a/DET", "few/ADJ", "step/NOUN", "step/VERB", "back/ADV", "at/ADP", "a/DET", "fast/ADJ", "pace/NOUN",
    ]
    with pytest.raises(KeyError):
        tag_caption("a person moonwalks")


def test_caption_files(corpus: Path) -> None:
    for cid in (corpus / "all.txt").read_text().split():
        caps = read_captions(corpus / "texts" / f"{cid}.txt")
        assert 3 <= len(caps) <= 5
        assert len({c.text for c in caps}) == len(caps)
        for c in caps:
            assert c.is_whole_clip and c.text == c.text.lower() and c.text.endswith(".")
            assert c.tokens, c.text
            for tok in c.tokens:
                word, pos = tok.split("/")
                assert word.isalpha() and word == word.lower() and pos in UPOS, tok
            # one token per word of the text (punctuation dropped), verbs and nouns lemmatized
            assert len(c.tokens) == len(_words(c.text))
            assert list(c.tokens) == tag_caption(c.text)


def _side_words(seg: dict) -> set[str]:
    p, a = seg["params"], seg["action"]
    if a in ("wave", "kick") or (a == "raise_arm" and p["side"] != "both"):
        return {p["side"]}
    if a in ("sidestep", "turn", "spin"):
        return {p["direction"]}
    return set()


def _check_caption(text: str, segments: list[dict]) -> None:
    words = _words(text)
    allowed_sides = set().union(*(_side_words(s) for s in segments))
    for side in ("left", "right"):
        if side in words:
            assert side in allowed_sides, (text, segments)
    for s in segments:
        p, a = s["params"], s["action"]
        if a in ("wave", "kick") or (a == "raise_arm" and p["side"] != "both"):
            assert p["side"] in words, text  # hand / leg always named
        if a == "raise_arm" and p["side"] == "both":
            assert "both" in words or "arms" in words or "hands" in words, text
    # speed words only from the matching band
    bands = {s["params"].get("speed_band") for s in segments if s["action"] in ("walk", "walk_backward")}
    if SLOW_WORDS & set(words):
        assert "slow" in bands, text
    if FAST_WORDS & set(words) and not {"run"} & {s["params"].get("speed_band") for s in segments}:
        assert "fast" in bands, text
    actions = [s["action"] for s in segments]
    if "jog" in " ".join(words):
        assert any(s["action"] == "run" and s["params"]["speed_band"] == "jog" for s in segments), text
    if "runs" in words:
        assert any(s["action"] == "run" and s["params"]["speed_band"] == "run" for s in segments), text
    # count adverbs and number words match labelled counts / steps
    counts = {s["params"]["count"] for s in segments if "count" in s["params"]}
    steps = {s["params"].get("steps") for s in segments}
    joined = " ".join(words)
    for n, adv in COUNT_ADV.items():
        if re.search(rf"\b{adv}\b", joined):
            assert n in counts, text
    for n, word in NUM_WORD.items():
        for m in re.finditer(rf"\b{word} (\w+)", joined):
            noun = m.group(1)
            if noun == "steps":
                assert n in steps, text
            elif noun in ("squats", "jumps", "kicks", "times"):
                assert n in counts, text
    # turn words follow the angle band
    for s in segments:
        if s["action"] != "turn":
            continue
        nominal = s["params"]["angle_nominal"]
        others = [w for k, w in ANGLE_WORDS.items() if k != nominal]
        assert not any(o in joined for o in others), text
        if nominal != 180 and "spin" not in actions:
            assert "around" not in words, text
        if nominal != 45:
            assert "slightly" not in words and "slight" not in words, text


def test_captions_faithful_in_corpus(corpus: Path) -> None:
    n = 0
    for cid in (corpus / "all.txt").read_text().split():
        label = json.loads((corpus / "labels" / f"{cid}.json").read_text())
        for cap in read_captions(corpus / "texts" / f"{cid}.txt"):
            _check_caption(cap.text, label["segments"])
            n += 1
    assert n >= 180


def test_every_phrase_faithful() -> None:
    """Exhaustively: every phrase of every parameter combination passes the faithfulness rules."""
    rng = np.random.default_rng(0)
    for seg in _segment_grid():
        seg = {"action": seg["action"], "params": {"count": 1, "direction": "left", **seg["params"]}}
        if seg["action"] == "turn":
            seg["params"]["angle_deg"] = float(seg["params"]["angle_nominal"])
        for pos in ("his", "her", "their"):
            for phrase in segment_phrases(seg, pos):
                _check_caption(f"a person {phrase}.", [seg])
        for text, tokens in make_captions([seg], rng, 5):
            assert tokens == tag_caption(text)


def test_faithfulness_check_can_fail() -> None:
    wave_left = {"action": "wave", "params": {"side": "left", "count": 2}}
    with pytest.raises(AssertionError):
        _check_caption("a person waves their right hand twice.", [wave_left])
    with pytest.raises(AssertionError):
        _check_caption("a person waves their left hand three times.", [wave_left])
    walk = {"action": "walk", "params": {"speed_band": "normal", "steps": 4}}
    with pytest.raises(AssertionError):
        _check_caption("a person walks forward quickly.", [walk])
