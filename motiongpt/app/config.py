"""Settings of the web UI (``python app.py``): where the model is, where the page is served, input bounds.

Pure Python (no gradio / torch import), so ``app.py --help`` is instant and the handlers' tests
can build configs without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_LORA_PATH", "DEFAULT_PORT", "Limits", "AppConfig", "check_app_config"]

REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_LORA_PATH = str(REPO_ROOT / "outputs" / "demo" / "llm_lora")
"""The embedded demo checkpoint that ``make demo`` builds (the LoRA stage of the tiny LLaMA)."""

DEFAULT_PORT = 8888
"""The port of "Human Motion as a Foreign Language"'s ``app.py``."""


@dataclass
class Limits:
    """Bounds on what one request may ask for; a request over a bound gets a message, not a job."""

    max_caption_chars: int = 300
    """Longest caption accepted (characters after stripping). HumanML3D captions are < 200."""
    max_upload_mb: float = 20.0
    """Largest uploaded motion file in MiB (also enforced by the server before the upload lands)."""
    max_upload_frames: int = 2000
    """Longest uploaded motion in frames (100 s at 20 fps): bounds the tokenizer's work."""
    max_frames: int = 196
    """Longest motion that may be requested, in frames (HumanML3D's cap: 196 frames = 49 tokens)."""
    max_key_tokens: int = 16
    """Most key tokens (or key poses) one text-to-motion request may pin."""
    max_gallery: int = 24
    """Generations shown in a session's gallery (the oldest drop out first)."""
    max_stored: int = 200
    """Generation folders kept on disk under ``out_dir``; older ones are deleted (downloads expire)."""


@dataclass
class AppConfig:
    """Everything ``python app.py`` needs: checkpoint, device, address and limits."""

    lora_path: str = DEFAULT_LORA_PATH
    """Fine-tuned run directory (adapter or full model) to serve; default: the ``make demo`` checkpoint."""
    vq_dir: str | None = None
    """VQ-VAE directory; None: the one recorded in the checkpoint's ``run_config.yaml``."""
    device: str = "cpu"
    """Torch device the model runs on (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    dtype: str = "auto"
    """Weight dtype (``auto``, ``float32``, ``bfloat16``, ``float16``)."""
    quantize: str | None = None
    """Load the base quantized (``4bit`` / ``8bit``, needs CUDA); None: as trained."""
    merged: bool | None = None
    """Merge the adapter into the base for faster sampling (None: the generator decides)."""
    host: str = "127.0.0.1"
    """Address to bind. Loopback by default; ``0.0.0.0`` exposes the page on the network (deliberately)."""
    port: int = DEFAULT_PORT
    """TCP port of the page."""
    out_dir: str | None = None
    """Where generations are written (one folder each); None: a fresh temporary folder."""
    mp4: bool | None = None
    """Also offer each animation as MP4: None = when ffmpeg is available, True = required, False = never."""
    batch_size: int = 1
    """Requests per model call (the UI sends one at a time)."""
    title: str = "motiongpt: human motion as a foreign language"
    """Page title and heading."""
    limits: Limits = field(default_factory=Limits)
    """Bounds on request inputs."""


def check_app_config(cfg: AppConfig) -> AppConfig:
    """Raise ``ValueError`` naming the field when a value is out of range; return ``cfg``."""
    if not 0 <= cfg.port <= 65535:
        raise ValueError(f"AppConfig.port must be in 0..65535, got {cfg.port}")
    if not cfg.host:
        raise ValueError("AppConfig.host must not be empty (use 127.0.0.1 for this machine only)")
    if cfg.batch_size < 1:
        raise ValueError(f"AppConfig.batch_size must be >= 1, got {cfg.batch_size}")
    lim = cfg.limits
    for name in ("max_caption_chars", "max_upload_frames", "max_frames", "max_key_tokens", "max_gallery",
                 "max_stored"):
        if getattr(lim, name) < 1:
            raise ValueError(f"Limits.{name} must be >= 1, got {getattr(lim, name)}")
    if not lim.max_upload_mb > 0:
        raise ValueError(f"Limits.max_upload_mb must be positive, got {lim.max_upload_mb}")
    return cfg
