"""Benchmark the HumanML3D feature conversions on ONE CPU core.

    .venv/bin/python bench/bench_features.py [--clips 1000] [--repeats 5] [--json out.json]

Clips are HumanML3D-like (40..196 frames at 20 fps): random crops of the real clip 012314 with a
random global yaw, translation and (half of them) mirroring when ``../shared/data/humanml3d`` is
present, else synthetic motions (:func:`motiongpt.motion.random_motion`, forward kinematics of
random smooth rotations). Reports frames per second (best of ``--repeats``; median alongside):

* ``joints_to_features_batch``: input joint frames / s (dataset preparation path),
* ``joints_to_features`` called clip by clip,
* ``features_to_joints_batch``: feature rows / s, and ``features_to_joints`` clip by clip and on
  one ``[B, T, 263]`` array.

Single core: the BLAS/OpenMP thread counts are set to 1 before numpy is imported and the process
is pinned to one CPU (``--no-pin`` to skip the pinning).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one core, no thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from motiongpt.motion import (  # noqa: E402
    features_to_joints,
    features_to_joints_batch,
    joints_to_features,
    joints_to_features_batch,
    mirror_joints,
    random_motion,
)
from motiongpt.motion.quaternion import qfrom_axis_angle, qrot  # noqa: E402

GOALS = {"joints_to_features_batch": 65_000, "features_to_joints_batch": 1_000_000}


def _shared_clip() -> np.ndarray | None:
    env = os.environ.get("MOTIONGPT_SHARED")
    root = Path(env) if env else REPO.parent / "shared"
    path = root / "data" / "humanml3d" / "new_joints" / "012314.npy"
    return np.load(path) if path.is_file() else None


def make_clips(n_clips: int, seed: int, source: str) -> tuple[list[np.ndarray], str]:
    """HumanML3D-like clips: crops of the real clip (random yaw/shift/mirror) or synthetic ones."""
    rng = np.random.default_rng(seed)
    real = _shared_clip() if source in ("auto", "real") else None
    if source == "real" and real is None:
        raise SystemExit("--source real: ../shared/data/humanml3d/new_joints/012314.npy not found")
    clips = []
    if real is not None:
        for _ in range(n_clips):
            length = int(rng.integers(40, len(real) + 1))
            start = int(rng.integers(0, len(real) - length + 1))
            clip = real[start : start + length].astype(np.float64)
            if rng.random() < 0.5:
                clip = mirror_joints(clip).astype(np.float64)
            yaw = qfrom_axis_angle(np.array([0.0, 1.0, 0.0]), np.array(rng.uniform(-np.pi, np.pi)))
            shift = rng.uniform(-3, 3, size=3) * np.array([1.0, 0.1, 1.0])
            clips.append((qrot(np.broadcast_to(yaw, clip.shape[:-1] + (4,)), clip) + shift).astype(np.float32))
        return clips, "crops of real clip 012314 (random yaw/shift/mirror)"
    # Synthetic: a few base motions, cropped, to keep set-up time small.
    bases = [random_motion(196, seed=int(s)) for s in rng.integers(0, 2**31, size=16)]
    for _ in range(n_clips):
        base = bases[int(rng.integers(len(bases)))]
        length = int(rng.integers(40, 197))
        start = int(rng.integers(0, len(base) - length + 1))
        clips.append(base[start : start + length])
    return clips, "synthetic (random_motion, forward kinematics of random smooth rotations)"


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(best, median) wall seconds of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return min(runs), statistics.median(runs)


def _pin_to_one_cpu() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000, help="clips in the batch (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (default 5)")
    parser.add_argument("--loop-clips", type=int, default=200, help="clips for the per-clip loops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", choices=("auto", "real", "synthetic"), default="auto")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    pinning = "not pinned (--no-pin)" if args.no_pin else _pin_to_one_cpu()
    clips, source = make_clips(args.clips, args.seed, args.source)
    loop_clips = clips[: args.loop_clips]
    feats = joints_to_features_batch(clips)
    loop_feats = feats[: args.loop_clips]
    n_joint_frames = sum(len(c) for c in clips)
    n_loop_frames = sum(len(c) for c in loop_clips)
    n_rows = sum(len(f) for f in feats)
    n_loop_rows = sum(len(f) for f in loop_feats)
    t_fix = min(len(f) for f in feats)
    fixed = np.stack([f[:t_fix] for f in feats])  # [B, T, 263]

    cases = [
        ("joints_to_features_batch", "joint frames", n_joint_frames, lambda: joints_to_features_batch(clips)),
        ("joints_to_features (per-clip loop)", "joint frames", n_loop_frames,
         lambda: [joints_to_features(c) for c in loop_clips]),
        ("features_to_joints_batch", "feature rows", n_rows, lambda: features_to_joints_batch(feats)),
        ("features_to_joints (per-clip loop)", "feature rows", n_loop_rows,
         lambda: [features_to_joints(f) for f in loop_feats]),
        ("features_to_joints ([B, T, 263] array)", "feature rows", fixed.shape[0] * fixed.shape[1],
         lambda: features_to_joints(fixed)),
    ]
    results = []
    for label, unit, frames, fn in cases:
        best, median = _time(fn, args.repeats)
        results.append({
            "case": label, "unit": unit, "frames": frames,
            "frames_per_s_best": frames / best, "frames_per_s_median": frames / median,
            "goal": GOALS.get(label),
        })

    info = {
        "cpu": _cpu_model(), "pinning": pinning, "threads": os.environ["OMP_NUM_THREADS"],
        "python": platform.python_version(), "numpy": np.__version__, "source": source,
        "clips": len(clips), "joint_frames": n_joint_frames, "repeats": args.repeats,
    }
    print(f"# HumanML3D feature benchmark\n\n{info['cpu']}, {pinning}, 1 thread; numpy {np.__version__}, "
          f"python {info['python']}\n{len(clips)} clips, {n_joint_frames} frames: {source}\n")
    print("| case | frames | frames/s (best) | frames/s (median) | goal |")
    print("|---|---:|---:|---:|---|")
    for r in results:
        goal = ""
        if r["goal"]:
            goal = f">= {r['goal']:,} ({'met' if r['frames_per_s_best'] >= r['goal'] else 'MISSED'})"
        print(f"| {r['case']} | {r['frames']:,} {r['unit']} | {r['frames_per_s_best']:,.0f} | "
              f"{r['frames_per_s_median']:,.0f} | {goal} |")
    report = {"info": info, "results": results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
