#!/usr/bin/env python
"""Render motions as a shaded capsule body (no SMPL model needed) to an animated GIF or MP4.

    python visualization/render.py --joints x.npy --out x.gif [--title TEXT] [--fps 20]
    python visualization/render.py --features x_feats.npy [--mean Mean.npy --std Std.npy] --out x.mp4
    python visualization/render.py --joints gen.npy gt.npy --titles generated "ground truth" --out cmp.gif

``--joints`` takes ``(T, 22, 3)`` / ``(T, 21, 3)`` joint files (feature files work there too),
``--features`` takes ``(T, 263)`` / ``(T, 251)`` HumanML3D / KIT-ML features (de-normalized
first with ``--mean/--std`` when given). Several files render side by side in one animation.
``.mp4`` needs ffmpeg on PATH or the ``imageio-ffmpeg`` package. ``--smpl_dir`` asks for an SMPL
mesh instead of capsules: this needs the ``smplx`` package and SMPL model files, and the tool says
what is missing. The logic lives in :mod:`motiongpt.viz.body`; this file only parses arguments.
"""

from __future__ import annotations

import argparse
import sys

from motiongpt.viz import BodyRenderOptions, load_features_file, load_motion_file, render_bodies, render_body
from motiongpt.viz.body import smpl_missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--joints", nargs="+", metavar="NPY", help="joint (T, J, 3) .npy file(s)")
    src.add_argument("--features", nargs="+", metavar="NPY", help="feature (T, 263) / (T, 251) .npy file(s)")
    ap.add_argument("--mean", default=None, help="with --features: Mean.npy to de-normalize with")
    ap.add_argument("--std", default=None, help="with --features: Std.npy to de-normalize with")
    ap.add_argument("--out", required=True, help="output .gif or .mp4")
    ap.add_argument("--title", default=None, help="caption (one motion)")
    ap.add_argument("--titles", nargs="+", default=None, metavar="TEXT", help="one caption per motion (several motions)")
    ap.add_argument("--fps", type=float, default=None, help="frame rate (default 20, or 12.5 for 21-joint KIT-ML)")
    ap.add_argument("--size", type=int, default=320, help="pixels per panel, square (default %(default)s)")
    ap.add_argument("--elev", type=float, default=BodyRenderOptions.elev, help="camera elevation, degrees (default %(default)s)")
    ap.add_argument("--azim", type=float, default=BodyRenderOptions.azim,
                    help="camera azimuth, degrees from the front towards the person's left (default %(default)s)")
    ap.add_argument("--no-follow", action="store_true", help="fixed camera over the whole motion instead of following the root")
    ap.add_argument("--smpl_dir", default=None, help="render an SMPL mesh from the model files in this folder (needs smplx)")
    args = ap.parse_args(argv)

    if args.smpl_dir is not None:
        missing = smpl_missing(args.smpl_dir)
        if missing:
            print("error: --smpl_dir needs " + "; and ".join(missing) + ". Run without --smpl_dir for the capsule body.", file=sys.stderr)
        else:
            print("error: fitting an SMPL mesh to joints is not implemented yet; run without --smpl_dir for the capsule body.", file=sys.stderr)
        return 2
    if (args.mean is None) != (args.std is None) or (args.mean is not None and args.features is None):
        ap.error("--mean and --std go together, with --features")
    files = args.joints or args.features
    if args.title is not None and args.titles is not None:
        ap.error("give --title (one motion) or --titles (one per motion), not both")
    titles = args.titles if args.titles is not None else ([args.title] * len(files) if len(files) == 1 else None)
    if titles is not None and len(titles) != len(files):
        ap.error(f"--titles has {len(titles)} entries for {len(files)} files")
    options = BodyRenderOptions(elev=args.elev, azim=args.azim, follow=not args.no_follow)
    try:
        if args.joints:
            motions = [load_motion_file(p) for p in files]
        else:
            motions = [load_features_file(p, args.mean, args.std) for p in files]
        fps = args.fps if args.fps is not None else (12.5 if all(m.shape[1] == 21 for m in motions) else 20.0)
        if len(motions) == 1:
            out = render_body(motions[0], args.out, title=titles[0] if titles else None, fps=fps, size=args.size, options=options)
        else:
            out = render_bodies(motions, args.out, titles=titles, fps=fps, size=args.size, options=options)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(motions)} motion(s), {max(m.shape[0] for m in motions)} frames at {fps:g} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
