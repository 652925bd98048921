#!/usr/bin/env python
"""Run every benchmark of ``bench/`` (what ``make bench`` calls), each as its own process.

    python bench/run_all.py [--out outputs/bench] [--only features,vq_encode,...] [--quick]

Each benchmark writes its log to ``<out>/<name>.log`` (and its figures to ``<out>/<name>.json``
where it has a ``--json`` option); a summary of exit codes and wall times is printed and written
to ``<out>/summary.json``. The commands are the ones BENCHMARKS.md quotes, sized to finish in
minutes on 2 CPU cores (``--quick``: smaller still, a smoke run). ``generate`` uses the
``make demo`` model when ``outputs/demo/llm_lora`` exists, else an untrained preset (its figures
are then throughput only). Exit status 1 when any benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def commands(out: Path, quick: bool) -> dict[str, list[str]]:
    py = sys.executable
    b = REPO / "bench"
    return {
        "features": [py, str(b / "bench_features.py"), "--clips", "100" if quick else "1000",
                     "--repeats", "1" if quick else "5", "--json", str(out / "features.json")],
        "vq_encode": [py, str(b / "bench_vq_encode.py"), "--presets", "tiny", "t2m", "--num_clips",
                      "32" if quick else "256", "--repeats", "1" if quick else "3"],
        "viz": [py, str(b / "bench_viz.py")],
        "generate": [py, str(b / "bench_generate.py"), "--n", "4" if quick else "32", "--repeats",
                     "1" if quick else "3", "--json", str(out / "generate.json")]
                    + ([] if (REPO / "outputs/demo/llm_lora").is_dir() else ["--untrained"]),
        "finetune": [py, str(b / "bench_finetune.py"), "--model", "tiny", "--steps", "3" if quick else "30",
                     "--warmup", "1" if quick else "3", "--micro_batch", "16", "--threads", "1",
                     "--repeats", "1" if quick else "2", "--workdir", str(out / "finetune_work"),
                     "--json", str(out / "finetune.json")],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "outputs" / "bench"), help="folder for logs and JSON figures")
    ap.add_argument("--only", default=None, help="comma-separated subset of: features, vq_encode, viz, generate, finetune")
    ap.add_argument("--quick", action="store_true", help="smoke-sized runs")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmds = commands(out, args.quick)
    names = list(cmds)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in cmds]
        if unknown:
            print(f"error: --only: unknown benchmark(s) {unknown}; known: {', '.join(cmds)}", file=sys.stderr)
            return 2
    summary = {}
    for name in names:
        t0 = time.perf_counter()
        with open(out / f"{name}.log", "w") as log:
            rc = subprocess.run(cmds[name], stdout=log, stderr=subprocess.STDOUT, cwd=REPO).returncode
        summary[name] = {"rc": rc, "seconds": round(time.perf_counter() - t0, 1), "command": cmds[name][1:],
                         "log": str(out / f"{name}.log")}
        print(f"{name:10s} {'ok' if rc == 0 else f'FAILED (exit {rc})':>16s} {summary[name]['seconds']:8.1f} s  "
              f"{out / f'{name}.log'}", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if all(v["rc"] == 0 for v in summary.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
