"""Rendering speed: a 200-frame (10 s) clip as GIF and MP4, skeleton (plot3d) vs capsule body.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_viz.py [--joints path/to/joints.npy]

Default clip: the official HumanML3D clip 012314 from ../shared (padded to 200 frames); without
../shared a procedural motion of the same length is used. Prints wall and CPU seconds per output
(CPU time excludes the ffmpeg subprocess of MP4 output).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from motiongpt.viz import ffmpeg_available, render_body, render_motion

SHARED_CLIP = Path(__file__).resolve().parents[1].parent / "shared/data/humanml3d/new_joints/012314.npy"


def load_clip(path: Path | None, frames: int = 200) -> tuple[np.ndarray, str]:
    if path is None and SHARED_CLIP.is_file():
        path = SHARED_CLIP
    if path is None:
        from motiongpt.motion import random_motion

        return random_motion(frames, seed=0), "procedural motion"
    joints = np.load(path)  # (T, 22, 3)
    while len(joints) < frames:  # hold the tail so the clip is exactly `frames` long
        joints = np.concatenate([joints, joints[-(frames - len(joints)):]])
    return joints[:frames], path.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--joints", type=Path, default=None, help="a (T, 22, 3) npy; default: shared clip 012314")
    args = ap.parse_args()
    clip, name = load_clip(args.joints)
    exts = ["gif"] + (["mp4"] if ffmpeg_available() else [])
    print(f"clip: {name}, {len(clip)} frames")
    print("| renderer | format | wall s | CPU s |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, fn in (("plot3d skeleton", render_motion), ("capsule body", render_body)):
            for ext in exts:
                w, c = time.perf_counter(), time.process_time()
                fn(clip, Path(tmp) / f"{label.split()[0]}.{ext}", title=f"{name}, {len(clip)} frames")
                print(f"| {label} | {ext} | {time.perf_counter() - w:.1f} | {time.process_time() - c:.1f} |", flush=True)


if __name__ == "__main__":
    main()
