"""Scalar metrics to a JSONL file and (optionally) TensorBoard, consistent across resume.

One line per ``log`` call: ``{"step": 120, "split": "train", "time": ..., "loss": 0.31, ...}``.
On resume from step ``s`` the lines of the interrupted run written after ``s`` are dropped (and
TensorBoard is told to purge them) so the curves show one continuous run, not two overlapping ones.
Only the main process should log: pass ``enabled=False`` on the other ranks.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

from motiongpt.config import atomic_write_text

__all__ = ["MetricLogger", "read_jsonl"]


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All records of a JSONL metrics file (a torn last line from a kill is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # only the last line can be torn (append-only writes); skip it
    return out


class MetricLogger:
    """Append scalar metrics to ``<log_dir>/metrics.jsonl`` and TensorBoard event files.

    Args:
        log_dir: folder for ``metrics.jsonl`` and the TensorBoard ``tb/`` subfolder.
        tensorboard: also write TensorBoard scalars (``torch.utils.tensorboard.SummaryWriter``).
        resume_step: when resuming, drop records with ``step > resume_step`` first.
        enabled: False turns every call into a no-op (non-main ranks).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        tensorboard: bool = True,
        resume_step: int | None = None,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / "metrics.jsonl"
        self._writer = None
        if not enabled:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.is_file():
            kept = [r for r in read_jsonl(self.path) if int(r.get("step", 0)) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif resume_step is None and self.path.is_file():
            self.path.unlink()  # a fresh run in the same folder starts a fresh log
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # heavy import, only when used

            # purge_step drops events of the interrupted run newer than the resume point.
            self._writer = SummaryWriter(str(self.log_dir / "tb"), purge_step=resume_step)

    def log(self, step: int, metrics: Mapping[str, Any], split: str = "train") -> None:
        """Record ``metrics`` (numbers; non-finite ones are written as strings) at ``step``."""
        if not self.enabled:
            return
        record: dict[str, Any] = {"step": int(step), "split": split, "time": round(time.time(), 3)}
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value) if isinstance(value, float) else int(value)
                record[key] = value if math.isfinite(value) else str(value)
                if self._writer is not None:
                    self._writer.add_scalar(f"{split}/{key}", value, int(step))
            else:
                record[key] = value
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        """Flush TensorBoard events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
