"""Helpers in motiongpt.utils used by the VQ stage: atomic directories, metric log, optimizer state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from motiongpt.utils.atomic import atomic_directory, atomic_save_npy, remove_stale_temps
from motiongpt.utils.metrics import MetricLogger, read_jsonl
from motiongpt.utils.train_state import load_optimizer, rng_state, save_optimizer, set_rng_state


def test_atomic_directory_replaces_or_keeps(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    with atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]


def test_remove_stale_temps_restores_an_interrupted_swap(tmp_path: Path) -> None:
    (tmp_path / ".best.0a1b2c3d.old").mkdir()  # killed between the two renames: best/ is missing
    (tmp_path / ".best.0a1b2c3d.old" / "x").write_text("prev")
    (tmp_path / ".best.zz.tmp").mkdir()
    (tmp_path / ".notes.q.tmp").write_text("someone else's")
    remove_stale_temps(tmp_path, names=["best"])
    assert (tmp_path / "best" / "x").read_text() == "prev"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.q.tmp", "best"]


def test_atomic_save_npy_refuses_objects(tmp_path: Path) -> None:
    atomic_save_npy(tmp_path / "a.npy", np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(3))
    with pytest.raises(ValueError):
        atomic_save_npy(tmp_path / "b.npy", np.array([{"a": 1}], dtype=object))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]


def test_metric_logger_drops_records_after_the_resume_step(tmp_path: Path) -> None:
    log = MetricLogger(tmp_path, tensorboard=False)
    for step in (10, 20, 30):
        log.log(step, {"loss": 1.0 / step, "bad": float("nan")})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 40, "spl')  # a torn line from a kill
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [10, 20, 30]
    assert read_jsonl(tmp_path / "metrics.jsonl")[0]["bad"] == "nan"
    log = MetricLogger(tmp_path, tensorboard=False, resume_step=20)
    log.log(30, {"loss": 0.5})
    assert [(r["step"], r["loss"]) for r in read_jsonl(tmp_path / "metrics.jsonl")] == [(10, 0.1), (20, 0.05), (30, 0.5)]
    assert not MetricLogger(tmp_path / "off", enabled=False).path.parent.exists()


def test_optimizer_and_rng_state_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    for _ in range(3):
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    save_optimizer(opt, tmp_path)
    assert "betas" in json.loads((tmp_path / "optimizer.json").read_text())["param_groups"][0]
    opt2 = torch.optim.AdamW(model.parameters(), lr=1.0)
    load_optimizer(opt2, tmp_path)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for pid in a["state"]:
        for k, v in a["state"][pid].items():
            assert torch.equal(v, b["state"][pid][k])
    tensors, meta = rng_state()
    meta = json.loads(json.dumps(meta))  # it must survive JSON
    first = (torch.rand(2), np.random.rand(2))
    set_rng_state(tensors, meta)
    second = (torch.rand(2), np.random.rand(2))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
