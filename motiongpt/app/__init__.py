"""The web UI (``python app.py``): a gradio page over :mod:`motiongpt.generate`.

``config`` (settings and input bounds, pure Python), ``inputs`` (validation of page inputs),
``service`` (request building, the loaded generator, output files), ``ui`` (the gradio Blocks),
``server`` (load once, queue, serve offline).
"""

from motiongpt.app.config import DEFAULT_LORA_PATH, DEFAULT_PORT, AppConfig, Limits, check_app_config
from motiongpt.app.inputs import UserInputError

__all__ = [
    "DEFAULT_LORA_PATH",
    "DEFAULT_PORT",
    "AppConfig",
    "Limits",
    "check_app_config",
    "UserInputError",
]
