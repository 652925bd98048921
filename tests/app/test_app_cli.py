"""``python app.py``: arguments, the missing-checkpoint message, and the real CLI serving a page."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from motiongpt.app.cli import config_from_args
from motiongpt.app.config import DEFAULT_LORA_PATH
from tests.app.apptestlib import free_port

REPO = Path(__file__).resolve().parents[2]


def test_defaults_serve_the_demo_checkpoint_on_loopback_8888():
    cfg = config_from_args([])
    assert (cfg.lora_path, cfg.host, cfg.port, cfg.device) == (DEFAULT_LORA_PATH, "127.0.0.1", 8888, "cpu")
    assert cfg.lora_path.endswith(os.path.join("outputs", "demo", "llm_lora"))


def test_arguments_reach_the_config():
    cfg = config_from_args(["--lora_path", "runs/x", "--host", "0.0.0.0", "--port", "9000", "--device", "cuda:1",
                            "--no-mp4", "--max_caption_chars", "80", "--max_frames", "120", "--merged"])
    assert (cfg.lora_path, cfg.host, cfg.port, cfg.device, cfg.mp4, cfg.merged) == (
        "runs/x", "0.0.0.0", 9000, "cuda:1", False, True)
    assert (cfg.limits.max_caption_chars, cfg.limits.max_frames) == (80, 120)


def test_bad_arguments_exit_with_a_message(capsys):
    with pytest.raises(SystemExit) as e:
        config_from_args(["--port", "70000"])
    assert e.value.code == 2 and "AppConfig.port" in capsys.readouterr().err


def test_missing_default_checkpoint_says_run_make_demo(tmp_path, monkeypatch):
    from motiongpt.app import server

    missing = tmp_path / "outputs" / "demo" / "llm_lora"
    monkeypatch.setattr(server, "DEFAULT_LORA_PATH", str(missing))
    with pytest.raises(server.CheckpointMissingError, match="run `make demo` first"):
        server.check_checkpoint(missing)
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(server.CheckpointMissingError, match="--lora_path .*elsewhere is not a motiongpt"):
        server.check_checkpoint(other)


def test_cli_exits_cleanly_without_a_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "app.py"), "--lora_path", str(tmp_path / "nope")],
                          check=False, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    assert "app.py: error: --lora_path" in proc.stderr and "nope is missing" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_serves_the_page_and_cleans_up_on_sigterm(tiny_checkpoint, tmp_path):
    port = free_port()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(tmp_path / "gradio"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(REPO / "app.py"), "--lora_path", str(tiny_checkpoint), "--port", str(port), "--no-mp4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
    try:
        config = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as resp:
                    config = json.loads(resp.read())
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert config is not None, f"the page never came up (exit code {proc.poll()})"
        assert config["title"].startswith("motiongpt")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out[-2000:]
    assert f"http://127.0.0.1:{port}/" in out
    # the default output folder is a temporary one, removed when the app stops
    out_dir = Path(re.search(r"outputs in (\S+?)\)", out).group(1))
    assert out_dir.name.startswith("motiongpt_app_") and not out_dir.exists()
