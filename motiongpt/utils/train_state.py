"""Pickle-free training state for exact resume: optimizer, scheduler and RNG states.

``torch.save`` of an optimizer state pickles it, and loading a pickle runs code. Here tensors go
to safetensors and everything else (hyper-parameters, step counters, numpy generator states) to
JSON, so a checkpoint directory can be opened safely and diffed by hand.

Exactness: fp32 tensors are stored bit-for-bit, Python floats through ``json`` round-trip exactly
(``repr`` precision), so a resumed run continues with identical numbers.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "optimizer_state_to_tensors",
    "optimizer_state_from_tensors",
    "save_optimizer",
    "load_optimizer",
    "rng_state",
    "set_rng_state",
    "save_rng_state",
    "load_rng_state",
]


def optimizer_state_to_tensors(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into safetensors-ready tensors and a JSON-ready dict."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, per_param in state["state"].items():
        for key, value in per_param.items():
            name = f"state.{int(pid)}.{key}"
            if torch.is_tensor(value):
                tensors[name] = value.detach().cpu().contiguous().clone()
            else:
                scalars[name] = value
    groups = []
    for group in state["param_groups"]:
        g = {}
        for key, value in group.items():
            # Tuples (betas) are lists in JSON; remember which keys were tuples to restore them.
            g[key] = list(value) if isinstance(value, tuple) else value
            if isinstance(value, tuple):
                g.setdefault("__tuples__", []).append(key)
        groups.append(g)
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_state_from_tensors(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Inverse of :func:`optimizer_state_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        for key in g.pop("__tuples__", []):
            g[key] = tuple(g[key])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def save_optimizer(optimizer: torch.optim.Optimizer, folder: str | os.PathLike, name: str = "optimizer") -> None:
    """Write ``<name>.safetensors`` + ``<name>.json`` into ``folder``."""
    folder = Path(folder)
    tensors, meta = optimizer_state_to_tensors(optimizer.state_dict())
    save_file(tensors, str(folder / f"{name}.safetensors"))
    (folder / f"{name}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def load_optimizer(optimizer: torch.optim.Optimizer, folder: str | os.PathLike, name: str = "optimizer") -> None:
    """Load the state written by :func:`save_optimizer` into ``optimizer`` (tensors follow its device)."""
    folder = Path(folder)
    tensors = load_file(str(folder / f"{name}.safetensors"))
    meta = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    optimizer.load_state_dict(optimizer_state_from_tensors(tensors, meta))


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """Current torch (CPU and CUDA), numpy-global and ``random`` states as (tensors, json)."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    np_state = np.random.get_state(legacy=False)
    np_state = {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}}
    py_state = random.getstate()
    meta = {"numpy": np_state, "python": [py_state[0], list(py_state[1]), py_state[2]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore states captured by :func:`rng_state`."""
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    np_state = dict(meta["numpy"])
    np_state["state"] = {"key": np.asarray(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    v, internal, gauss = meta["python"]
    random.setstate((v, tuple(internal), gauss))


def save_rng_state(folder: str | os.PathLike, name: str = "rng_state") -> None:
    """Write :func:`rng_state` to ``<name>.safetensors`` + ``<name>.json`` in ``folder``."""
    tensors, meta = rng_state()
    save_file(tensors, str(Path(folder) / f"{name}.safetensors"))
    (Path(folder) / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")


def load_rng_state(folder: str | os.PathLike, name: str = "rng_state") -> None:
    """Restore the states written by :func:`save_rng_state`."""
    tensors = load_file(str(Path(folder) / f"{name}.safetensors"))
    meta = json.loads((Path(folder) / f"{name}.json").read_text(encoding="utf-8"))
    set_rng_state(tensors, meta)
