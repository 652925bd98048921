#!/usr/bin/env python
"""Web UI for the motion model: text-to-motion (length, sampling, key tokens / key poses),
motion-to-text, prediction and in-betweening, with animations and npy / BVH / token downloads.

    python app.py                          # the `make demo` checkpoint on http://127.0.0.1:8888/
    python app.py --lora_path lora/my_run --device cuda --port 8888
    python app.py --host 0.0.0.0           # reachable from the network (deliberately)

Everything is in ``motiongpt.app``; this file only parses arguments.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if __name__ == "__main__":
    from motiongpt.app.cli import main

    sys.exit(main())
