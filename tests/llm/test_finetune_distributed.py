"""Launch modes: DeepSpeed ZeRO-2 / ZeRO-3 through ``accelerate launch`` (1 process), and 2-process
data parallel on CPU; plus GPU-only checks (bf16, CUDA 4-bit) that skip without CUDA.

Measured on CPU (see ../shared/reference/stack-on-cpu.md): DeepSpeed with 2 processes on CPU fails
(batch-size assertion, or both ranks acting as rank 0), so it is not tested here; ZeRO offload
needs DeepSpeedCPUAdam (compiled ~60 s on first use), so only zero2 / zero3 without offload run.
The first DeepSpeed launch on a machine also compiles DeepSpeed's CPU shm comm op (~60-90 s, cached
in ~/.cache/torch_extensions afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_testlib import QUICK, REPO, make_prepared, quick_cfg, single_thread, train_losses  # noqa: E402,F401

OPTS = ["method=lora", "train.max_steps=6", "train.eval_every=3", "train.save_every=3", "optim.lr=1e-2",
        "optim.weight_decay=0.0"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return make_prepared(tmp_path_factory.mktemp("prep") / "prep")


@pytest.fixture(scope="module")
def plain_run(prepared, tmp_path_factory) -> Path:
    from motiongpt.llm.finetune import finetune

    out = tmp_path_factory.mktemp("plain") / "run"
    finetune(quick_cfg(prepared, out, *OPTS))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _adapter_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "adapter_model.safetensors")), load_file(str(b / "adapter_model.safetensors"))
    assert set(wa) == set(wb)
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def _ds_launch(zero: str, prepared: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """``accelerate launch`` of the fine-tuning CLI under a DeepSpeed ZeRO config, one process."""
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--config_file", f"configs/accelerate/deepspeed_{zero}.yaml",
           "--num_processes", "1", "--main_process_port", str(_free_port()),
           "finetune_motion.py", *args, *QUICK, *OPTS, f"prepared={prepared}", f"out_dir={out}"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-5000:])
    return res


@pytest.fixture(scope="module")
def ds_runs(prepared, tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted single-process DeepSpeed runs, made on first use (shared by the tests)."""
    made: dict[str, Path] = {}

    def get(zero: str) -> Path:
        if zero not in made:
            out = tmp_path_factory.mktemp(zero) / "run"
            _ds_launch(zero, prepared, out)
            made[zero] = out
        return made[zero]

    return get  # type: ignore[return-value]


@pytest.mark.slow
@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_deepspeed_single_process_matches_plain(prepared, plain_run, ds_runs, zero):
    from motiongpt.llm.checkpoint import read_run_config

    out = ds_runs(zero)
    _, resolved = read_run_config(out)
    assert resolved["distributed_type"] == "DEEPSPEED" and resolved["zero_stage"] == int(zero[-1])
    # DeepSpeed (fp32, one process) reproduces the plain run
    assert train_losses(out) == pytest.approx(train_losses(plain_run), abs=1e-5)
    # Adam turns float rounding in near-zero gradients into weight differences of a few 1e-5
    assert _adapter_diff(out, plain_run) < 1e-4
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    # the ZeRO optimizer state is captured pickle-free (DeepSpeed's own checkpoints pickle it)
    assert state["optimizer_saved"] is True
    assert (out / "checkpoint-6" / "ds_optimizer.safetensors").is_file()
    assert not list((out / "checkpoint-6").glob("*.pt")) and not list((out / "checkpoint-6").glob("*.pkl"))


