#!/usr/bin/env python
"""Export a motion ``.npy`` (joints (T, 22, 3) or HumanML3D features (T, 263)) as a BVH file.

Example::

    python scripts/export_bvh.py --motion outputs/samples/0.npy --out outputs/samples/0.bvh --fix_foot

The BVH has the 22-joint SMPL hierarchy (Pelvis, L_Hip, R_Hip, Spine1, ...), a T-pose rest pose,
root translation plus ZXY Euler rotations solved by IK from the positions, and metres by default
(Blender imports it at human size with scale 1.0; ``--units cm`` for tools that expect
centimetres). See ``motiongpt.motion.bvh.write_bvh``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--motion", required=True, type=Path, help="input .npy: joints (T, 22, 3) or features (T, 263)")
    parser.add_argument("--out", required=True, type=Path, help="output .bvh file")
    parser.add_argument("--fps", type=float, default=20.0, help="frame rate of the motion (default 20)")
    parser.add_argument("--units", choices=("m", "cm"), default="m", help="BVH units (default m)")
    parser.add_argument("--bone_lengths", choices=("reference", "data"), default="reference",
                        help="skeleton of the file: the HumanML3D reference (default) or the clip's mean bone lengths")
    parser.add_argument("--fix_foot", action="store_true", help="remove foot sliding during contacts first")
    args = parser.parse_args(argv)

    from motiongpt.motion.bvh import write_bvh
    from motiongpt.motion.foot import fix_foot_skating
    from motiongpt.motion.io import motion_joints

    try:
        joints = motion_joints(args.motion, num_joints=22)
        if args.fix_foot:
            joints = fix_foot_skating(joints, fps=args.fps, name=str(args.motion))
        path = write_bvh(joints, args.out, fps=args.fps, units=args.units, bone_lengths=args.bone_lengths)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(joints)} frames at {args.fps:g} fps)")
    return 0


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main))
