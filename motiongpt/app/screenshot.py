"""A screenshot of the page after real generations (the README's ``docs/images/app_screenshot.png``).

    python -m motiongpt.app.screenshot --out docs/images/app_screenshot.png   # the `make demo` checkpoint

Starts the app in this process on a free loopback port, drives it in headless system Chromium
(Playwright with ``executable_path``: no browser is ever downloaded), types captions, generates,
and writes a PNG of the page atomically. Needs the ``playwright`` package and Chromium at
``/usr/bin/chromium`` (or ``--chromium``).
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Sequence

from motiongpt.app.config import DEFAULT_LORA_PATH, AppConfig

__all__ = ["DEFAULT_CHROMIUM", "CHROMIUM_ARGS", "capture", "main"]

DEFAULT_CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (``scripts/ci_browser_setup.sh`` installs it)."""

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")
"""Headless, and nothing that would reach the network on its own (updates, sync, QUIC probes)."""

DEFAULT_CAPTIONS = ("a person walks forward", "a person waves with the right hand, then jumps")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capture(lora_path: str, out: str | os.PathLike, *, captions: Sequence[str] = DEFAULT_CAPTIONS,
            length_frames: int = 0, seed: int = 0, chromium: str = DEFAULT_CHROMIUM, width: int = 1400,
            height: int = 1250, device: str = "cpu", timeout_s: float = 300.0) -> Path:
    """Generate ``captions`` in order on the page served over ``lora_path`` and save a PNG of the
    page showing the last one (the earlier ones fill the gallery) to ``out``; returns ``out``."""
    from playwright.sync_api import sync_playwright

    from motiongpt.app.server import load_service, start
    from motiongpt.utils.atomic import atomic_write_bytes

    if not Path(chromium).is_file():
        raise FileNotFoundError(f"Chromium not found at {chromium} (scripts/ci_browser_setup.sh installs it)")
    service = load_service(AppConfig(lora_path=lora_path, device=device, mp4=False))
    running = start(service, host="127.0.0.1", port=_free_port())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(timeout_s * 1000)
                page.goto(running.url)
                seed_box = page.locator("#seed input")
                seed_box.fill(str(seed))
                if length_frames:
                    length = page.locator("#t2m-length input[type=number]")
                    length.fill(str(length_frames))
                    length.press("Enter")
                for i, caption in enumerate(captions):
                    page.locator("#t2m-caption textarea").fill(caption)
                    page.locator("#t2m-run").click()
                    # the gallery grows by one per finished generation (the status line may still
                    # show the previous one's message)
                    page.wait_for_function("n => document.querySelectorAll('#gallery img').length >= n", arg=i + 1)
                page.locator("#status").get_by_text("Generated").wait_for()
                img = page.locator("#animation img")
                page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
                page.wait_for_timeout(1500)  # let the GIF play into the motion
                png = page.screenshot(full_page=True)
            finally:
                browser.close()
    finally:
        running.close()
    out = Path(out)
    atomic_write_bytes(out, png)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motiongpt.app.screenshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lora_path", default=DEFAULT_LORA_PATH, help="checkpoint to serve (default: %(default)s)")
    parser.add_argument("--out", default="docs/images/app_screenshot.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--caption", action="append", default=None,
                        help="caption to generate (repeatable; the last one is on show); default: two examples")
    parser.add_argument("--length", type=int, default=0, help="length in frames (0: the model decides)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chromium", default=DEFAULT_CHROMIUM, help="Chromium executable (default: %(default)s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from motiongpt.app.server import CheckpointMissingError

    try:
        path = capture(args.lora_path, args.out, captions=args.caption or DEFAULT_CAPTIONS,
                       length_frames=args.length, seed=args.seed, chromium=args.chromium)
    except (CheckpointMissingError, FileNotFoundError) as e:
        print(f"screenshot: error: {e}", flush=True)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
