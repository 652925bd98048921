"""The generation engine: a fine-tuned checkpoint + its VQ-VAE -> motions (and captions).

:class:`MotionGenerator` rebuilds everything from one run directory (base model, adapter,
tokenizer, motion token format, prompt template, VQ-VAE with its normalization), batches requests
with left padding (KV cache, attention masks), decodes with the constraints of
:mod:`motiongpt.generate.constraints` (or without them, for comparison), and decodes the codes to
features and joints.

Sampling is seeded per request (:class:`~motiongpt.generate.constraints.SeededSampler`): a sample
depends on its prompt, its seed and the sampling settings, not on the batch it was drawn in, so any
sample of a batch can be regenerated alone from its recorded request.

Classifier-free guidance (``SamplingConfig.guidance_scale != 1``, text-to-motion tasks only):
:class:`~motiongpt.generate.guidance.GuidanceLogitsProcessor` runs the model a second time per step
on the unconditional prompt (the canonical t2m instruction with an empty input, prefilled once and
kept) and decodes from ``u + s * (c - u)``; see :mod:`motiongpt.generate.guidance`.

Speed (figures in ``bench/bench_generate.py``): prompts are batched by kind and length; the keys and
values of the prompts' common prefix (template + instruction, ~60 of ~75 tokens of a t2m prompt)
are computed once per batch and kept for later calls; a LoRA adapter is merged into the weights at
load time (unless quantized); the constraint masks are tensor ops over precomputed tables.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from motiongpt.generate.constraints import MotionConstraintProcessor, NarrowedProcessors, SeededSampler, TokenTables
from motiongpt.generate.request import (
    DEFAULT_MAX_MOTION_TOKENS,
    GUIDANCE_TASKS,
    UNIT_FRAMES,
    GenerationRequest,
    GenerationResult,
    Plan,
    SamplingConfig,
    plan_request,
)
from motiongpt.llm.tokens import MOTION_END, MOTION_START, MotionTokenFormat, text_to_codes

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

    from motiongpt.vq.model import VQVAE

__all__ = ["MotionGenerator", "QUANTIZE_METHODS", "load_motion_array"]

QUANTIZE_METHODS = {"4bit": "qlora", "8bit": "8bit"}
"""``quantize`` values and the :func:`~motiongpt.llm.model.resolve_precision` method they load with."""
MIN_SHARED_PREFIX = 8
"""Shortest common prompt prefix whose keys / values are computed once for a whole batch."""

_VOCAB_TOKEN_RE_TEXT = "<motion_id_"


def load_motion_array(x: Any, what: str = "motion") -> np.ndarray:
    """``x`` as a float array: an array or tensor, or a motion file read by
    :func:`motiongpt.motion.io.read_motion_file` (``.npy`` joints or features, ``.bvh`` joints)."""
    if isinstance(x, (str, os.PathLike)):
        from motiongpt.motion.io import read_motion_file

        return read_motion_file(x)
    arr = np.asarray(x.detach().cpu().numpy() if torch.is_tensor(x) else x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


_ASSUMED = ("max_tokens (the generator's default motion length cap)", "uncond_prob 0 (guidance off by default)",
            "tasks: all", "next_context_codes 0", "wrap_output: by the motion format")


def _instruction_config(resolved: dict[str, Any]) -> dict[str, Any]:
    """The instruction settings the run was trained on: the copy the run carries
    (``resolved.instruction_config``, written at fine-tune time). A run made before runs carried it
    falls back to its instruction folder's ``meta.json``. Without either (records not made by the
    instruction builder, or the folder gone), ``{}``, and the settings assumed are logged by name."""
    if "instruction_config" in resolved:
        cfg = resolved["instruction_config"]
        if isinstance(cfg, dict):
            return cfg
        why = resolved.get("instruction_config_source") or "none recorded"
    else:
        data_dir = (resolved.get("prepare_config") or {}).get("data_dir")
        meta = _read_json(Path(data_dir) / "meta.json") if data_dir else None
        cfg = (meta or {}).get("config")
        if isinstance(cfg, dict):
            return cfg
        why = f"an older run whose instruction folder {data_dir!r} has no readable meta.json"
    log.warning("no instruction settings for this run (%s): assuming %s", why, "; ".join(_ASSUMED))
    return {}


GUIDED_RECOMMENDED_SCALE = 1.5
"""Guidance scale suggested for a model trained with unconditional records: the best scale of the
embedded default model on its validation split (the sweep:
``docs/experiments/2026-12-05-benchmarks-history.md``, "Counting")."""


def _had_uncond_records(icfg: dict[str, Any]) -> bool:
    """Whether the instruction config ``icfg`` had ``uncond_prob > 0`` (the model also learned
    caption-less records; False for an older config without the option, or none found)."""
    value = icfg.get("uncond_prob")
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


def _recommended_guidance_scale(icfg: dict[str, Any]) -> float:
    """:data:`GUIDED_RECOMMENDED_SCALE` when the instruction config ``icfg`` had ``uncond_prob > 0``
    (the model also learned caption-less t2m), else 1.0 (guidance off)."""
    return GUIDED_RECOMMENDED_SCALE if _had_uncond_records(icfg) else 1.0


class MotionGenerator:
    """Generate motions (and captions) with a fine-tuned LLM and its VQ-VAE.

    Build with :meth:`from_checkpoint`; the constructor takes already loaded parts (tests, apps).
    Not thread-safe (it keeps the cache of the last shared prompt prefix): serve one
    :meth:`generate` call at a time (a lock in a web app).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: "PreTrainedTokenizerBase",
        fmt: MotionTokenFormat,
        vq: "VQVAE",
        *,
        template: str = "alpaca",
        device: str | torch.device = "cpu",
        wrap_output: bool | None = None,
        max_motion_tokens: int = DEFAULT_MAX_MOTION_TOKENS,
        source: str | None = None,
        vq_dir: str | None = None,
        recommended_guidance_scale: float = 1.0,
        trained_tasks: Sequence[str] | None = None,
        next_context_codes: int = 0,
        guided_clauses: bool = False,
    ) -> None:
        from motiongpt.llm.templates import load_instructions, resolve_template
        from motiongpt.llm.tasks import output_is_wrapped

        if vq.nb_code != fmt.nb_code:
            raise ValueError(f"the VQ-VAE has {vq.nb_code} codes but the checkpoint's motion format {fmt.nb_code}: "
                             "pass the VQ-VAE the model was trained with (vq_dir)")
        if vq.downsample != UNIT_FRAMES:
            raise ValueError(f"the VQ-VAE downsamples by {vq.downsample}, expected {UNIT_FRAMES} frames per code")
        self.model = model
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.vq = vq
        self.device = torch.device(device)
        self.template = resolve_template(template, tokenizer)
        self.wrapped = output_is_wrapped(fmt, wrap_output)
        self.max_motion_tokens = int(max_motion_tokens)
        self.source = source
        self.vq_dir = vq_dir
        if not (math.isfinite(recommended_guidance_scale) and recommended_guidance_scale >= 0):
            raise ValueError("recommended_guidance_scale must be a finite number >= 0 (1: off), "
                             f"got {recommended_guidance_scale!r}")
        self.recommended_guidance_scale = float(recommended_guidance_scale)
        """Classifier-free guidance scale to offer by default (``SamplingConfig.guidance_scale``):
        :data:`GUIDED_RECOMMENDED_SCALE` when the run's instruction data held unconditional records
        (``uncond_prob > 0``), else 1.0 (off). Guidance contrasts the caption's prediction with the
        caption-less one; a model never trained without a caption has no meaningful caption-less
        prediction, and guiding with it does not help.
        :meth:`from_checkpoint` sets it from the run's instruction config."""
        self.trained_tasks = tuple(trained_tasks) if trained_tasks is not None else None
        """Tasks of the run's instruction data (None: unknown, e.g. a model built in code)."""
        if isinstance(next_context_codes, bool) or not isinstance(next_context_codes, int) or next_context_codes < 0:
            raise ValueError(f"next_context_codes must be an integer >= 0, got {next_context_codes!r}")
        self.next_context_codes = next_context_codes
        """``t2m_next``: context codes the run's records gave (composed decoding gives as many)."""
        self.guided_clauses = bool(guided_clauses)
        """The run's ``t2m_next`` records had unconditional copies (instruction options ``uncond_prob``
        > 0 and ``uncond_tasks`` with ``t2m_next``): ``t2m_next`` requests without context can be
        guided, against the canonical ``t2m_next`` instruction with an empty input."""
        self.instructions = load_instructions()
        # the logits' width: the head's rows, or the whole vocabulary a compact head is spread over
        # (motiongpt.llm.text_conditioned)
        vocab_size = int(getattr(model.config, "full_vocab_size", 0) or model.get_output_embeddings().weight.shape[0])
        self.tables = TokenTables.build(tokenizer, fmt, wrapped=self.wrapped, vocab_size=vocab_size,
                                        device=self.device)
        # a model that can emit only a few token ids (motiongpt.llm.text_conditioned): motion
        # decoding runs its processors on those columns only (NarrowedProcessors)
        live = getattr(model.config, "output_token_ids", None)
        self._live = torch.tensor(list(live), dtype=torch.long, device=self.device) if live else None
        self._narrow_tables = self.tables.narrowed(self._live) if self._live is not None else None
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 0) or None
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad)
        self.share_prefix = True
        """Compute the keys / values of the prompts' common prefix once per batch (and reuse them)."""
        self._kept_prefix: tuple[list[int], Any] | None = None
        self._last_prompt: list[int] | None = None
        self._uncond: dict[str, Any] = {}  # UnconditionalPrefix of guidance per task, computed on first use

    # ---- loading -----------------------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        lora_path: str | os.PathLike | None,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        quantize: str | None = None,
        merged: str | os.PathLike | None = None,
        vq_dir: str | os.PathLike | None = None,
        template: str | None = None,
        max_motion_tokens: int | None = None,
        merge_lora: bool = True,
    ) -> "MotionGenerator":
        """Rebuild a generator from a fine-tuning output directory.

        ``lora_path``: a run or checkpoint directory of ``finetune_motion.py`` (adapter or full):
        the base model, adapter, tokenizer, motion format, template and VQ-VAE directory all come
        from it. ``merged``: a merged / plain model directory (``scripts/export_merged.py`` output,
        or any causal LM directory holding the motion tokens) loaded instead of the adapter run;
        its own ``run_config.yaml`` / ``motion_format.json`` are used, else those of
        ``lora_path``. ``quantize``: ``4bit`` (NF4) or ``8bit`` (LLM.int8) base weights, through
        bitsandbytes (``ValueError`` when it is not installed or the device cannot run it).
        ``vq_dir``: the VQ-VAE (default: the one recorded by the run). ``template``: prompt
        template (default: the run's, else ``alpaca``). ``max_motion_tokens``: longest motion when
        the model chooses the length (default: the run's instruction data, else 49). ``merge_lora``:
        fold an (unquantized) adapter into the base weights for inference (``merge_and_unload``:
        the same function up to float rounding, one matmul per projection instead of three).
        """
        from motiongpt.llm.checkpoint import RUN_CONFIG_FILE, load_finetuned, read_run_config
        from motiongpt.llm.model import load_base_model
        from motiongpt.llm.tokens import FORMAT_FILENAME, load_motion_format
        from motiongpt.vq.model import VQVAE

        if quantize is not None and quantize not in QUANTIZE_METHODS:
            raise ValueError(f"quantize must be one of {sorted(QUANTIZE_METHODS)} or None, got {quantize!r}")
        method = QUANTIZE_METHODS.get(quantize) if quantize else None
        if lora_path is None and merged is None:
            raise ValueError("pass lora_path (a fine-tuning run directory) or merged (a merged model directory)")
        meta_dirs = [Path(p) for p in (merged, lora_path) if p is not None]
        for d in meta_dirs:
            if not d.is_dir():
                raise FileNotFoundError(f"checkpoint directory not found: {d}")
        run_dir = next((d for d in meta_dirs if (d / RUN_CONFIG_FILE).is_file()), None)
        cfg, resolved = read_run_config(run_dir) if run_dir is not None else (None, {})

        if merged is None:
            assert lora_path is not None
            if run_dir is None:
                raise FileNotFoundError(f"{lora_path} holds no {RUN_CONFIG_FILE}: not a fine-tuning output "
                                        "(pass a plain model directory as merged=...)")
            try:
                model, tok, fmt, info = load_finetuned(lora_path, method=method, dtype=dtype, device=device)
            except ValueError as e:
                raise ValueError(f"cannot load {lora_path}" + (f" with quantize={quantize}" if quantize else "")
                                 + f": {e}") from e
            if method is not None and not info["adapter"]:
                # a full model: load_finetuned never quantizes it; reload its weights quantized
                model, tok = load_base_model(str(lora_path), tok, method=method, dtype=dtype, device=device)
            elif info["adapter"] and method is None and merge_lora:
                model = model.merge_and_unload()
            source = str(Path(lora_path).resolve())
        else:
            from transformers import AutoTokenizer

            merged = Path(merged)
            fmt_dir = next((d for d in meta_dirs if (d / FORMAT_FILENAME).is_file()), None)
            tok = AutoTokenizer.from_pretrained(str(merged), local_files_only=True)
            if fmt_dir is not None:
                fmt = load_motion_format(fmt_dir)
            else:
                fmt = _infer_format(tok, vq_dir)
            try:
                model, tok = load_base_model(str(merged), tok, method=method or "full", dtype=dtype, device=device)
            except ValueError as e:
                raise ValueError(f"cannot load {merged}" + (f" with quantize={quantize}" if quantize else "")
                                 + f": {e}") from e
            if model.get_input_embeddings().weight.shape[0] < len(tok):
                raise ValueError(f"{merged}: the model has fewer embedding rows than its tokenizer has ids "
                                 "(a base model without the motion tokens; pass the adapter run as lora_path)")
            source = str(merged.resolve())
        model.eval()

        vq_path = vq_dir or resolved.get("vq_dir") or (cfg.vq_dir if cfg is not None else "")
        if not vq_path:
            raise ValueError("no VQ-VAE: the run does not record vq_dir; pass vq_dir=...")
        if not Path(vq_path).is_dir():
            where = "given as vq_dir" if vq_dir else "recorded by the run; pass vq_dir=..."
            raise FileNotFoundError(f"VQ-VAE directory not found: {vq_path} ({where})")
        vq = VQVAE.from_pretrained(vq_path, device=device)

        icfg = _instruction_config(resolved)
        max_tokens = max_motion_tokens or icfg.get("max_tokens") or DEFAULT_MAX_MOTION_TOKENS
        return cls(model, tok, fmt, vq, template=template or resolved.get("template") or "alpaca", device=device,
                   wrap_output=icfg.get("wrap_output"), max_motion_tokens=int(max_tokens), source=source,
                   vq_dir=str(Path(vq_path).resolve()),
                   recommended_guidance_scale=_recommended_guidance_scale(icfg),
                   trained_tasks=icfg.get("tasks") if isinstance(icfg.get("tasks"), list) else None,
                   next_context_codes=int(icfg.get("next_context_codes", 0)),
                   guided_clauses=_had_uncond_records(icfg) and "t2m_next" in (icfg.get("uncond_tasks") or ["t2m"]))

    # ---- motion in / out ---------------------------------------------------------------------

    def encode_motion(self, x: Any) -> list[int]:
        """Codes of a motion: ``(T, 22, 3)`` joints, ``(T, 263)`` features, or a ``.npy`` / ``.bvh`` path.

        Joints are turned into HumanML3D features first (``T - 1`` frames); features are cropped
        to a multiple of 4 frames.
        """
        arr = load_motion_array(x)
        what = str(x) if isinstance(x, (str, os.PathLike)) else "motion"
        if arr.ndim == 3 and arr.shape[1:] == (self.vq.joints_num, 3):
            from motiongpt.motion.features import joints_to_features

            if arr.shape[0] < UNIT_FRAMES + 1:
                raise ValueError(f"{what}: {arr.shape[0]} frames of joints are too short (need >= {UNIT_FRAMES + 1})")
            feats = joints_to_features(arr, name=what)
        elif arr.ndim == 2 and arr.shape[1] == self.vq.nfeats:
            feats = arr
        else:
            raise ValueError(f"{what}: expected joints (T, {self.vq.joints_num}, 3) or features (T, {self.vq.nfeats}), "
                             f"got shape {arr.shape}")
        feats = self.vq.check_features(feats, what)
        return [int(c) for c in self.vq.encode(feats)]

    def decode(self, codes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(joints (T, 22, 3), features (T, 263))`` of ``codes``, ``T = 4 * len(codes)``."""
        joints, feats = self._decode_many([list(codes)])[0]
        return joints, feats

    def _decode_many(self, seqs: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        from motiongpt.motion.features import features_to_joints

        feats = self.vq.decode_batch(seqs)  # each (4N, 263)
        return [(np.asarray(features_to_joints(f), dtype=np.float32), np.asarray(f, dtype=np.float32))
                for f in feats]

    # ---- prompts -----------------------------------------------------------------------------

    def plan(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig | None = None) -> list[Plan]:
        """Validate every request and build its prompt: ``ValueError`` naming the request (index and
        name) for anything :meth:`generate` would refuse, context length included."""
        from motiongpt.llm.templates import encode_prompt

        sampling = (sampling or SamplingConfig()).validate()
        max_motion = sampling.max_motion_tokens or self.max_motion_tokens
        plans = []
        uncond_lens: dict[str, int] = {}
        for i, req in enumerate(requests):
            label = getattr(req, "name", None) or getattr(req, "task", "?")
            try:
                # guidance and the reranking score's unconditional term need the unconditional prompt
                for what, wanted, remedy in (
                        (f"guidance_scale={sampling.guidance_scale}", sampling.guided,
                         "generate it in a separate call with guidance_scale 1"),
                        (f"candidates={sampling.candidates} with rerank_uncond_weight={sampling.rerank_uncond_weight}",
                         sampling.reranked and sampling.rerank_uncond_weight > 0, "pass rerank_uncond_weight 0")):
                    why = self._no_unconditional_prompt(req) if wanted else None
                    if why:
                        raise ValueError(f"{what}: {why} ({remedy})")
                plan = plan_request(req, i, self.fmt, self.instructions, max_motion_tokens=max_motion,
                                    max_text_tokens=sampling.max_text_tokens)
                plan.prompt = self.prompt_text(plan.instruction, plan.input_text)
                plan.prompt_ids = encode_prompt(self.tokenizer, plan.prompt, self.template)
                need = len(plan.prompt_ids) + self._budget(plan)
                if self.max_positions is not None and need > self.max_positions:
                    raise ValueError(f"prompt ({len(plan.prompt_ids)} tokens) + output ({self._budget(plan)} tokens) "
                                     f"exceed the model's {self.max_positions} positions")
                uncond_len = 0
                if sampling.guided:
                    u = _uncond_task(plan)
                    if u not in uncond_lens:  # tokenized once per call and task
                        uncond_lens[u] = len(self.unconditional_prompt_ids(u))
                    uncond_len = uncond_lens[u]
                if self.max_positions is not None and uncond_len + self._budget(plan) > self.max_positions:
                    raise ValueError(f"the unconditional prompt of guidance ({uncond_len} tokens) + output "
                                     f"({self._budget(plan)} tokens) exceed the model's {self.max_positions} positions")
            except ValueError as e:
                raise ValueError(f"request {i} ({label}): {e}") from None
            plans.append(plan)
        names = [p.name for p in plans]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"sample names must be unique, repeated: {dup[:5]}")
        return plans

    def _no_unconditional_prompt(self, req: GenerationRequest) -> str | None:
        """Why ``req`` has no unconditional prompt (None when it has one): only the text-to-motion
        tasks have one, ``t2m_next`` only for a model whose clauses had unconditional copies and
        without context codes."""
        task = getattr(req, "task", None)
        if task not in GUIDANCE_TASKS:
            return (f"classifier-free guidance and the unconditional prompt apply to text-to-motion tasks "
                    f"{list(GUIDANCE_TASKS)} only, not {task!r}")
        if task == "t2m_next" and not self.guided_clauses:
            return ("this model's t2m_next records had no unconditional copies (instruction options uncond_prob > 0 "
                    "and uncond_tasks with t2m_next)")
        if task == "t2m_next" and len(getattr(req, "motion_codes", None) or []):
            return "a t2m_next request with context codes has no unconditional prompt (only clauses without context)"
        return None

    def prompt_text(self, instruction: str, input_text: str) -> str:
        """The full prompt the model sees (the run's template)."""
        from motiongpt.llm.templates import build_prompt

        return build_prompt({"instruction": instruction, "input": input_text}, self.template, self.tokenizer)

    def unconditional_prompt_ids(self, task: str = "t2m") -> list[int]:
        """Token ids of the unconditional prompt of classifier-free guidance: the checkpoint's
        canonical instruction of ``task`` (``t2m``, the one
        :func:`~motiongpt.generate.request.plan_request` picks, for every text-to-motion task;
        ``t2m_next`` for clauses) with an empty input, in the run's template (as the unconditional
        training records)."""
        from motiongpt.llm.templates import encode_prompt

        return encode_prompt(self.tokenizer, self.prompt_text(self.instructions[task][0], ""), self.template)

    def _unconditional_prefix(self, task: str = "t2m") -> Any:
        """The unconditional prompt's batch-1 KV cache and last logits, computed once and kept."""
        from motiongpt.generate.guidance import UnconditionalPrefix

        ids = self.unconditional_prompt_ids(task)
        kept = self._uncond.get(task)
        if kept is None or kept.ids != ids:
            kept = self._uncond[task] = UnconditionalPrefix.prefill(self.model, ids, self.device)
        return kept

    def _budget(self, plan: Plan) -> int:
        spec = plan.spec
        if spec.kind == "text":
            return spec.text_budget
        return self.tables.motion_budget(spec.exact if spec.exact is not None else spec.max_len)

    # ---- generation --------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: SamplingConfig | None = None,
        *,
        batch_size: int = 32,
        constrained: bool = True,
        progress: bool = False,
        fix_foot: bool = False,
    ) -> list[GenerationResult]:
        """Generate one result per request, in order.

        Every request is validated before anything runs (``ValueError`` naming the request).
        ``constrained``: decode under the constraints (well-formed span, exact length, key tokens,
        clean captions); ``False`` decodes freely and reports what went wrong in each result's
        ``problems`` (never raising on model output). ``fix_foot``: clean foot skating of the
        joints with :func:`motiongpt.motion.foot.fix_foot_skating`. ``sampling.guidance_scale != 1``:
        classifier-free guidance (text-to-motion requests only; constrained or not; see
        :mod:`motiongpt.generate.guidance`).
        """
        sampling = (sampling or SamplingConfig()).validate()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        requests = list(requests)
        if not requests:
            return []
        foot = _foot_fixer() if fix_foot else None
        plans = self.plan(requests, sampling)
        names = [p.name for p in plans]
        seeds = [p.request.seed if p.request.seed is not None else sampling.seed + p.index for p in plans]
        prompts = [p.prompt for p in plans]
        ids = [p.prompt_ids for p in plans]

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(plans), desc="generate", unit="sample")
        if constrained:
            # t2m_keys without a length: the model chooses it first (see motiongpt.generate.request)
            first = [p.index for p in plans if p.choose_length]
            if first:
                lengths = self._run([plans[i].length_pass() for i in first], [ids[i] for i in first],
                                    [seeds[i] for i in first], sampling, constrained, batch_size, None)
                for i, (new_ids, _) in zip(first, lengths):
                    n = len(text_to_codes(self.tokenizer.decode(new_ids, skip_special_tokens=True), self.fmt).codes)
                    plans[i] = plans[i].with_length(max(n, len(plans[i].spec.ordered_keys)))
        if sampling.reranked:
            outputs, chosen, best = self._run_candidates(plans, ids, seeds, sampling, constrained, batch_size, bar)
        else:
            outputs = self._run(plans, ids, seeds, sampling, constrained, batch_size, bar)
        if bar is not None:
            bar.close()

        results = [self._result(plans[i], names[i], seeds[i], prompts[i], *outputs[i], constrained)
                   for i in range(len(plans))]
        if sampling.reranked:
            for r, j, score in zip(results, chosen, best):
                r.candidate, r.rerank_score = j, score
        self._attach(results, foot)
        return results

    def _run_candidates(self, plans: list[Plan], ids: list[list[int]], seeds: list[int], sampling: SamplingConfig,
                        constrained: bool, batch_size: int, bar: Any
                        ) -> tuple[list[tuple[list[int], bool]], list[int], list[float]]:
        """``sampling.candidates`` samples per plan, the best by :mod:`motiongpt.generate.rerank`'s
        score kept: ``(outputs, kept candidate per plan, its score)``."""
        from motiongpt.generate.rerank import CANDIDATE_SEED_STRIDE, best_candidates, sequence_log_probs

        n = sampling.candidates
        rows = [i for i in range(len(plans)) for _ in range(n)]
        cand_seeds = [seeds[i] + j * CANDIDATE_SEED_STRIDE for i in range(len(plans)) for j in range(n)]
        if bar is not None:
            bar.total = len(rows)
        w = float(sampling.rerank_uncond_weight)
        # both terms recorded while decoding (the unconditional one from guidance's branch)
        recorded: list[Any] = [None] * len(rows)
        cand = self._run([plans[i] for i in rows], [ids[i] for i in rows], cand_seeds, sampling, constrained,
                         batch_size, bar, scores_out=recorded)
        scores = [r[0] for r in recorded]
        if w > 0:
            if sampling.guided:
                u_scores = [r[1] for r in recorded]
            else:  # no unconditional branch ran: score the candidates under the unconditional prompt
                uncond = {u: self.unconditional_prompt_ids(u) for u in {_uncond_task(plans[i]) for i in rows}}
                u_scores = sequence_log_probs(self.model, [uncond[_uncond_task(plans[i])] for i in rows],
                                              [c[0] for c in cand], pad_id=self.pad_id, device=self.device,
                                              batch_size=batch_size)
            scores = [c - w * u for c, u in zip(scores, u_scores)]
        chosen = best_candidates(scores, n)
        outputs = [cand[i * n + j] for i, j in enumerate(chosen)]
        return outputs, chosen, [scores[i * n + j] for i, j in enumerate(chosen)]

    def attach_motion(self, results: Sequence[GenerationResult], fix_foot: bool = False) -> None:
        """Decode the ``codes`` of every result that has some into its ``joints`` and ``features``
        (in place, one VQ-VAE batch); ``fix_foot``: clean foot skating of the joints, as
        :meth:`generate` does."""
        self._attach(results, _foot_fixer() if fix_foot else None)

    def _attach(self, results: Sequence[GenerationResult], foot: Any) -> None:
        todo = [r for r in results if r.codes]
        if todo:
            for r, (joints, feats) in zip(todo, self._decode_many([r.codes for r in todo])):
                if foot is not None:
                    joints = np.asarray(foot(joints), dtype=np.float32)
                    r.fix_foot = True
                r.joints, r.features = joints, feats

    def _run(self, plans: list[Plan], ids: list[list[int]], seeds: list[int], sampling: SamplingConfig,
             constrained: bool, batch_size: int, bar: Any, scores_out: list[Any] | None = None
             ) -> list[tuple[list[int], bool]]:
        """Generate every plan in batches; outputs in the order of ``plans``. ``scores_out`` (a list
        as long as ``plans``): receives each output's ``(log p(x | prompt), log p(x | unconditional
        prompt) or None)`` as decoding computed them (see :meth:`_generate_batch`)."""
        # batch prompts of one kind (and, guided, one unconditional prompt) and similar length
        # together: less padding, similar budgets
        order = sorted(range(len(plans)), key=lambda i: (plans[i].spec.kind, _uncond_task(plans[i]), len(ids[i]), i))
        groups: list[list[int]] = []
        for i in order:
            if groups and len(groups[-1]) < batch_size and (
                    not sampling.guided or _uncond_task(plans[groups[-1][0]]) == _uncond_task(plans[i])):
                groups[-1].append(i)
            else:
                groups.append([i])
        outputs: list[Any] = [None] * len(plans)
        for chunk in groups:
            scores: list[Any] | None = [] if scores_out is not None else None
            gen = self._generate_batch([plans[i] for i in chunk], [ids[i] for i in chunk],
                                       [seeds[i] for i in chunk], sampling, constrained, scores_out=scores)
            for k, (i, out) in enumerate(zip(chunk, gen)):
                outputs[i] = out
                if scores_out is not None and scores is not None:
                    scores_out[i] = scores[k]
            if bar is not None:
                bar.update(len(chunk))
        return outputs

    def _generate_batch(self, plans: list[Plan], ids: list[list[int]], seeds: list[int], sampling: SamplingConfig,
                        constrained: bool, scores_out: list[Any] | None = None) -> list[tuple[list[int], bool]]:
        """Generated ids (cut after EOS) and whether EOS came, per row. ``scores_out`` (a list):
        receives per row ``(log p(ids | prompt), log p(ids | unconditional prompt))`` summed over the
        row's own tokens under the model's distributions before guidance, constraints or sampling
        (the second None without guidance), recorded by
        :class:`~motiongpt.generate.rerank.LogProbRecorder` during decoding."""
        from transformers import GenerationConfig
        from transformers.generation.logits_process import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        prefix_len, cache = self._prefix_cache(ids) if sampling.num_beams == 1 else (0, None)
        # layout: [shared prefix | left padding | rest of the prompt]; every prompt ends at the same
        # column, so generated tokens line up. Position ids follow the attention mask, so a row's
        # positions are those it would have alone (the padding in the middle is masked out).
        width = prefix_len + max(len(x) - prefix_len for x in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, row in enumerate(ids):
            input_ids[r, :prefix_len] = torch.tensor(row[:prefix_len], dtype=torch.long)
            mask[r, :prefix_len] = 1
            input_ids[r, width - len(row) + prefix_len:] = torch.tensor(row[prefix_len:], dtype=torch.long)
            mask[r, width - len(row) + prefix_len:] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        extra: dict[str, Any] = {}
        if cache is not None:
            cache.batch_repeat_interleave(len(ids))  # (1, ...) -> (B, ...): every row shares the prefix
            extra["past_key_values"] = cache
        budget = max(self._budget(p) for p in plans)
        narrow = self._narrow_tables is not None and all(p.spec.kind != "text" for p in plans)
        tables = self._narrow_tables if narrow else self.tables
        columns = self._live if narrow else None
        procs: list[Any] = []
        rec_c = rec_u = None
        if scores_out is not None:
            from motiongpt.generate.rerank import LogProbRecorder

            # first: the model's own conditional logits, before guidance touches them
            rec_c = LogProbRecorder()
            procs.append(rec_c)
            rec_u = LogProbRecorder() if sampling.guided else None
        if sampling.guided:
            from motiongpt.generate.guidance import GuidanceLogitsProcessor

            # first: the constraint mask's -inf would make u + s * (c - u) NaN, and temperature,
            # top-k / top-p and the sampler must see the guided distribution
            procs.append(GuidanceLogitsProcessor(self.model, self._unconditional_prefix(_uncond_task(plans[0])),
                                                 len(ids), width, sampling.guidance_scale, recorder=rec_u,
                                                 columns=columns))
        if constrained:
            procs.append(MotionConstraintProcessor(tables, [p.spec for p in plans], width,
                                                   num_beams=sampling.num_beams))
        if not sampling.greedy:
            procs.append(TemperatureLogitsWarper(float(sampling.temperature)))
            if sampling.top_k > 0:
                procs.append(TopKLogitsWarper(int(sampling.top_k)))
            if sampling.top_p < 1.0:
                procs.append(TopPLogitsWarper(float(sampling.top_p)))
            procs.append(SeededSampler(seeds, self.device, prompt_width=width))
        if columns is not None:
            procs = [NarrowedProcessors(procs, columns, self.tables.vocab_size, width)]
        eos = self.tokenizer.eos_token_id
        gen_cfg = GenerationConfig(
            max_new_tokens=budget, do_sample=False, num_beams=sampling.num_beams, num_return_sequences=1,
            eos_token_id=eos, pad_token_id=self.pad_id, bos_token_id=self.tokenizer.bos_token_id,
            # neutral values, so that a model's own generation_config.json cannot slip in penalties
            repetition_penalty=1.0, no_repeat_ngram_size=0, use_cache=True,
        )
        if sampling.num_beams > 1:
            gen_cfg.length_penalty = 1.0
            gen_cfg.early_stopping = True
        out = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen_cfg,
                                  logits_processor=LogitsProcessorList(procs), **extra)
        new = out[:, width:].cpu().tolist()
        rows = []
        for row in new:
            if eos in row:
                rows.append((row[: row.index(eos) + 1], True))
            else:
                rows.append((row, False))
        if scores_out is not None and rec_c is not None:
            lengths = [len(r[0]) for r in rows]
            # the recorders saw column indices when the processors ran narrowed
            picked = out[:, width:] if columns is None else procs[0].to_columns(out[:, width:])
            rec_c.finish(picked)
            cond = rec_c.sums(lengths)
            if rec_u is not None:
                rec_u.finish(picked)
                unc: list[float | None] = list(rec_u.sums(lengths))
            else:
                unc = [None] * len(rows)
            scores_out.extend(zip(cond, unc))
        return rows

    def _prefix_cache(self, ids: list[list[int]]) -> tuple[int, Any]:
        """``(P, KV cache of the first P prompt tokens, batch 1)`` shared by every row, or ``(0, None)``.

        Prompts of one task share the template and instruction (~60 of ~75 tokens of a t2m
        prompt): their keys and values are computed once, not once per row. The shared prefix is
        the longest common prefix of the rows (of this row and the previous call's first row for a
        batch of one), at least :data:`MIN_SHARED_PREFIX` tokens and leaving every row at least one
        token of its own; its cache is kept and reused by later calls with the same prefix.
        """
        if not self.share_prefix:
            return 0, None
        others = ids[1:] if len(ids) > 1 else ([self._last_prompt] if self._last_prompt else [])
        self._last_prompt = list(ids[0])
        limit = min(len(r) for r in ids) - 1
        kept = self._kept_prefix
        if kept is not None and len(kept[0]) <= limit and all(r[: len(kept[0])] == kept[0] for r in ids):
            return len(kept[0]), copy.deepcopy(kept[1])
        if not others:
            return 0, None
        n = 0
        first = ids[0]
        while n < limit and all(len(r) > n and r[n] == first[n] for r in others):
            n += 1
        if n < MIN_SHARED_PREFIX:
            return 0, None
        prefix = torch.tensor([first[:n]], dtype=torch.long, device=self.device)
        cache = self.model(input_ids=prefix, attention_mask=torch.ones_like(prefix), use_cache=True).past_key_values
        self._kept_prefix = (list(first[:n]), cache)
        return n, copy.deepcopy(cache)

    # ---- results -----------------------------------------------------------------------------

    def _result(self, plan: Plan, name: str, seed: int, prompt: str, new_ids: list[int], finished: bool,
                constrained: bool) -> GenerationResult:
        import dataclasses

        req = dataclasses.replace(plan.request, seed=seed, name=name, instruction=plan.instruction)
        raw = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        problems: list[str] = []
        if not finished:
            problems.append(f"no EOS within {len(new_ids)} new tokens (output cut)")
        res = GenerationResult(request=req, name=name, prompt=prompt, raw_text=raw, codes=None, text=None,
                               joints=None, features=None, length_frames=None, seed=seed, problems=problems,
                               task=req.task, constrained=constrained, num_new_tokens=len(new_ids))
        spec = plan.spec
        if spec.kind == "text":
            text = raw.strip()
            if MOTION_START in text or MOTION_END in text or _VOCAB_TOKEN_RE_TEXT in text:
                problems.append("the caption contains motion tokens or span markers")
            if not text:
                problems.append("empty caption")
            res.text = text
            res.codes = list(plan.prefix)
        else:
            parsed = text_to_codes(raw, self.fmt)
            problems.extend(parsed.problems)
            if parsed.ok and parsed.wrapped != self.wrapped:
                problems.append(f"motion span {'wrapped' if parsed.wrapped else 'bare'}, expected "
                                f"{'wrapped' if self.wrapped else 'bare'}")
            gen = parsed.codes
            problems.extend(_check_spec(spec, gen))
            res.generated_codes = list(gen)
            full = list(plan.prefix) + list(gen) + list(plan.suffix)
            res.codes = full if gen else None
        if res.codes:
            res.length_frames = UNIT_FRAMES * len(res.codes)
        return res


