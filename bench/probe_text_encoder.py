#!/usr/bin/env python
"""How much of a clause's action a frozen pretrained LLM's hidden states hold, per layer, for words
the training captions never use.

    python bench/probe_text_encoder.py --data outputs/demo/dataset --rewordings outputs/demo/rewordings/synonyms.txt \
        [--model DIR] [--layers 0,2,4,8,12,16,24,30] [--paraphrase 0,1]

Clauses of the train split's captions (split at their connectors, one per labelled segment) train
a logistic-regression probe of the segment's action (13 classes) on the mean-pooled hidden states
of each layer; the clauses of the rewording file (test clips, words outside the templates) test it.
``--paraphrase 1`` adds each training clause reworded through WordNet with the rewording file's
words held out (``CaptionParaphraser(exclude=...)``): whether a model trained on reworded captions
could read unseen words from that layer. A cheap upper-bound check before a training run: a linear
probe needs far less than the motion decoder does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _clauses(root: Path, pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    from motiongpt.llm.tasks import split_clauses

    texts, labels = [], []
    for clip, caption in pairs:
        segs = json.loads((root / "labels" / f"{clip}.json").read_text())["segments"]
        parts = split_clauses(caption)
        if len(parts) != len(segs):
            continue
        texts += parts
        labels += [s["action"] for s in segs]
    return texts, labels


@torch.no_grad()
def _states(model, tok, texts: list[str], layers: list[int], batch: int = 64) -> dict[int, np.ndarray]:
    out: dict[int, list[np.ndarray]] = {k: [] for k in layers}
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], return_tensors="pt", padding=True)
        hs = model(**enc, output_hidden_states=True).hidden_states  # (layers+1) x (B, T, D)
        mask = enc["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        for k in layers:
            pooled = (hs[k] * mask).sum(1) / mask.sum(1)  # (B, D)
            out[k].append(pooled.float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _probe(x_tr: np.ndarray, y_tr: list[str], x_te: np.ndarray, y_te: list[str], l2: float = 1e-3) -> float:
    """Accuracy on (x_te, y_te) of an L2-regularised softmax regression fit on (x_tr, y_tr) (LBFGS)."""
    classes = sorted(set(y_tr))
    idx = {c: i for i, c in enumerate(classes)}
    xt = torch.from_numpy(x_tr).float()  # (N, D)
    yt = torch.tensor([idx[c] for c in y_tr])  # (N,)
    w = torch.zeros(xt.shape[1], len(classes), requires_grad=True)  # (D, C)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (torch.from_numpy(x_te).float() @ w + b).argmax(-1).tolist()
    return round(float(np.mean([classes[p] == y for p, y in zip(pred, y_te)])), 3)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset folder (labels/, texts/, train.txt)")
    ap.add_argument("--rewordings", required=True, help="id#caption file of held-out wordings")
    ap.add_argument("--model", default=None, help="model directory (default: SmolLM2-135M-Instruct, fetched)")
    ap.add_argument("--layers", default="0,2,4,6,8,12,16,24,30")
    ap.add_argument("--paraphrase", default="0,1", help="probe training sets: 0 templates, 1 + reworded")
    ap.add_argument("--max_train", type=int, default=1500, help="train clips read")
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    args = ap.parse_args(argv)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from motiongpt.data.humanml3d import parse_caption_line, read_split
    from motiongpt.data.paraphrase import CaptionParaphraser, exclusion_words
    from motiongpt.data.synthetic.rewording import read_caption_file
    from motiongpt.data.wordnet import load_wordnet
    from motiongpt.llm.pretrained import fetch_smollm2

    torch.manual_seed(0)
    root = Path(args.data)
    model_dir = args.model or str(fetch_smollm2())
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    layers = [int(x) for x in args.layers.split(",")]

    train_pairs = []
    for clip in read_split(root, "train")[: args.max_train]:
        line = (root / "texts" / f"{clip}.txt").read_text().splitlines()[0]
        train_pairs.append((clip, parse_caption_line(line).text))
    test_pairs = read_caption_file(args.rewordings)
    x_tr, y_tr = _clauses(root, train_pairs)
    x_te, y_te = _clauses(root, test_pairs)
    para = CaptionParaphraser(load_wordnet(), word_prob=0.6, exclude=exclusion_words(c for _, c in test_pairs))
    rng = random.Random(0)
    x_para = [para.paraphrase(t, rng) for t in x_tr]

    t0 = time.time()
    s_tr, s_para, s_te = (_states(model, tok, x, layers) for x in (x_tr, x_para, x_te))
    result: dict = {"train_clauses": len(x_tr), "test_clauses": len(x_te), "seconds_states": round(time.time() - t0, 1),
                    "rows": {}}
    for mode in args.paraphrase.split(","):
        row = {}
        for k in layers:
            x = s_tr[k] if mode == "0" else np.concatenate([s_tr[k], s_para[k]])
            y = y_tr if mode == "0" else y_tr + y_tr
            mu, sd = x.mean(0), x.std(0) + 1e-6
            row[k] = _probe((x - mu) / sd, y, (s_te[k] - mu) / sd, y_te)
        result["rows"]["templates" if mode == "0" else "templates+reworded"] = row
        print(("templates          " if mode == "0" else "templates+reworded "),
              " ".join(f"L{k}:{v:.2f}" for k, v in row.items()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
