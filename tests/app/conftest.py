"""Fixtures of the web UI tests: a tiny real checkpoint, a loaded service, a running page, and a
headless Chromium (the ``browser`` tests skip without one unless MOTIONGPT_REQUIRE_BROWSER=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from motiongpt.app.screenshot import CHROMIUM_ARGS, DEFAULT_CHROMIUM
from tests.app.apptestlib import free_port, make_tiny_checkpoint, write_joints_npy

CHROMIUM = os.environ.get("MOTIONGPT_CHROMIUM", DEFAULT_CHROMIUM)
"""The system Chromium the browser tests drive (never a downloaded one)."""


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread (a shared 2-core machine: torch's spinning workers stall otherwise)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nano LoRA run over 32 codes with its random-init VQ-VAE (about 10 s on one core)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_tiny_checkpoint(tmp_path_factory.mktemp("app_ckpt"))
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def service(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """A :class:`MotionService` over the tiny checkpoint, writing under a test folder (no MP4: faster)."""
    from motiongpt.app.config import AppConfig
    from motiongpt.app.server import load_service

    out = tmp_path_factory.mktemp("app_out")
    svc = load_service(AppConfig(lora_path=str(tiny_checkpoint), out_dir=str(out), mp4=False))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def joints_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-frame joints ``.npy`` (T, 22, 3) to upload."""
    return write_joints_npy(tmp_path_factory.mktemp("app_upload") / "walk.npy", frames=48)


def _browser_unavailable() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} not found (scripts/ci_browser_setup.sh installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    return None


@pytest.fixture(scope="module")
def chromium():
    """A headless system Chromium through Playwright; skips (or fails under MOTIONGPT_REQUIRE_BROWSER=1)
    when Chromium or Playwright is missing."""
    reason = _browser_unavailable()
    if reason:
        if os.environ.get("MOTIONGPT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test cannot run: {reason}, and MOTIONGPT_REQUIRE_BROWSER=1 forbids skipping")
        pytest.skip(f"browser test skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # launch() gives the browser a fresh temporary profile and removes it on close
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def running_app(service, tmp_path_factory: pytest.TempPathFactory):
    """The real page over ``service``, served in this process on a free loopback port (gradio's
    upload/cache folder in a test folder, not the shared /tmp/gradio)."""
    from motiongpt.app.server import start

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio_cache")))
        running = start(service, host="127.0.0.1", port=free_port())
        yield running
        running.page.close()
