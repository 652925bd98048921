"""Small tensor helpers shared by the LLM and generation code."""

from __future__ import annotations

import torch

__all__ = ["index_of"]


def index_of(ids: torch.Tensor, size: int) -> torch.Tensor:
    """``(size,)`` long tensor: the position of each value in ``ids`` (1-D, distinct values in
    ``[0, size)``), ``-1`` for values not in it. Maps token ids to rows / columns of a subset."""
    out = torch.full((int(size),), -1, dtype=torch.long, device=ids.device)
    out[ids] = torch.arange(len(ids), device=ids.device)
    return out
