"""Command line of ``python app.py``: arguments -> :class:`~motiongpt.app.config.AppConfig` -> serve."""

from __future__ import annotations

import argparse
import logging
import sys

from motiongpt.app.config import DEFAULT_LORA_PATH, DEFAULT_PORT, AppConfig, Limits, check_app_config

__all__ = ["build_parser", "config_from_args", "main"]

USAGE = """\
Serve the motion model in a web page (gradio), offline, on http://127.0.0.1:8888/ by default.

    python app.py                                  # the embedded demo checkpoint (run `make demo` first)
    python app.py --lora_path lora/my_run --device cuda
    python app.py --host 0.0.0.0 --port 8888       # expose it on the network, deliberately
"""


def build_parser() -> argparse.ArgumentParser:
    lim = Limits()
    p = argparse.ArgumentParser(prog="app.py", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lora_path", default=DEFAULT_LORA_PATH,
                   help="fine-tuned run directory to serve (default: the `make demo` checkpoint %(default)s)")
    p.add_argument("--vq_dir", default=None, help="VQ-VAE directory (default: the one the checkpoint records)")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 (default: %(default)s)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--quantize", default=None, choices=["4bit", "8bit"], help="load the base quantized (CUDA only)")
    p.add_argument("--merged", default=None, action=argparse.BooleanOptionalAction,
                   help="merge the adapter into the base before serving (default: the generator decides)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default %(default)s: this machine only; 0.0.0.0 exposes the page)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default: %(default)s)")
    p.add_argument("--out_dir", default=None,
                   help="folder for generated files (default: a temporary folder, removed on exit)")
    p.add_argument("--mp4", default=None, action=argparse.BooleanOptionalAction,
                   help="also offer MP4 (default: when ffmpeg is available)")
    p.add_argument("--max_caption_chars", type=int, default=lim.max_caption_chars, help="(default: %(default)s)")
    p.add_argument("--max_upload_mb", type=float, default=lim.max_upload_mb, help="(default: %(default)s)")
    p.add_argument("--max_frames", type=int, default=lim.max_frames,
                   help="longest motion a request may ask for, in frames (default: %(default)s)")
    p.add_argument("--max_key_tokens", type=int, default=lim.max_key_tokens, help="(default: %(default)s)")
    return p


def config_from_args(argv: list[str] | None = None) -> AppConfig:
    """Parse ``argv`` into a checked :class:`AppConfig` (argparse exits with a message on bad input)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    limits = Limits(max_caption_chars=a.max_caption_chars, max_upload_mb=a.max_upload_mb, max_frames=a.max_frames,
                    max_key_tokens=a.max_key_tokens)
    cfg = AppConfig(lora_path=a.lora_path, vq_dir=a.vq_dir, device=a.device, dtype=a.dtype, quantize=a.quantize,
                    merged=a.merged, host=a.host, port=a.port, out_dir=a.out_dir, mp4=a.mp4, limits=limits)
    try:
        return check_app_config(cfg)
    except ValueError as e:
        parser.error(str(e))
        raise  # unreachable: parser.error exits


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from motiongpt.app.server import CheckpointMissingError, serve

    try:
        serve(cfg)
    except CheckpointMissingError as e:
        print(f"app.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # port in use, cannot bind the host
        print(f"app.py: error: cannot serve on {cfg.host}:{cfg.port}: {e}", file=sys.stderr)
        return 1
    return 0
