#!/usr/bin/env python
"""Render skeleton motions to animated GIF / MP4: one file per motion of a folder, or several
motions side by side in one animation.

    python visualization/plot_3d_global.py --dir DATASET_ROOT_OR_JOINTS_DIR [--motion-list ID ...]
        [--out OUT_DIR] [--fps 20] [--max N] [--format gif|mp4]
    python visualization/plot_3d_global.py --motions gen.npy gt.npy [--titles "generated" "ground truth"]
        [--title CAPTION] --out compare.mp4 [--fps 20]

``--dir`` is a dataset root with ``new_joints/`` (the first caption of ``texts/<id>.txt`` is the
title), a ``new_joints/`` folder, or any folder of joint ``.npy`` files. ``--motions`` takes joint
``(T, J, 3)`` or feature ``(T, 263)`` files and draws one panel each (shorter ones hold their last
frame); ``--out`` is then the output file (``.mp4`` or ``.gif``). MP4 needs ffmpeg on PATH or the
``imageio-ffmpeg`` package. The logic lives in :mod:`motiongpt.viz`; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys

from motiongpt.viz import load_motion_file, render_directory, render_motions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dir", help="dataset root (with new_joints/ and texts/) or a folder of .npy joints")
    src.add_argument("--motions", nargs="+", metavar="NPY", help="joint or feature .npy files to show side by side in one animation")
    ap.add_argument("--motion-list", nargs="+", default=None, metavar="ID", help="with --dir: ids (file stems) to render; default all")
    ap.add_argument("--titles", nargs="+", default=None, metavar="TEXT", help="with --motions: one caption per motion")
    ap.add_argument("--title", default=None, help="with --motions: an overall caption above the panels")
    ap.add_argument("--out", default=None, help="--dir: output folder (default outputs/visualization); --motions: output .gif/.mp4 file (required)")
    ap.add_argument("--fps", type=float, default=None, help="frame rate (default 20, or 12.5 for 21-joint KIT-ML)")
    ap.add_argument("--max", type=int, default=None, metavar="N", help="with --dir: render at most N motions")
    ap.add_argument("--format", choices=("gif", "mp4"), default="gif", help="with --dir: output format (mp4 needs ffmpeg or imageio-ffmpeg)")
    args = ap.parse_args(argv)
    if args.motions is not None:
        return _side_by_side(ap, args)
    if args.titles is not None or args.title is not None:
        ap.error("--titles/--title go with --motions (with --dir, captions come from texts/)")
    out = args.out or "outputs/visualization"
    try:
        written, failed = render_directory(
            args.dir, out, motion_ids=args.motion_list, fps=args.fps, max_count=args.max, ext=args.format, log=print
        )
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, reason in failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(f"{len(written)} written to {out}, {len(failed)} failed")
    return 1 if failed or not written else 0


def _side_by_side(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.out is None:
        ap.error("--motions needs --out FILE (.gif or .mp4)")
    if args.motion_list is not None or args.max is not None:
        ap.error("--motion-list/--max go with --dir")
    if args.titles is not None and len(args.titles) != len(args.motions):
        ap.error(f"--titles has {len(args.titles)} entries for {len(args.motions)} --motions files")
    try:
        motions = [load_motion_file(p) for p in args.motions]
        fps = args.fps if args.fps is not None else (12.5 if all(m.shape[1] == 21 for m in motions) else 20.0)
        out = render_motions(motions, args.out, titles=args.titles, fps=fps, title=args.title)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(motions)} panels, {max(m.shape[0] for m in motions)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
