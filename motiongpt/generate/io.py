"""Writing generation results: per-sample files plus ``results.json``, all or nothing.

Per sample ``<name>`` (files only when there is something to write):

=====================  =========================================================================
``<name>.npy``         joints ``(T, 22, 3)`` float32, metres, y up (20 fps)
``<name>_feats.npy``   HumanML3D features ``(T, 263)`` as decoded by the VQ-VAE
``<name>_tokens.txt``  the motion's codes, comma-joined on one line (format-independent)
``<name>.txt``         ``m2t``: the generated caption
``<name>.gif``         skeleton animation titled with the caption (``render``)
``<name>.mp4``         the same as video (``render`` and ffmpeg available, see ``mp4``)
``<name>.bvh``         the joints as a BVH file (``bvh``)
``results.json``       every sample: request (regenerates it), seed, prompt, model output, codes,
                       length, problems, and its files
=====================  =========================================================================

The whole folder is built under a temporary name and moved into place when complete
(:func:`~motiongpt.utils.atomic.atomic_directory`): a failure leaves the previous folder untouched
and nothing half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from motiongpt.generate.request import GenerationResult, check_name
from motiongpt.utils.atomic import atomic_directory, atomic_save_npy, atomic_write_text

__all__ = ["RESULTS_FILE", "RESULTS_FORMAT", "save_results", "result_record"]

RESULTS_FILE = "results.json"
RESULTS_FORMAT = "motiongpt-generation/1"
FPS = 20


def result_record(result: GenerationResult, files: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON entry of one result (no arrays)."""
    return {
        "name": result.name,
        "task": result.task,
        "ok": result.ok,
        "problems": list(result.problems),
        "seed": result.seed,
        "instruction": result.request.instruction,
        "prompt": result.prompt,
        "request": result.request.to_dict(),
        "raw_text": result.raw_text,
        "text": result.text,
        "codes": result.codes,
        "generated_codes": result.generated_codes,
        "length_frames": result.length_frames,
        "constrained": result.constrained,
        "fix_foot": result.fix_foot,
        "num_new_tokens": result.num_new_tokens,
        "candidate": result.candidate,
        "rerank_score": result.rerank_score,
        "files": dict(files or {}),
    }


def _mp4_wanted(mp4: bool | None) -> bool:
    if mp4 is False:
        return False
    try:
        from motiongpt.viz import ffmpeg_available
    except ImportError:
        available = False
    else:
        available = bool(ffmpeg_available())
    if mp4 is True and not available:
        raise RuntimeError("mp4=True but no ffmpeg was found (install ffmpeg or imageio-ffmpeg)")
    return available


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if overwrite or not any(out_dir.iterdir()) or (out_dir / RESULTS_FILE).is_file():
        return
    raise FileExistsError(f"{out_dir} is not empty and holds no {RESULTS_FILE} (not an earlier generation "
                          "output): choose another folder or pass overwrite=True")


def save_results(
    results: Sequence[GenerationResult],
    out_dir: str | os.PathLike,
    *,
    render: bool = True,
    bvh: bool = True,
    mp4: bool | None = None,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write every result's files and ``results.json`` into ``out_dir``; returns ``results.json``'s path.

    ``render``: a GIF per motion (and an MP4 when ``mp4`` allows). ``mp4``: None = when ffmpeg is
    available; True = required (``RuntimeError`` without ffmpeg, checked first); False = never.
    ``bvh``: a BVH file per motion. ``meta``: extra JSON-ready information stored at the top of
    ``results.json`` (checkpoint, sampling settings). ``out_dir`` must be absent, empty, or an
    earlier output of this function (it is then replaced as a whole); ``overwrite`` replaces any
    folder.
    """
    out_dir = Path(out_dir)
    results = list(results)
    names = [check_name(r.name) for r in results]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"sample names must be unique, repeated: {dup[:5]}")
    _check_out_dir(out_dir, overwrite)
    want_mp4 = render and _mp4_wanted(mp4)
    render_motion = write_bvh = None
    if render:
        from motiongpt.viz import render_motion
    if bvh:
        try:
            from motiongpt.motion.bvh import write_bvh
        except ImportError as e:
            raise RuntimeError(f"BVH export is not available in this checkout ({e}); pass bvh=False") from e
    try:
        meta_json = json.loads(json.dumps(meta or {}))
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta must be JSON-serializable: {e}") from e

    records = []
    with atomic_directory(out_dir) as tmp:
        for r in results:
            files: dict[str, str] = {}
            if r.text is not None:
                atomic_write_text(tmp / f"{r.name}.txt", r.text + "\n")
                files["text"] = f"{r.name}.txt"
            if r.codes:
                atomic_write_text(tmp / f"{r.name}_tokens.txt", ",".join(str(int(c)) for c in r.codes) + "\n")
                files["tokens"] = f"{r.name}_tokens.txt"
            if r.joints is not None:
                joints = np.asarray(r.joints, dtype=np.float32)
                atomic_save_npy(tmp / f"{r.name}.npy", joints)
                files["joints"] = f"{r.name}.npy"
                if r.features is not None:
                    atomic_save_npy(tmp / f"{r.name}_feats.npy", np.asarray(r.features, dtype=np.float32))
                    files["features"] = f"{r.name}_feats.npy"
                if render_motion is not None:
                    render_motion(joints, tmp / f"{r.name}.gif", title=r.title(), fps=FPS)
                    files["gif"] = f"{r.name}.gif"
                    if want_mp4:
                        render_motion(joints, tmp / f"{r.name}.mp4", title=r.title(), fps=FPS)
                        files["mp4"] = f"{r.name}.mp4"
                if write_bvh is not None:
                    write_bvh(joints, tmp / f"{r.name}.bvh", fps=FPS)
                    files["bvh"] = f"{r.name}.bvh"
            records.append(result_record(r, files))
        doc = {
            "format": RESULTS_FORMAT,
            "meta": meta_json,
            "count": len(records),
            "ok": sum(1 for r in results if r.ok),
            "samples": records,
        }
        atomic_write_text(tmp / RESULTS_FILE, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return out_dir / RESULTS_FILE
