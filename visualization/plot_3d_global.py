#!/usr/bin/env python
"""Render skeleton motions to animated GIFs: one ``<id>.gif`` per ``(T, 22, 3)`` joints file.

    python visualization/plot_3d_global.py --dir DATASET_ROOT_OR_JOINTS_DIR [--motion-list ID ...]
        [--out OUT_DIR] [--fps 20] [--max N]

``--dir`` is a dataset root with ``new_joints/`` (the first caption of ``texts/<id>.txt`` is the
title), a ``new_joints/`` folder, or any folder of joint ``.npy`` files. The logic lives in
:mod:`motiongpt.viz`; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys

from motiongpt.viz import render_directory


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="dataset root (with new_joints/ and texts/) or a folder of .npy joints")
    ap.add_argument("--motion-list", nargs="+", default=None, metavar="ID", help="ids (file stems) to render; default all")
    ap.add_argument("--out", default="outputs/visualization", help="output folder (default %(default)s)")
    ap.add_argument("--fps", type=float, default=None, help="frame rate (default 20, or 12.5 for 21-joint KIT-ML)")
    ap.add_argument("--max", type=int, default=None, metavar="N", help="render at most N motions")
    ap.add_argument("--format", choices=("gif", "mp4"), default="gif", help="output format (mp4 needs ffmpeg)")
    args = ap.parse_args(argv)
    try:
        written, failed = render_directory(
            args.dir, args.out, motion_ids=args.motion_list, fps=args.fps, max_count=args.max, ext=args.format, log=print
        )
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, reason in failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(f"{len(written)} written to {args.out}, {len(failed)} failed")
    return 1 if failed or not written else 0


if __name__ == "__main__":
    sys.exit(main())
