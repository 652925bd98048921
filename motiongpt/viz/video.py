"""Writing frame sequences to animated GIF / MP4 files, atomically, and reading videos back.

MP4 goes through an ``ffmpeg`` executable: the one on ``PATH`` when there is one, otherwise the
static binary shipped inside the PyPI package ``imageio-ffmpeg`` (so MP4 works in a plain
virtualenv without a system ffmpeg). :func:`ffmpeg_available` says whether either exists.

Every writer goes through :func:`write_atomic`: the file is produced under a temporary name in the
target folder and renamed into place only when complete, so a failure (a crash, a bad frame,
ffmpeg exiting) never leaves a half-written video under the final name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

__all__ = [
    "ffmpeg_available",
    "find_ffmpeg",
    "require_ffmpeg",
    "read_video",
    "save_gif",
    "save_mp4",
    "write_atomic",
    "write_video",
]

def _bundled_ffmpeg() -> str | None:
    """The ffmpeg binary of the ``imageio-ffmpeg`` wheel, or None when the package is missing.

    A separate function so tests can simulate a machine without it.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package is installed but holds no binary for this platform
        return None
    return exe if exe and os.path.isfile(exe) else None


def find_ffmpeg() -> str | None:
    """Path of an ffmpeg executable: ``ffmpeg`` on PATH first, else imageio-ffmpeg's; None if neither."""
    return shutil.which("ffmpeg") or _bundled_ffmpeg()


def ffmpeg_available() -> bool:
    """True when ``.mp4`` output works (an ffmpeg on PATH or the ``imageio-ffmpeg`` package)."""
    return find_ffmpeg() is not None


def require_ffmpeg() -> str:
    """:func:`find_ffmpeg`, raising a ``RuntimeError`` that says how to get one when there is none."""
    exe = find_ffmpeg()
    if exe is None:
        raise RuntimeError(
            "writing .mp4 needs ffmpeg, and none was found (no ffmpeg on PATH and the Python package "
            "imageio-ffmpeg is not installed: pip install imageio-ffmpeg); write a .gif instead"
        )
    return exe


def write_atomic(out_path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``out_path``, then ``os.replace`` it into place.

    On any exception the temp file is removed and an existing ``out_path`` is left untouched.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp creates the file 0600; give the result the usual permissions of a new file (or
        # keep those of the file it replaces).
        os.chmod(tmp, out_path.stat().st_mode & 0o777 if out_path.exists() else 0o644)
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out_path


def _checked_frames(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Frames as C-contiguous ``(H, W, 3)`` uint8, all of the first frame's size (else ``ValueError``)."""
    shape = None
    for i, f in enumerate(frames):
        arr = np.asarray(f)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"frame {i} must be (H, W, 3) uint8, got shape {arr.shape} dtype {arr.dtype}")
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise ValueError(f"frame {i} has shape {arr.shape}, but frame 0 has {shape}; all frames must match")
        yield np.ascontiguousarray(arr)


def save_gif(frames: Iterable[np.ndarray], path: Path, fps: float) -> None:
    """Encode RGB frames as a looping GIF at ``fps`` (GIF delays are whole 1/100 s)."""
    it = _checked_frames(frames)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError(f"no frames to write to {path}") from None
    images = [Image.fromarray(first)]
    images.extend(Image.fromarray(f) for f in it)
    # One shared palette, built from the first, middle and last frames side by side, keeps colours
    # stable across frames (no flicker) and lets the encoder store only changed regions.
    probe = [images[0], images[len(images) // 2], images[-1]]
    strip = Image.new("RGB", (sum(im.width for im in probe), images[0].height))
    x = 0
    for im in probe:
        strip.paste(im, (x, 0))
        x += im.width
    palette = strip.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    pal_frames = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    duration = max(int(round(1000.0 / fps)), 10)  # GIF delays are in 1/100 s
    pal_frames[0].save(
        path, format="GIF", save_all=True, append_images=pal_frames[1:], duration=duration, loop=0, optimize=False,
    )


def save_mp4(frames: Iterable[np.ndarray], path: Path, fps: float, exe: str | None = None) -> None:
    """Encode RGB frames as H.264 MP4 (yuv420p, playable in browsers) by piping raw frames to ffmpeg.

    Odd widths/heights are padded by one pixel (yuv420p needs even sizes). ``exe`` defaults to
    :func:`require_ffmpeg`.
    """
    exe = exe or require_ffmpeg()
    it = _checked_frames(frames)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError(f"no frames to write to {path}") from None
    h, w = first.shape[:2]
    cmd = [
        exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps}",
        "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-f", "mp4", str(path),
    ]
    # stderr goes to a file, not a pipe: a pipe nobody reads while frames are written could fill
    # up and deadlock both processes.
    with tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err_file)
        broken = False
        try:
            proc.stdin.write(first.tobytes())
            for f in it:
                proc.stdin.write(f.tobytes())
        except BrokenPipeError:  # ffmpeg exited early; its own message (below) says why
            broken = True
        except BaseException:
            proc.kill()
            raise
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                broken = True
            proc.wait()
        err_file.seek(0)
        err = err_file.read().decode(errors="replace").strip()
    if proc.returncode != 0 or broken:
        raise RuntimeError(f"ffmpeg ({exe}) failed writing {path} (exit {proc.returncode}): {err or 'no message'}")


def write_video(frames: Iterable[np.ndarray], out_path: str | Path, fps: float) -> Path:
    """Write frames to ``out_path`` atomically: ``.mp4`` through ffmpeg, anything else as GIF.

    Raises:
        ValueError: ``fps <= 0``, no frames, or frames of mixed sizes.
        RuntimeError: ``.mp4`` and no ffmpeg (checked before any frame is consumed).
    """
    out_path = Path(out_path)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if out_path.suffix.lower() == ".mp4":
        exe = require_ffmpeg()
        return write_atomic(out_path, lambda tmp: save_mp4(frames, tmp, fps, exe))
    return write_atomic(out_path, lambda tmp: save_gif(frames, tmp, fps))


def read_video(path: str | Path) -> np.ndarray:
    """Decode a GIF or MP4 into ``(T, H, W, 3)`` uint8 RGB frames (MP4 through ffmpeg).

    Meant for checks and tests: it holds the whole clip in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video {path} not found")
    if path.suffix.lower() != ".mp4":
        from PIL import ImageSequence

        with Image.open(path) as im:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])
    exe = require_ffmpeg()
    probe = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    # "Stream #0:0...: Video: h264 ..., yuv420p(...), 320x320 [SAR 1:1 DAR 1:1], ..."
    size = None
    for line in probe.stderr.splitlines():
        if "Video:" in line:
            for tok in line.replace(",", " ").split():
                a, sep, b = tok.partition("x")
                if sep and a.isdigit() and b.isdigit():
                    size = (int(a), int(b))
                    break
            break
    if size is None:
        raise RuntimeError(f"ffmpeg found no video stream in {path}: {probe.stderr.strip()[-500:]}")
    w, h = size
    res = subprocess.run(
        [exe, "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
    )
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg failed reading {path}: {res.stderr.decode(errors='replace').strip()}")
    data = np.frombuffer(res.stdout, np.uint8)
    if data.size % (w * h * 3):
        raise RuntimeError(f"ffmpeg returned {data.size} bytes for {path}, not a whole number of {w}x{h} frames")
    return data.reshape(-1, h, w, 3)