@pytest.mark.slow
def test_deepspeed_zero2_resume_equals_uninterrupted(prepared, ds_runs, tmp_path):
    """ZeRO-2, one process: 3 steps + resume + 3 steps == 6 steps (optimizer moments restored)."""
    from safetensors.torch import load_file

    full = ds_runs("zero2")
    out = tmp_path / "resumed"
    _ds_launch("zero2", prepared, out, "--stop_at", "3")
    ckpt = out / "checkpoint-3"
    assert (out / "latest").read_text().strip() == "checkpoint-3"
    moments = load_file(str(ckpt / "ds_optimizer.safetensors"))
    assert {k.split(".")[-1] for k in moments if k.startswith("state.")} == {"exp_avg", "exp_avg_sq", "step"}
    assert any(float(v.abs().max()) > 0 for k, v in moments.items() if k.endswith("exp_avg_sq"))
    # the same checkpoint without its optimizer state: the old behaviour, for contrast
    cold = tmp_path / "cold"
    shutil.copytree(out, cold)
    for f in (cold / "checkpoint-3").glob("ds_optimizer.*"):
        f.unlink()
    state_file = cold / "checkpoint-3" / "trainer_state.json"
    state_file.write_text(json.dumps({**json.loads(state_file.read_text()), "optimizer_saved": False}))
    _ds_launch("zero2", prepared, out, "--resume", "latest")
    _ds_launch("zero2", prepared, cold, "--resume", "latest")
    assert train_losses(out) == pytest.approx(train_losses(full), abs=1e-6)
    assert _adapter_diff(out, full) < 1e-6
    # restarting the moments is visibly different (so the equality above is not vacuous)
    assert _adapter_diff(cold, full) > 1e-4


def _dp_worker(prepared: str, out: str, report: str) -> None:
    import torch
    from accelerate.state import AcceleratorState, GradientState, PartialState

    # the forked worker inherits the parent's single-process accelerate singletons: start afresh
    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()
    GradientState._reset_state()
    torch.set_num_threads(1)  # two processes on two cores
    from motiongpt.llm.finetune import finetune

    s = finetune(quick_cfg(Path(prepared), Path(out), *OPTS, "lora.dropout=0.0"))
    Path(report).with_suffix(f".{s['process_index']}.json").write_text(json.dumps(s))


@pytest.mark.slow
def test_two_process_data_parallel_equals_accumulation(prepared, tmp_path):
    """2 processes x 1 micro-batch == 1 process x 2 accumulated micro-batches (same global batch)."""
    import peft  # noqa: F401  (imported before the fork: the workers start warm)
    import transformers  # noqa: F401
    from accelerate import debug_launcher

    from motiongpt.llm.finetune import finetune

    dp = tmp_path / "dp"
    debug_launcher(_dp_worker, args=(str(prepared), str(dp), str(tmp_path / "report")), num_processes=2)
    reports = [json.loads((tmp_path / f"report.{r}.json").read_text()) for r in (0, 1)]
    assert [r["num_processes"] for r in reports] == [2, 2]
    assert [r["process_index"] for r in reports] == [0, 1]
    a, b = reports[0]["first_micro_batch"], reports[1]["first_micro_batch"]
    assert a and b and not set(a) & set(b)  # the ranks trained on different records
    ga = tmp_path / "ga"
    finetune(quick_cfg(prepared, ga, *OPTS, "lora.dropout=0.0", "batch.gradient_accumulation_steps=2"))
    assert train_losses(dp) == pytest.approx(train_losses(ga), abs=1e-5)
    assert _adapter_diff(dp, ga) < 1e-5
    state = json.loads((dp / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["num_processes"] == 2 and (dp / "checkpoint-6" / "rng_state_1.safetensors").is_file()


# ---------------------------------------------------------------------------------- GPU only


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_cuda_bf16_training(prepared, tmp_path, method):
    """Real bf16 autocast and (for qlora) CUDA 4-bit kernels: a few steps, finite decreasing loss."""
    import torch

    from motiongpt.llm.checkpoint import load_finetuned, read_run_config
    from motiongpt.llm.finetune import finetune

    assert torch.cuda.is_available()
    out = tmp_path / method
    s = finetune(quick_cfg(prepared, out, f"method={method}", "dtype=bfloat16", "optim.lr=1e-2",
                           "train.max_steps=20", "train.eval_every=0"))
    losses = train_losses(out)
    assert s["finished"] and all(x == x for x in losses) and sum(losses[-4:]) < sum(losses[:4])
    _, resolved = read_run_config(out)
    assert resolved["precision"]["mixed_precision"] == "bf16"
    model, _, _, _ = load_finetuned(out, device="cuda")
    assert next(model.parameters()).is_cuda