def _uncond_task(plan: Plan) -> str:
    """Task whose unconditional prompt guides ``plan`` (clauses: their own; the rest: ``t2m``'s)."""
    return "t2m_next" if plan.request.task == "t2m_next" else "t2m"


def _check_spec(spec: Any, codes: list[int]) -> list[str]:
    """What ``codes`` (the generated part) fail of ``spec``."""
    out = []
    n = len(codes)
    if not codes:
        return ["no motion codes"]
    if spec.exact is not None and n != spec.exact:
        out.append(f"length {n} codes, requested {spec.exact}")
    if spec.exact is None and not spec.min_len <= n <= spec.max_len:
        out.append(f"length {n} codes outside [{spec.min_len}, {spec.max_len}]")
    for pos, code in spec.targets:
        if spec.exact is None and spec.end_code is not None:
            continue  # the max-length target of a variable t2m_last is checked as end_code
        if pos >= n or codes[pos] != code:
            got = codes[pos] if pos < n else None
            out.append(f"key code {code} missing at position {pos} (got {got})")
    if spec.end_code is not None and codes[-1] != spec.end_code:
        out.append(f"last code {codes[-1]}, requested {spec.end_code}")
    if spec.ordered_keys:
        it = iter(codes)
        if not all(any(c == k for c in it) for k in spec.ordered_keys):
            out.append(f"key codes {list(spec.ordered_keys)} do not appear in order")
    return out


def _foot_fixer():
    try:
        from motiongpt.motion.foot import fix_foot_skating
    except ImportError as e:
        raise RuntimeError(f"foot-skating cleanup is not available in this checkout ({e})") from e
    return fix_foot_skating


def _infer_format(tok: "PreTrainedTokenizerBase", vq_dir: str | os.PathLike | None) -> MotionTokenFormat:
    """Motion format of a plain model directory without ``motion_format.json``: ``vocab`` with as
    many codes as consecutive ``<motion_id_K>`` tokens, else ``digits`` with the VQ-VAE's codebook."""
    vocab = tok.get_vocab()
    n = 0
    while f"<motion_id_{n}>" in vocab:
        n += 1
    if n:
        return MotionTokenFormat("vocab", n)
    if vq_dir is None:
        raise ValueError("the model directory holds no motion_format.json and no <motion_id_K> tokens: pass vq_dir "
                         "so the digits format can take its codebook size")
    from motiongpt.vq.model import VQVAE

    return MotionTokenFormat("digits", VQVAE.from_pretrained(vq_dir).nb_code)
