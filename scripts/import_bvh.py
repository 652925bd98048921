#!/usr/bin/env python
"""Import a BVH motion file (CMU, Mixamo, SMPL-named, or any rig with a joint map) as a clip.

Examples::

    python scripts/import_bvh.py --bvh walk.bvh --out outputs/imported
    python scripts/import_bvh.py --bvh take.bvh --joint_map my_rig.json --out outputs/imported \\
        --name take01 --fix_foot --dataset data/my_hml --caption "a person walks in a circle" --split train

Writes (atomically) ``<out>/<name>.npy``: float32 (T, 22, 3) joints, metres, y up, 20 fps, and
``<out>/<name>_feats.npy``: float32 (T - 1, 263) HumanML3D features. With ``--dataset DIR`` it
also writes a HumanML3D-layout entry there: ``new_joint_vecs/<name>.npy``, ``new_joints/<name>.npy``
and ``texts/<name>.txt`` (``--caption``, required then), and with ``--split`` appends the id to
``<split>.txt``; ``Mean.npy``/``Std.npy`` are left as they are. Prints a JSON summary (detected
joint map, units, up axis, frame counts, paths).

How the file is read (``motiongpt.motion.bvh.bvh_to_joints``): forward kinematics over the
file's channels (any rotation order); joints mapped to the 22 SMPL joints by the built-in map
for SMPL, Mixamo (``mixamorig:``) or CMU names, detected automatically, or by ``--joint_map``, a
JSON object ``{"L_Hip": "LeftUpLeg", ...}`` naming all 22 SMPL joints (a value may be a list of
joint names: their mean position); units detected from the leg length (``--units`` overrides:
m, cm, mm, inch, ft, dm, cmu, or metres per unit); a z-up file rotated to y up (``--up``
overrides); resampled to 20 fps by linear interpolation of joint positions. ``--fix_foot``
removes foot sliding (``motiongpt.motion.foot.fix_foot_skating``) before the features.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def _units(value: str) -> str | float:
    try:
        return float(value)
    except ValueError:
        return value


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bvh", required=True, type=Path, help="input .bvh file")
    parser.add_argument("--out", required=True, type=Path, help="output folder for <name>.npy and <name>_feats.npy")
    parser.add_argument("--name", default=None, help="clip name (default: the BVH file's stem)")
    parser.add_argument("--joint_map", type=Path, default=None,
                        help="JSON {smpl_name: bvh_name} for all 22 SMPL joints (default: auto-detect)")
    parser.add_argument("--fix_foot", action="store_true", help="remove foot sliding during contacts")
    parser.add_argument("--up", default="auto", help="the file's up axis: auto (default), y, z, -y, x, ...")
    parser.add_argument("--units", type=_units, default="auto",
                        help="auto (default), m, cm, mm, inch, ft, dm, cmu or metres per unit")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="also write a HumanML3D-layout entry into this folder")
    parser.add_argument("--caption", default=None, help="caption of the dataset entry (texts/<name>.txt)")
    parser.add_argument("--split", default=None, help="append the clip id to <dataset>/<split>.txt (e.g. train)")
    args = parser.parse_args(argv)

    from motiongpt.motion.bvh import import_bvh

    try:
        summary = import_bvh(
            args.bvh, args.out, name=args.name, joint_map=args.joint_map, fix_foot=args.fix_foot,
            up=args.up, units=args.units, dataset_dir=args.dataset, caption=args.caption, split=args.split,
        )
    except ValueError as exc:  # BVHError is a ValueError: malformed file, bad map, bad arguments
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))
