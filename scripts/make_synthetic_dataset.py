#!/usr/bin/env python
"""Generate the synthetic HumanML3D-layout motion corpus (the project's embedded training data).

Example::

    python scripts/make_synthetic_dataset.py --out data/synthetic --num_clips 2000 --seed 0

Writes new_joints/, new_joint_vecs/, texts/, labels/, the split files, Mean.npy/Std.npy and
meta.json (see ``motiongpt.data.synthetic.corpus``). The output depends only on --seed and
--num_clips, not on --workers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output directory (must be absent or empty)")
    parser.add_argument("--num_clips", type=int, default=2000, help="number of clips (>= 10; default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default min(2, cpu count))")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    args = parser.parse_args(argv)

    from motiongpt.data.synthetic import build_synthetic_dataset

    try:
        summary = build_synthetic_dataset(args.out, args.num_clips, args.seed, workers=args.workers, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))
