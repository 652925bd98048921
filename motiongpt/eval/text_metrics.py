"""Motion-to-text metrics: BLEU@1/@4, ROUGE-L, CIDEr, and BERTScore when its model is local.

Implementations come from maintained PyPI packages (imported on use, so the rest of
``motiongpt.eval`` works without them):

* **BLEU** (``nltk.translate.bleu_score.corpus_bleu``): corpus-level BLEU (clipped n-gram counts
  summed over the corpus, brevity penalty against the closest reference length), the definition
  COCO-caption / NLGEval report and TM2T / MotionGPT's m2t tables use. **No smoothing** by default,
  the standard choice for corpus-level BLEU (smoothing exists for single sentences, whose 4-gram
  counts are often zero). When the corpus has no matching n-gram of some order, the score is 0
  (returned directly, without nltk's warning). ``smoothing="method1"`` .. ``"method7"`` select
  nltk's Chen & Cherry smoothing for sentence-level use.
* **ROUGE-L** (``rouge_score``): the F-measure of the longest common subsequence, the best over a
  sample's references (``RougeScorer.score_multi``), averaged over samples. COCO's ROUGE-L weights
  recall with beta = 1.2 instead of F1, so values differ slightly from NLGEval's.
* **CIDEr** (``pycocoevalcap.cider.Cider``, the CIDEr-D of COCO-caption: tf-idf n-grams 1-4,
  Gaussian length penalty sigma 6, clipped counts, x10), fed with our tokenization instead of
  its Java PTB tokenizer (no Java needed). Document frequencies come from the references of the
  evaluated set, so CIDEr depends on the set, as in every m2t paper.
* **BERTScore** (``bert_score``): only when the package is installed *and* the model is already
  on disk (never downloaded); otherwise its entry says why it was skipped.

Tokenization for all metrics: lowercase, words of letters, digits and apostrophes
(punctuation dropped), the PTB tokenizer's effect on plain captions.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from typing import Any, Sequence

__all__ = ["tokenize", "bleu", "rouge_l", "cider", "bertscore", "text_metrics"]

_WORD = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lowercased words (letters, digits, apostrophes); punctuation is dropped."""
    return _WORD.findall(str(text).lower())


def _check(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> list[list[str]]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("no predictions to score")
    refs = []
    for i, r in enumerate(references):
        if isinstance(r, str):
            raise ValueError(f"references[{i}] is a string; pass a list of reference captions per prediction")
        r = [str(x) for x in r if str(x).strip()]
        if not r:
            raise ValueError(f"references[{i}] is empty")
        refs.append(r)
    return refs


def _import(module: str, pin: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is needed for this text metric: pip install {pin}") from e


def bleu(
    predictions: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4, smoothing: str | None = None
) -> dict[str, float]:
    """Corpus BLEU@1..``max_n`` (``{"bleu1": ..., "bleu4": ...}``, in [0, 1])."""
    refs = _check(predictions, references)
    bleu_mod = _import("nltk.translate.bleu_score", "nltk")
    hyps = [tokenize(p) for p in predictions]
    ref_toks = [[tokenize(r) for r in rs] for rs in refs]
    smooth = None
    if smoothing is not None:
        smooth = getattr(bleu_mod.SmoothingFunction(), smoothing, None)
        if smooth is None or not smoothing.startswith("method"):
            raise ValueError(f"unknown BLEU smoothing {smoothing!r}; use None or 'method0'..'method7'")
    # clipped n-gram matches over the corpus: an order without a single match gives BLEU 0 (what
    # nltk returns too, after warning; checked here so nothing is printed)
    matches = [0] * max_n
    for h, rs in zip(hyps, ref_toks):
        for n in range(1, max_n + 1):
            hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            best: Counter = Counter()
            for r in rs:
                best |= Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, best[g]) for g, c in hc.items())
    out = {}
    for n in range(1, max_n + 1):
        if smooth is None and min(matches[:n]) == 0:
            out[f"bleu{n}"] = 0.0
            continue
        weights = tuple([1.0 / n] * n)
        out[f"bleu{n}"] = float(bleu_mod.corpus_bleu(ref_toks, hyps, weights=weights, smoothing_function=smooth))
    return out


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean ROUGE-L F1 (best reference per sample), in [0, 1]."""
    refs = _check(predictions, references)
    scorer_mod = _import("rouge_score.rouge_scorer", "rouge-score")

    class _Tok:
        # our tokenization, so every metric sees the same words
        def tokenize(self, text: str) -> list[str]:
            return tokenize(text)

    scorer = scorer_mod.RougeScorer(["rougeL"], tokenizer=_Tok())
    total = 0.0
    for p, rs in zip(predictions, refs):
        total += scorer.score_multi(rs, p)["rougeL"].fmeasure
    return total / len(refs)


def cider(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """CIDEr-D (COCO-caption's ``Cider``) of the predictions against their references."""
    refs = _check(predictions, references)
    cider_mod = _import("pycocoevalcap.cider.cider", "pycocoevalcap")
    gts = {i: [" ".join(tokenize(r)) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(tokenize(p))] for i, p in enumerate(predictions)}
    score, _ = cider_mod.Cider().compute_score(gts, res)
    return float(score)


def bertscore(
    predictions: Sequence[str], references: Sequence[Sequence[str]], model_path: str | os.PathLike | None = None
) -> dict[str, Any]:
    """BERTScore F1 with a model already on disk, else ``{"skipped": reason}`` (never downloads).

    Args:
        model_path: a local Hugging Face model directory (e.g. a copy of ``roberta-large``); None
            looks for nothing and skips.
    """
    refs = _check(predictions, references)
    if model_path is None:
        return {"skipped": "BERTScore needs a local model directory (model_path); none was given"}
    if not os.path.isdir(model_path):
        return {"skipped": f"BERTScore model directory {model_path} not found (models are never downloaded)"}
    try:
        from bert_score import score as bs_score  # optional dependency
    except ImportError:
        return {"skipped": "the bert_score package is not installed (pip install bert-score)"}

    # bert_score takes a model *type* and hashes layers by name; pointing model_type at a local
    # directory with num_layers given loads it through transformers from disk only.
    from transformers import AutoConfig

    n_layers = int(AutoConfig.from_pretrained(model_path, local_files_only=True).num_hidden_layers)
    _, _, f1 = bs_score(list(predictions), [list(r) for r in refs], model_type=str(model_path), num_layers=n_layers)
    return {"bertscore_f1": float(f1.mean()), "model": str(model_path)}


def text_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    *,
    bertscore_model: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """All m2t metrics: ``{"bleu1", "bleu4", "rouge_l", "cider", "bertscore": {...}, "n"}``.

    BLEU and ROUGE-L are in [0, 1] (papers print them x100); CIDEr is COCO's scale (x10 built in).
    """
    refs = _check(predictions, references)
    b = bleu(predictions, refs)
    out: dict[str, Any] = {
        "bleu1": b["bleu1"],
        "bleu4": b["bleu4"],
        "rouge_l": rouge_l(predictions, refs),
        "cider": cider(predictions, refs),
        "bertscore": bertscore(predictions, refs, bertscore_model),
        "n": len(refs),
    }
    if not all(math.isfinite(v) for k, v in out.items() if isinstance(v, float)):
        raise ValueError("a text metric came out non-finite")
    return out
