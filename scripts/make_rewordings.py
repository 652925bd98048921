#!/usr/bin/env python
"""Write a rewording test set: one ``<clip id>#<caption>`` line per clip of a synthetic corpus split,
each caption worded outside the caption templates (``motiongpt.data.synthetic.rewording``).

Example::

    python scripts/make_rewordings.py --data_root outputs/demo/dataset --split test --style synonyms \\
        --out outputs/demo/rewordings/synonyms.txt
    python eval.py ... --captions outputs/demo/rewordings/synonyms.txt

Styles: ``synonyms`` (clauses joined with ", then ", as the templates) and ``connectors`` (the same
clauses joined with other connectors: "after that", "followed by", "before", sentence breaks...).
The file depends only on the corpus, --split, --style, --seed and --max_clips.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    from motiongpt.data.synthetic.rewording import STYLES, write_caption_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", required=True, type=Path, help="synthetic corpus (split files and labels/)")
    parser.add_argument("--split", default="test", help="split to reword (default: test)")
    parser.add_argument("--style", required=True, choices=STYLES, help="synonyms or connectors")
    parser.add_argument("--out", required=True, type=Path, help="caption file to write (replaced atomically)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phrasings (default 0)")
    parser.add_argument("--max_clips", type=int, default=None, help="only the first N clips of the split")
    args = parser.parse_args(argv)
    try:
        n = write_caption_file(args.data_root, args.split, args.style, args.out, seed=args.seed,
                               max_clips=args.max_clips)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} captions ({args.style}) of split {args.split} to {args.out}")
    return 0


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))
