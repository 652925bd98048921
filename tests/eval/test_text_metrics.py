"""m2t text metrics on tiny hand-checked sentences."""

from __future__ import annotations

import math

import pytest

from motiongpt.eval.text_metrics import bertscore, bleu, cider, rouge_l, text_metrics, tokenize


def test_tokenize_drops_punctuation_and_case():
    assert tokenize("A person walks, then Jumps!") == ["a", "person", "walks", "then", "jumps"]


def test_bleu_by_hand():
    hyp = ["the cat is on the mat"]
    refs = [["the cat sat on the mat"]]
    # unigrams: the x2, cat, on, mat match; "is" does not -> 5/6; same length -> no brevity penalty
    b = bleu(hyp, refs)
    assert b["bleu1"] == pytest.approx(5 / 6)
    # bigrams: the cat, on the, the mat of 5 -> BLEU-2 = sqrt(5/6 * 3/5)
    assert b["bleu2"] == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    assert b["bleu4"] == 0.0  # no 4-gram in common: 0 without smoothing
    assert bleu(["the cat sat on the mat"], refs)["bleu4"] == pytest.approx(1.0)
    # brevity penalty: a 3-word hypothesis against a 6-word reference, all unigrams matching
    assert bleu(["the cat sat"], refs)["bleu1"] == pytest.approx(math.exp(1 - 6 / 3))
    # smoothing makes the zero 4-gram case positive
    assert bleu(hyp, refs, smoothing="method1")["bleu4"] > 0.0


def test_rouge_l_by_hand():
    # LCS "the cat on the mat" = 5 of 6 words on both sides -> F1 5/6
    assert rouge_l(["the cat is on the mat"], [["the cat sat on the mat"]]) == pytest.approx(5 / 6)
    # best of several references
    assert rouge_l(["a b c d"], [["x y", "a b c d"]]) == pytest.approx(1.0)
    assert rouge_l(["a b"], [["c d"]]) == 0.0


def test_cider_of_exact_disjoint_captions_is_ten():
    # each n-gram occurs in one of two images: idf log(2) > 0, identical tf-idf vectors -> cosine 1
    # per n, no length penalty, x10 -> 10
    preds = ["a person walks forward", "someone jumps high twice"]
    refs = [["a person walks forward"], ["someone jumps high twice"]]
    assert cider(preds, refs) == pytest.approx(10.0)
    swapped = cider(preds[::-1], refs)
    assert swapped == pytest.approx(0.0)


def test_text_metrics_bundle_and_bertscore_skip(tmp_path):
    out = text_metrics(["a person walks forward."], [["a person walks forward", "someone walks ahead"]])
    assert out["bleu1"] == pytest.approx(1.0) and out["rouge_l"] == pytest.approx(1.0)
    assert "skipped" in out["bertscore"]
    missing = bertscore(["x"], [["x"]], model_path=tmp_path / "no_model")
    assert "not found" in missing["skipped"]
    with pytest.raises(ValueError, match="string"):
        bleu(["a"], ["a"])  # references must be lists
