"""Our text-motion evaluator: T2M's matching architecture with learned word embeddings.

The field measures text-to-motion models with a text-motion matching model (Guo et al. 2022):
FID, R-precision, MM-Dist, Diversity and MultiModality are all computed on its embeddings. Its
official weights need GloVe vectors and HumanML3D training (see :mod:`motiongpt.eval.official`
for loading them when available); this module trains the same kind of model on any dataset in
the HumanML3D layout, offline:

* motion side: features normalized with the training set's Mean/Std, the 4 foot-contact dims
  dropped (as Guo et al.), T2M's ``MovementConvEncoder`` (two stride-2 convolutions: one step per
  4 frames) and ``MotionEncoderBiGRUCo`` (bidirectional GRU over the steps) -> ``(D,)``;
* text side: **learned** word embeddings over the training vocabulary (GloVe cannot be
  downloaded) plus T2M's 15-way part-of-speech one-hot of the captions' ``word/POS`` tokens, into
  T2M's ``TextEncoderBiGRUCo`` -> ``(D,)``;
* training: contrastive, see :class:`EvaluatorTrainConfig.loss` (``motiongpt.eval.train``).

Differences from T2M's model, on purpose: the movement encoder zeroes its hidden activations
beyond each motion's length, so an embedding does not depend on how much padding the batch has
(T2M always pads to 196 frames instead); the movement encoder is trained end to end with the
matching loss (T2M pretrains it in a motion autoencoder first and freezes it).

A checkpoint is a directory: ``model.safetensors``, ``config.yaml``, ``vocab.json`` (the words it
was trained with, and the surface table for plain-string captions), ``mean.npy``/``std.npy``
(the motion normalization) and ``manifest.json`` with their hashes; loading is strict.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from motiongpt.config import ConfigError, load_config, save_config
from motiongpt.eval.official import MotionEncoderBiGRUCo, MovementConvEncoder, TextEncoderBiGRUCo
from motiongpt.eval.text import POS_ENUMERATOR, Vocabulary
from motiongpt.motion.stats import checked_mean_std
from motiongpt.utils.checkpoint_dir import MANIFEST, check_state_dict, save_checkpoint_dir, verify_manifest

__all__ = [
    "EvaluatorModelConfig",
    "EvaluatorTrainConfig",
    "EvaluatorDataConfig",
    "EvaluatorConfig",
    "PRESETS",
    "get_preset",
    "check_config",
    "as_clip_list",
    "MaskedMovementEncoder",
    "TextMotionEvaluator",
    "CHECKPOINT_FILES",
]

CHECKPOINT_FILES = ("model.safetensors", "config.yaml", "vocab.json", "mean.npy", "std.npy")
"""Files of an evaluator checkpoint directory (plus ``manifest.json``, written last)."""
_FORMAT = "motiongpt-t2m-evaluator"


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class EvaluatorModelConfig:
    """Architecture of the evaluator (defaults: the ``t2m`` preset, T2M's sizes)."""

    nfeats: int = 263
    """Per-frame feature size D (263 HumanML3D, 251 KIT-ML); training fills it in from the data."""
    dim_word: int = 300
    """Word-embedding size (T2M: 300, GloVe's; here the embeddings are learned)."""
    dim_pos_ohot: int = 15
    """Part-of-speech one-hot size: T2M's 15 categories (fixed)."""
    use_pos: bool = True
    """Feed the POS one-hots (T2M does); False zeroes them (captions without tags)."""
    dim_text_hidden: int = 512
    """Text bi-GRU hidden size."""
    dim_coemb_hidden: int = 512
    """Size of the joint text-motion embedding (the D of every metric)."""
    dim_movement_enc_hidden: int = 512
    """Channels of the movement encoder's first convolution."""
    dim_movement_latent: int = 512
    """Channels of the movement encoder's output."""
    dim_motion_hidden: int = 1024
    """Motion bi-GRU hidden size."""
    unit_length: int = 4
    """Frames per movement-encoder step (fixed by its two stride-2 convolutions)."""
    max_text_len: int = 20
    """Caption tokens kept (then wrapped in sos/eos); T2M: 20."""
    max_motion_length: int = 196
    """Longest motion encoded, in frames (longer ones are cropped); T2M: 196."""
    drop_foot_contacts: bool = True
    """Drop the last 4 feature dims (foot contacts) before the movement encoder, as T2M."""
    dropout: float = 0.2
    """Dropout in the movement encoder (T2M: 0.2)."""


@dataclass
class EvaluatorTrainConfig:
    """Optimisation of ``train_evaluator`` (defaults: the ``t2m`` preset: T2M's loss, batch and learning
    rate; set ``total_steps`` for the data, T2M trained its HumanML3D evaluator for 300 epochs)."""

    loss: Literal["margin", "infonce"] = "margin"
    """``margin``: Guo et al.'s contrastive loss, ``d(pos)^2 + max(0, margin - d(neg))^2`` with one
    negative per pair (the batch shifted by a random offset); ``infonce``: symmetric cross-entropy
    over all pairs of the batch with logits ``-d / temperature`` (Euclidean distances, the
    geometry the metrics use; pairs with identical captions are not used as each other's
    negatives). InfoNCE sees B-1 negatives per pair instead of one and converges in far fewer
    steps, which is why the CPU preset uses it."""
    margin: float = 10.0
    """Margin of the ``margin`` loss (T2M's ``negative_margin``)."""
    temperature: float = 1.0
    """Temperature of the ``infonce`` logits (distances are divided by it)."""
    batch_size: int = 32
    """Pairs per step (T2M: 32)."""
    total_steps: int = 100_000
    """Optimisation steps."""
    lr: float = 1e-4
    """AdamW learning rate (T2M: Adam, 1e-4; AdamW with weight_decay 0 is the same)."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    cosine_decay: bool = False
    """Decay the learning rate to 0 along a cosine after the warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 0.0
    """Clip the gradient norm to this value (0: no clipping)."""
    crop_coin: bool = True
    """T2M's length augmentation: a third of the time drop one more unit of frames, at a random start."""
    min_word_count: int = 1
    """Words seen fewer times in the training captions map to ``unk``."""
    seed: int = 0
    """Seed of the weights, the batch order, caption choice and crops."""
    log_every: int = 50
    """Log training scalars every this many steps."""
    eval_every: int = 1000
    """Validate (R-precision, MM-Dist) every this many steps and at the end (0: only at the end)."""
    val_repeats: int = 5
    """Shuffles of the validation pairs averaged for R-precision (batches of 32)."""
    final_model: Literal["best", "last"] = "best"
    """Weights saved at the end: best validation R-precision (mean of top-1/2/3), or the last step."""
    tensorboard: bool = True
    """Write TensorBoard scalars next to ``metrics.jsonl``."""
    progress_bar: bool = True
    """Show a tqdm progress bar."""
    num_threads: int = 0
    """Torch intra-op CPU threads (0: torch's default). 1 avoids stalls on a shared CPU."""


@dataclass
class EvaluatorDataConfig:
    """Where the pairs come from (recorded so a checkpoint says what it was trained on)."""

    data_root: str = ""
    """HumanML3D-layout dataset directory (set from ``--data_root``; stored as an absolute path)."""
    dataset: str | None = None
    """``humanml3d`` or ``kit``; None: detected from the feature size."""
    train_split: str = "train"
    """Split the training pairs come from."""
    val_split: str = "val"
    """Split used for model selection."""
    min_length: int = 40
    """Shortest clip kept, in frames (T2M: 40)."""
    max_length: int = 196
    """Longest clip kept, in frames (T2M keeps < 200 and crops to 196)."""


@dataclass
class EvaluatorConfig:
    """Everything needed to rebuild, train and identify a text-motion evaluator."""

    preset: str = "t2m"
    """Name of the preset this config started from (informational)."""
    model: EvaluatorModelConfig = field(default_factory=EvaluatorModelConfig)
    """Architecture."""
    train: EvaluatorTrainConfig = field(default_factory=EvaluatorTrainConfig)
    """Optimisation."""
    data: EvaluatorDataConfig = field(default_factory=EvaluatorDataConfig)
    """Dataset location and splits."""


def _t2m() -> EvaluatorConfig:
    return EvaluatorConfig()


def _tiny() -> EvaluatorConfig:
    # T2M's structure at a quarter of its widths, for the synthetic corpus on one CPU thread.
    # max_text_len 30: synthetic captions of three actions reach 28 tokens (T2M's 20 would cut
    # off the last action).
    return EvaluatorConfig(
        preset="tiny",
        model=EvaluatorModelConfig(
            dim_word=64, dim_text_hidden=128, dim_coemb_hidden=128, dim_movement_enc_hidden=128,
            dim_movement_latent=128, dim_motion_hidden=128, max_text_len=30, dropout=0.1,
        ),
        train=EvaluatorTrainConfig(
            loss="infonce", temperature=1.0, batch_size=64, total_steps=400, lr=2e-3, warmup_steps=30,
            cosine_decay=True, grad_clip=1.0, log_every=50, eval_every=100, val_repeats=5, num_threads=1,
        ),
    )


PRESETS: dict[str, Callable[[], EvaluatorConfig]] = {"t2m": _t2m, "tiny": _tiny}
"""Named presets: ``PRESETS[name]()`` returns a fresh :class:`EvaluatorConfig`."""


def get_preset(name: str) -> EvaluatorConfig:
    """A fresh copy of preset ``name`` (``t2m`` or ``tiny``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown evaluator preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]()


def check_config(cfg: EvaluatorConfig) -> EvaluatorConfig:
    """Validate ranges the types cannot express; ``ValueError`` naming the field."""
    m, t, d = cfg.model, cfg.train, cfg.data
    positive = {
        "model.nfeats": m.nfeats, "model.dim_word": m.dim_word, "model.dim_text_hidden": m.dim_text_hidden,
        "model.dim_coemb_hidden": m.dim_coemb_hidden, "model.dim_movement_enc_hidden": m.dim_movement_enc_hidden,
        "model.dim_movement_latent": m.dim_movement_latent, "model.dim_motion_hidden": m.dim_motion_hidden,
        "model.max_text_len": m.max_text_len, "model.max_motion_length": m.max_motion_length,
        "train.batch_size": t.batch_size, "train.total_steps": t.total_steps, "train.lr": t.lr,
        "train.temperature": t.temperature, "train.margin": t.margin, "train.val_repeats": t.val_repeats,
        "train.min_word_count": t.min_word_count, "data.min_length": d.min_length,
    }
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    if m.dim_pos_ohot != len(POS_ENUMERATOR):
        raise ValueError(f"model.dim_pos_ohot must be {len(POS_ENUMERATOR)} (T2M's POS categories), got {m.dim_pos_ohot}")
    if m.unit_length != 4:
        raise ValueError(f"model.unit_length must be 4 (two stride-2 convolutions), got {m.unit_length}")
    if m.max_motion_length < m.unit_length:
        raise ValueError(f"model.max_motion_length={m.max_motion_length} is shorter than one unit ({m.unit_length})")
    if m.drop_foot_contacts and m.nfeats <= 4:
        raise ValueError(f"model.nfeats={m.nfeats} leaves nothing after dropping 4 foot-contact dims")
    if not 0.0 <= m.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {m.dropout}")
    if t.batch_size < 2:
        raise ValueError(f"train.batch_size must be >= 2 (contrastive), got {t.batch_size}")
    for name in ("warmup_steps", "log_every", "eval_every", "num_threads"):
        if getattr(t, name) < 0:
            raise ValueError(f"train.{name} must be >= 0, got {getattr(t, name)}")
    if d.max_length < d.min_length:
        raise ValueError(f"data.max_length={d.max_length} < data.min_length={d.min_length}")
    return cfg


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def as_clip_list(
    features: Any, lengths: Sequence[int] | None, nfeats: int, unit_length: int, name: str = "features"
) -> list[np.ndarray]:
    """Unnormalized features as a list of float32 ``(T_i, D)`` arrays, validated.

    Accepts ``(N, T, D)`` (with ``lengths``, else every clip is ``T`` long) or a list of ``(T_i, D)``
    arrays (``lengths`` may shorten them). A single ``(T, D)`` array is refused (ambiguous).

    Raises:
        ValueError: naming the clip index for a wrong feature size, NaN/inf, a length outside the
            array, or fewer frames than ``unit_length``.
    """
    if torch.is_tensor(features):
        features = features.detach().cpu().numpy()
    if isinstance(features, np.ndarray):
        if features.ndim == 2:
            raise ValueError(f"{name}: got one (T, D) clip; pass a list of clips or an (N, T, D) array")
        if features.ndim != 3:
            raise ValueError(f"{name}: expected (N, T, D) features or a list of (T, D) clips, got shape {features.shape}")
        clips = list(features)
    else:
        clips = list(features)
    if lengths is not None:
        lengths = [int(x) for x in (lengths.tolist() if hasattr(lengths, "tolist") else lengths)]
        if len(lengths) != len(clips):
            raise ValueError(f"{name}: {len(clips)} clips but {len(lengths)} lengths")
    out = []
    for i, c in enumerate(clips):
        arr = np.asarray(c.detach().cpu().numpy() if torch.is_tensor(c) else c, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != nfeats:
            raise ValueError(f"{name}[{i}]: expected (T, {nfeats}) features, got shape {arr.shape}")
        if lengths is not None:
            if not 0 < lengths[i] <= arr.shape[0]:
                raise ValueError(f"{name}[{i}]: length {lengths[i]} outside 1..{arr.shape[0]}")
            arr = arr[: lengths[i]]
        if arr.shape[0] < unit_length:
            raise ValueError(f"{name}[{i}]: {arr.shape[0]} frame(s) is shorter than one unit ({unit_length} frames)")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}[{i}]: contains NaN or inf")
        out.append(arr)
    return out


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class MaskedMovementEncoder(MovementConvEncoder):
    """T2M's movement encoder (same layers and keys) that zeroes activations past each length,
    so a clip's embedding does not depend on the padding of its batch."""

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if lengths is None:
            return super().forward(inputs)
        conv1, drop1, act1, conv2, drop2, act2 = self.main
        h = act1(drop1(conv1(inputs.permute(0, 2, 1))))  # (B, C, T) -> (B, H, T/2)
        # positions at or beyond length/2 would see padding; zero them as the conv's own padding
        valid = torch.arange(h.shape[-1], device=h.device)[None, :] < (lengths.to(h.device)[:, None] // 2)
        h = h * valid[:, None, :].to(h.dtype)
        h = act2(drop2(conv2(h)))  # (B, H, T/2) -> (B, L, T/4)
        return self.out_net(h.permute(0, 2, 1))  # (B, T/4, L)


class TextMotionEvaluator(nn.Module):
    """Text and motion encoders into one embedding space, with vocabulary and normalization.

    :meth:`encode_text` and :meth:`encode_motion` take captions and *unnormalized* features and
    return float32 numpy embeddings ``(N, D)``; :meth:`forward_text` / :meth:`forward_motion`
    are the batched training-side calls on prepared tensors.
    """

    def __init__(self, config: EvaluatorConfig, vocab: Vocabulary, mean: np.ndarray | None = None,
                 std: np.ndarray | None = None) -> None:
        super().__init__()
        self.config = check_config(config)
        self.vocab = vocab
        m = config.model
        d_in = m.nfeats - 4 if m.drop_foot_contacts else m.nfeats
        self.word_emb = nn.Embedding(len(vocab), m.dim_word, padding_idx=0)
        self.movement_encoder = MaskedMovementEncoder(d_in, m.dim_movement_enc_hidden, m.dim_movement_latent, m.dropout)
        self.text_encoder = TextEncoderBiGRUCo(m.dim_word, m.dim_pos_ohot, m.dim_text_hidden, m.dim_coemb_hidden)
        self.motion_encoder = MotionEncoderBiGRUCo(m.dim_movement_latent, m.dim_motion_hidden, m.dim_coemb_hidden)
        mean, std = checked_mean_std(mean, std, m.nfeats)
        # not in the weights file (they live in mean.npy/std.npy) but follow the module's device
        self.register_buffer("mean", torch.from_numpy(mean.copy()), persistent=False)
        self.register_buffer("std", torch.from_numpy(std.copy()), persistent=False)

    # ---- properties ----------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.word_emb.weight.device

    @property
    def embedding_dim(self) -> int:
        """Size D of the embeddings."""
        return self.config.model.dim_coemb_hidden

    # ---- training-side (prepared tensors) ---------------------------------------------------------

    def forward_text(self, word_ids: torch.Tensor, pos: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` ids, ``(B, L, 15)`` POS one-hots, ``(B,)`` lengths -> ``(B, D)``."""
        if not self.config.model.use_pos:
            pos = torch.zeros_like(pos)
        return self.text_encoder(self.word_emb(word_ids), pos, lengths)

    def forward_motion(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Normalized ``(B, T, D_in)`` (foot contacts already dropped when configured), ``(B,)``
        lengths (multiples of 4) -> ``(B, D)``."""
        movements = self.movement_encoder(x, lengths)  # (B, T/4, latent)
        return self.motion_encoder(movements, lengths // self.config.model.unit_length)

    # ---- preparation ------------------------------------------------------------------------------

    def prepare_text(self, captions: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Captions -> ``(ids (B, L), pos (B, L, 15), lengths (B,))`` tensors (on CPU)."""
        max_len = self.config.model.max_text_len
        enc = [self.vocab.encode(c, max_len) for c in captions]
        ids = torch.from_numpy(np.stack([e[0] for e in enc]))
        pos = torch.from_numpy(np.stack([e[1] for e in enc]))
        lens = torch.tensor([e[2] for e in enc], dtype=torch.int64)
        return ids, pos, lens

    def prepare_motion(self, clips: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalized ``(T_i, D)`` clips -> normalized, cropped, zero-padded ``(B, T, D_in)`` and
        lengths ``(B,)`` (each cropped to ``max_motion_length`` and floored to a multiple of 4)."""
        m = self.config.model
        mean, std = self.mean.cpu().numpy(), self.std.cpu().numpy()
        lens = [min(c.shape[0], m.max_motion_length) // m.unit_length * m.unit_length for c in clips]
        d_in = m.nfeats - 4 if m.drop_foot_contacts else m.nfeats
        x = np.zeros((len(clips), max(lens), d_in), np.float32)
        for i, (c, t) in enumerate(zip(clips, lens)):
            x[i, :t] = ((c[:t] - mean) / std)[:, :d_in]
        return torch.from_numpy(x), torch.tensor(lens, dtype=torch.int64)

    # ---- public encoders ----------------------------------------------------------------------------

    @torch.no_grad()
    def encode_text(self, captions: Sequence[Any], batch_size: int = 256) -> np.ndarray:
        """``(N, D)`` float32 embeddings of captions: ``Caption`` objects (their ``word/POS``
        tokens), lists of ``word/POS`` tokens, or plain strings (tagged with the vocabulary's
        surface table). Unknown words map to ``unk``."""
        if isinstance(captions, (str, bytes)):
            raise ValueError("encode_text expects a list of captions, not a single string")
        was = self.training
        self.eval()
        out = []
        try:
            for b0 in range(0, len(captions), batch_size):
                ids, pos, lens = self.prepare_text(captions[b0 : b0 + batch_size])
                out.append(self.forward_text(ids.to(self.device), pos.to(self.device), lens).cpu().numpy())
        finally:
            self.train(was)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.embedding_dim), np.float32)

    @torch.no_grad()
    def encode_motion(self, features: Any, lengths: Sequence[int] | None = None, batch_size: int = 256) -> np.ndarray:
        """``(N, D)`` float32 embeddings of unnormalized features: ``(N, T, D)`` with optional
        ``lengths``, or a list of ``(T_i, D)`` clips. Clips are cropped to ``max_motion_length``
        and floored to a multiple of 4 frames; the result does not depend on ``batch_size``."""
        m = self.config.model
        clips = as_clip_list(features, lengths, m.nfeats, m.unit_length)
        was = self.training
        self.eval()
        out: list[np.ndarray | None] = [None] * len(clips)
        order = sorted(range(len(clips)), key=lambda i: clips[i].shape[0])  # similar lengths together
        try:
            for b0 in range(0, len(order), batch_size):
                idx = order[b0 : b0 + batch_size]
                x, lens = self.prepare_motion([clips[i] for i in idx])
                emb = self.forward_motion(x.to(self.device), lens.to(self.device)).cpu().numpy()
                for k, i in enumerate(idx):
                    out[i] = emb[k]
        finally:
            self.train(was)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, self.embedding_dim), np.float32)  # type: ignore[arg-type]

    # ---- checkpoints --------------------------------------------------------------------------------

    def _write_files(self, folder: Path) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"), metadata={"format": _FORMAT})
        save_config(self.config, folder / "config.yaml")
        (folder / "vocab.json").write_text(self.vocab.to_json(), encoding="utf-8")
        np.save(folder / "mean.npy", self.mean.cpu().numpy(), allow_pickle=False)
        np.save(folder / "std.npy", self.std.cpu().numpy(), allow_pickle=False)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the checkpoint files and ``manifest.json`` (their hashes, written last).

        A directory that is absent or holds only checkpoint files is replaced as a whole
        (atomically); one that also holds other things (a training ``out_dir``) gets the files
        swapped in one by one with the manifest removed first and written last, so an interrupted
        save is detected on load.
        """
        return save_checkpoint_dir(directory, CHECKPOINT_FILES, _FORMAT, self._write_files, ".evaluator-save")

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: str | torch.device | None = None, verify: bool = True
    ) -> "TextMotionEvaluator":
        """Load a checkpoint directory strictly.

        Raises:
            FileNotFoundError: a checkpoint file is missing (naming it).
            ValueError: hashes do not match the manifest, the config or vocabulary is malformed,
                or the weights have missing / unexpected / misshapen keys (naming them).
        """
        directory = Path(directory)
        for name in CHECKPOINT_FILES + (MANIFEST,):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} is not an evaluator checkpoint: {name} is missing")
        if verify:
            verify_manifest(directory, CHECKPOINT_FILES, _FORMAT)
        try:
            config = load_config(EvaluatorConfig, directory / "config.yaml")
        except ConfigError as e:
            raise ValueError(f"bad evaluator config in {directory}: {e}") from e
        vocab = Vocabulary.load(directory / "vocab.json")
        mean = np.load(directory / "mean.npy", allow_pickle=False)
        std = np.load(directory / "std.npy", allow_pickle=False)
        model = cls(config, vocab, mean=mean, std=std)
        model.load_state_dict_strict(load_file(str(directory / "model.safetensors")), str(directory / "model.safetensors"))
        model.eval()
        if device is not None:
            model.to(device)
        return model

    def load_state_dict_strict(self, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """``load_state_dict(strict=True)`` with a ``ValueError`` naming missing/unexpected/misshapen keys."""
        check_state_dict(self.state_dict(), state, source, "the evaluator config/vocabulary")
        self.load_state_dict(state, strict=True)


def replace_model(cfg: EvaluatorConfig, **changes: Any) -> EvaluatorConfig:
    """Copy of ``cfg`` with ``model`` fields changed (e.g. the feature size found in the data)."""
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **changes))
