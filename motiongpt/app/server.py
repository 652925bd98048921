"""Starting the page: check the checkpoint, load the model once, build the UI, queue, serve.

Offline by construction: gradio's telemetry and version check are off
(``GRADIO_ANALYTICS_ENABLED=False`` and ``analytics_enabled=False``), there is no share link, no
server-side rendering (no Node), no MCP server, no monitoring endpoint, and the default theme's
fonts are served from the gradio package itself. The page binds ``127.0.0.1`` unless a host is
given deliberately.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motiongpt.app.config import DEFAULT_LORA_PATH, AppConfig, check_app_config

log = logging.getLogger(__name__)

__all__ = ["CheckpointMissingError", "check_checkpoint", "load_service", "Running", "start", "serve"]

# Before gradio is imported anywhere: its import-time and Blocks-time telemetry read this.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

QUEUE_MAX_SIZE = 32
"""Requests that may wait in the queue; more get gradio's "queue is full" message."""


class CheckpointMissingError(FileNotFoundError):
    """``--lora_path`` does not hold a finished fine-tuning run (the message says what to do)."""


def check_checkpoint(lora_path: str | os.PathLike) -> Path:
    """The checkpoint folder, or :class:`CheckpointMissingError` saying how to get one."""
    path = Path(lora_path)
    is_default = path.resolve() == Path(DEFAULT_LORA_PATH).resolve()
    if not path.is_dir() or not (path / "run_config.yaml").is_file():
        what = "is missing" if not path.exists() else "is not a motiongpt fine-tuning output (no run_config.yaml)"
        if is_default:
            raise CheckpointMissingError(
                f"the embedded demo checkpoint {path} {what}: run `make demo` first (about 13 minutes on "
                "2 CPU cores), or pass --lora_path DIR of your own fine-tuned run"
            )
        raise CheckpointMissingError(
            f"--lora_path {path} {what}; pass the out_dir of a finetune_motion.py run "
            "(or run `make demo` and omit --lora_path to serve the embedded demo checkpoint)"
        )
    return path


def load_service(cfg: AppConfig) -> Any:
    """Load the generator once (from ``cfg.lora_path``) and wrap it in a :class:`MotionService`."""
    check_app_config(cfg)
    path = check_checkpoint(cfg.lora_path)  # before the heavy imports: a missing checkpoint fails at once

    from motiongpt.app.service import MotionService
    from motiongpt.generate import MotionGenerator

    log.info("loading %s on %s", path, cfg.device)
    generator = MotionGenerator.from_checkpoint(
        str(path), device=cfg.device, dtype=cfg.dtype, quantize=cfg.quantize, merged=cfg.merged, vq_dir=cfg.vq_dir
    )
    return MotionService(generator, cfg)


@dataclass
class Running:
    """A started page: the gradio Blocks, its URL and the service behind it."""

    page: Any
    """The launched ``gr.Blocks``."""
    url: str
    """Local URL of the page (``http://127.0.0.1:PORT/``)."""
    service: Any
    """The :class:`~motiongpt.app.service.MotionService` answering it."""

    def close(self) -> None:
        """Stop the server and remove the service's temporary outputs."""
        self.page.close()
        self.service.close()


def start(service: Any, *, host: str | None = None, port: int | None = None, block: bool = False,
          quiet: bool = True) -> Running:
    """Build the page over ``service`` and serve it (in a background thread unless ``block``)."""
    import gradio as gr  # noqa: F401 - imported after GRADIO_ANALYTICS_ENABLED is set

    from motiongpt.app.ui import build_ui

    cfg = service.config
    host = cfg.host if host is None else host
    port = cfg.port if port is None else port
    page = build_ui(service)
    # one job at a time by default; the model events also share one concurrency group of size 1
    page.queue(default_concurrency_limit=1, max_size=QUEUE_MAX_SIZE)
    _, url, _ = page.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=quiet,
        show_error=False,  # errors reach the page through the status box, never as tracebacks
        max_file_size=int(cfg.limits.max_upload_mb * 2**20),
        allowed_paths=[str(service.out_dir)],
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        run_history=False,
        footer_links=[],
        pwa=False,
    )
    return Running(page=page, url=url, service=service)


def serve(cfg: AppConfig) -> None:
    """``python app.py``: load the model, serve the page until interrupted."""
    service = load_service(cfg)
    shown_host = cfg.host
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: the page is reachable from the network", cfg.host)
    print(f"motiongpt app: http://{shown_host}:{cfg.port}/  (model {cfg.lora_path}; outputs in {service.out_dir})",
          flush=True)
    if threading.current_thread() is threading.main_thread():
        # `kill` / a container stop: close like Ctrl-C does (gradio stops its server on
        # KeyboardInterrupt) so the temporary output folder is removed too
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        start(service, block=True, quiet=False)
    except KeyboardInterrupt:
        # Once serving, gradio handles the interrupt itself (it stops its server and returns); a
        # stop that lands while it is still starting up (its launch checks the server with an HTTP
        # request) surfaces here instead: stop whatever was started and exit cleanly all the same.
        import gradio as gr

        log.info("interrupted while starting: stopping the server")
        gr.close_all()
    finally:
        service.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
