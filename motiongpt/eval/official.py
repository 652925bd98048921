"""Loader for the official T2M text-motion evaluator (Guo et al. 2022), for users who have its files.

The numbers papers report on HumanML3D / KIT-ML (FID, R-precision, MM-Dist, Diversity,
MultiModality) come from one fixed pretrained matching model. Its weights are not shipped here
(nothing can be downloaded); a user who has them points :func:`load_official_evaluator` at:

* ``text_mot_match/model/finest.tar`` (T2M's ``checkpoints/t2m/text_mot_match/model/finest.tar``):
  a torch pickle with the state dicts ``movement_encoder``, ``text_encoder``, ``motion_encoder``
  (plus ``epoch`` and optimizer states, ignored). Loaded with ``torch.load(weights_only=True)``;
* the GloVe files of T2M's ``glove/`` folder: ``our_vab_data.npy`` (word vectors ``(V, 300)``),
  ``our_vab_words.pkl`` (list of words), ``our_vab_idx.pkl`` (word -> row). The pickles are read
  with a restricted unpickler that only builds lists, dicts, strings and integers;
* the evaluator's motion normalization ``mean.npy`` / ``std.npy`` (T2M's
  ``checkpoints/t2m/Comp_v6_KLD005/meta/``, which T2M-GPT's evaluation also uses; they differ
  from the dataset's ``Mean.npy``/``Std.npy``).

Architectures (T2M ``networks/modules.py``; layer names are the state-dict keys) and the sizes of
T2M's ``EvaluatorModelWrapper`` / ``get_opt``:

* ``MovementConvEncoder(dim_pose - 4, 512, 512)``: Conv1d(k4, s2, p1) -> Dropout(0.2) ->
  LeakyReLU(0.2) -> Conv1d(k4, s2, p1) -> Dropout -> LeakyReLU (``main.0``, ``main.3``), then
  ``out_net`` Linear(512, 512); the 4 foot-contact dims are dropped, time is downsampled by 4;
* ``TextEncoderBiGRUCo(word_size=300, pos_size=15, hidden_size=512, output_size=512)``:
  ``pos_emb`` Linear(15, 300) added to the GloVe vector, ``input_emb`` Linear(300, 512),
  bidirectional ``gru`` (512), learned initial state ``hidden (2, 1, 512)``, ``output_net``
  Linear(1024, 512) -> LayerNorm(512) -> LeakyReLU(0.2) -> Linear(512, 512);
* ``MotionEncoderBiGRUCo(input_size=512, hidden_size=1024, output_size=512)``: ``input_emb``
  Linear(512, 1024), bidirectional ``gru`` (1024), ``hidden (2, 1, 1024)``, ``output_net``
  Linear(2048, 1024) -> LayerNorm(1024) -> LeakyReLU(0.2) -> Linear(1024, 512).

``unit_length = 4`` (motion lengths are divided by it for the GRU), ``max_text_len = 20`` (tokens
cropped to 20, wrapped in ``sos``/``eos``), ``max_motion_length = 196`` (motions zero-padded to
196 frames before the movement encoder, so padding reaches the last valid windows exactly as in
the reference). ``dim_pose`` is 263 for HumanML3D and 251 for KIT-ML.

:class:`OfficialT2MEvaluator` has the same ``encode_text`` / ``encode_motion`` API as
:class:`motiongpt.eval.evaluator.TextMotionEvaluator`, so :mod:`motiongpt.eval.protocol` works
with either.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from motiongpt.eval.text import EOS, SOS, UNK, caption_tokens, pos_category, pos_one_hot

__all__ = [
    "OfficialSizes",
    "MovementConvEncoder",
    "TextEncoderBiGRUCo",
    "MotionEncoderBiGRUCo",
    "GloVe",
    "restricted_pickle_load",
    "load_glove",
    "OfficialT2MEvaluator",
    "load_official_evaluator",
]


@dataclass(frozen=True)
class OfficialSizes:
    """Layer sizes of T2M's evaluator (``EvaluatorModelWrapper`` and ``get_opt``)."""

    dim_pose: int = 263
    """Feature size: 263 HumanML3D (``t2m``), 251 KIT-ML (``kit``)."""
    dim_word: int = 300
    """GloVe word-vector size."""
    dim_pos_ohot: int = 15
    """Part-of-speech one-hot size (``len(POS_enumerator)``)."""
    dim_text_hidden: int = 512
    """Text bi-GRU hidden size."""
    dim_coemb_hidden: int = 512
    """Joint embedding size (the D of every metric)."""
    dim_movement_enc_hidden: int = 512
    """Channels of the movement encoder's first convolution."""
    dim_movement_latent: int = 512
    """Channels of the movement encoder's output (the motion GRU's input)."""
    dim_motion_hidden: int = 1024
    """Motion bi-GRU hidden size."""
    unit_length: int = 4
    """Frames per movement-encoder step (two stride-2 convolutions)."""
    max_text_len: int = 20
    """Caption tokens kept (before ``sos``/``eos``)."""
    max_motion_length: int = 196
    """Frames motions are padded (and cropped) to."""


def _init_weight(m: nn.Module) -> None:
    # T2M's init_weight: Xavier-normal weights, zero biases (weights are overwritten on load)
    if isinstance(m, (nn.Conv1d, nn.Linear, nn.ConvTranspose1d)):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)


class MovementConvEncoder(nn.Module):
    """T2M's movement encoder: ``(B, T, input_size) -> (B, T / 4, output_size)``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(dropout),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(dropout),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.main.apply(_init_weight)
        self.out_net.apply(_init_weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        outputs = self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1)  # (B, T, C) -> (B, C, T) -> (B, T/4, H)
        return self.out_net(outputs)


def _bigru_head(hidden_size: int, output_size: int) -> nn.Sequential:
    """The official co-embedding head of both bi-GRU encoders: ``(B, 2H) -> (B, out)`` (its layer
    indices 0, 1, 3 are the official ``output_net.*`` state-dict keys)."""
    return nn.Sequential(
        nn.Linear(hidden_size * 2, hidden_size),
        nn.LayerNorm(hidden_size),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden_size, output_size),
    )


class TextEncoderBiGRUCo(nn.Module):
    """T2M's text encoder: word vectors + POS one-hots ``(B, L, *)`` -> ``(B, output_size)``."""

    def __init__(self, word_size: int, pos_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _bigru_head(hidden_size, output_size)
        self.input_emb.apply(_init_weight)
        self.pos_emb.apply(_init_weight)
        self.output_net.apply(_init_weight)
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor) -> torch.Tensor:
        inputs = word_embs + self.pos_emb(pos_onehot)  # (B, L, word_size)
        input_embs = self.input_emb(inputs)  # (B, L, H)
        hidden = self.hidden.repeat(1, inputs.shape[0], 1)  # (2, B, H)
        emb = pack_padded_sequence(input_embs, cap_lens.cpu().long(), batch_first=True, enforce_sorted=False)
        _, gru_last = self.gru(emb, hidden)  # (2, B, H): last step forward, first step backward
        return self.output_net(torch.cat([gru_last[0], gru_last[1]], dim=-1))  # (B, 2H) -> (B, out)


class MotionEncoderBiGRUCo(nn.Module):
    """T2M's motion encoder: movement features ``(B, T / 4, input_size)`` -> ``(B, output_size)``."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _bigru_head(hidden_size, output_size)
        self.input_emb.apply(_init_weight)
        self.output_net.apply(_init_weight)
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def forward(self, inputs: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        input_embs = self.input_emb(inputs)  # (B, N, H)
        hidden = self.hidden.repeat(1, inputs.shape[0], 1)  # (2, B, H)
        emb = pack_padded_sequence(input_embs, m_lens.cpu().long(), batch_first=True, enforce_sorted=False)
        _, gru_last = self.gru(emb, hidden)
        return self.output_net(torch.cat([gru_last[0], gru_last[1]], dim=-1))  # (B, 2H) -> (B, out)


# --------------------------------------------------------------------------------------------
# GloVe files
# --------------------------------------------------------------------------------------------


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global: only the built-in containers and scalars pickle
    encodes natively (list, dict, str, int, float, tuple, bool, None) can be built, so a crafted
    file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: the GloVe word files may only hold lists, dicts, strings and integers"
        )


def restricted_pickle_load(path: str | os.PathLike) -> Any:
    """Load a pickle that may only contain plain containers, strings and numbers.

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the file when it holds anything else (a class, a function, a numpy
            array) or is not a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(io.BytesIO(f.read())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a plain pickle of lists/dicts/strings/integers ({e})") from e


@dataclass
class GloVe:
    """T2M's ``WordVectorizer``: word -> 300-d vector, with the ``unk`` fallback."""

    vectors: np.ndarray
    """``(V, 300)`` float32 word vectors."""
    word2idx: dict[str, int]
    """Word -> row of ``vectors``."""

    def lookup(self, word: str, pos: str) -> tuple[np.ndarray, np.ndarray]:
        """``(vector (300,), POS one-hot (15,))`` as T2M: unknown words get ``unk`` and OTHER."""
        known = word in self.word2idx
        vec = self.vectors[self.word2idx[word if known else UNK]]
        return vec, pos_one_hot(pos_category(word, pos, known))


def load_glove(glove_dir: str | os.PathLike, prefix: str = "our_vab") -> GloVe:
    """Read ``<prefix>_data.npy``, ``<prefix>_words.pkl``, ``<prefix>_idx.pkl`` from ``glove_dir``.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: naming the file when its content does not fit (shapes, types, ``unk`` missing).
    """
    glove_dir = Path(glove_dir)
    paths = {k: glove_dir / f"{prefix}_{k}" for k in ("data.npy", "words.pkl", "idx.pkl")}
    for p in paths.values():
        if not p.is_file():
            raise FileNotFoundError(
                f"GloVe file {p} not found (T2M's glove/ folder holds {prefix}_data.npy, {prefix}_words.pkl, "
                f"{prefix}_idx.pkl)"
            )
    vectors = np.load(paths["data.npy"], allow_pickle=False)
    if vectors.ndim != 2:
        raise ValueError(f"{paths['data.npy']}: expected (V, dim) word vectors, got shape {vectors.shape}")
    words = restricted_pickle_load(paths["words.pkl"])
    word2idx = restricted_pickle_load(paths["idx.pkl"])
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{paths['words.pkl']}: expected a list of words")
    if not isinstance(word2idx, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in word2idx.items()):
        raise ValueError(f"{paths['idx.pkl']}: expected a dict word -> row index")
    bad = [w for w in words if w not in word2idx or not 0 <= word2idx[w] < vectors.shape[0]]
    if bad:
        raise ValueError(f"{paths['idx.pkl']}: words without a valid row in {paths['data.npy'].name}: {bad[:5]}")
    for special in (UNK, SOS, EOS):
        if special not in word2idx:
            raise ValueError(f"{paths['idx.pkl']}: the special word {special!r} is missing")
    # T2M keeps only the words of the words list
    return GloVe(vectors=vectors.astype(np.float32), word2idx={w: int(word2idx[w]) for w in words})


# --------------------------------------------------------------------------------------------
# The evaluator
# --------------------------------------------------------------------------------------------


class OfficialT2MEvaluator(nn.Module):
    """T2M's matching model with its GloVe table and normalization; ``encode_text``/``encode_motion``
    return numpy embeddings as :class:`motiongpt.eval.evaluator.TextMotionEvaluator` does."""

    def __init__(self, sizes: OfficialSizes, glove: GloVe | None, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        s = sizes
        self.sizes = s
        self.glove = glove
        self.movement_encoder = MovementConvEncoder(s.dim_pose - 4, s.dim_movement_enc_hidden, s.dim_movement_latent)
        self.text_encoder = TextEncoderBiGRUCo(s.dim_word, s.dim_pos_ohot, s.dim_text_hidden, s.dim_coemb_hidden)
        self.motion_encoder = MotionEncoderBiGRUCo(s.dim_movement_latent, s.dim_motion_hidden, s.dim_coemb_hidden)
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        for name, arr in (("mean", mean), ("std", std)):
            if arr.shape != (s.dim_pose,):
                raise ValueError(f"evaluator {name} has shape {arr.shape}, expected ({s.dim_pose},)")
        if (std <= 0).any() or not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise ValueError("evaluator mean/std must be finite with std > 0")
        self.register_buffer("mean", torch.from_numpy(mean.copy()), persistent=False)
        self.register_buffer("std", torch.from_numpy(std.copy()), persistent=False)
        self.eval()

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.text_encoder.hidden.device

    @property
    def embedding_dim(self) -> int:
        """Size D of the embeddings."""
        return self.sizes.dim_coemb_hidden

    @torch.no_grad()
    def encode_text(self, captions: Sequence[Any], batch_size: int = 256) -> np.ndarray:
        """``(N, 512)`` embeddings of captions (``Caption`` objects or ``word/POS`` token lists; a
        plain string is split into words tagged OTHER, since the official model expects spaCy tags)."""
        if self.glove is None:
            raise RuntimeError("this OfficialT2MEvaluator was built without GloVe files; encode_text needs them")
        s = self.sizes
        out = []
        self.eval()
        for b0 in range(0, len(captions), batch_size):
            chunk = captions[b0 : b0 + batch_size]
            words = np.zeros((len(chunk), s.max_text_len + 2, s.dim_word), np.float32)
            pos = np.zeros((len(chunk), s.max_text_len + 2, s.dim_pos_ohot), np.float32)
            lens = np.zeros(len(chunk), np.int64)
            for i, cap in enumerate(chunk):
                toks = [(SOS, "OTHER")] + caption_tokens(cap)[: s.max_text_len] + [(EOS, "OTHER")]
                for k, (w, p) in enumerate(toks):
                    words[i, k], pos[i, k] = self.glove.lookup(w, p)
                lens[i] = len(toks)
            emb = self.text_encoder(
                torch.from_numpy(words).to(self.device), torch.from_numpy(pos).to(self.device), torch.from_numpy(lens)
            )
            out.append(emb.cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, s.dim_coemb_hidden), np.float32)

    @torch.no_grad()
    def encode_motion(self, features: Any, lengths: Sequence[int] | None = None, batch_size: int = 256) -> np.ndarray:
        """``(N, 512)`` embeddings of unnormalized features (``(N, T, D)`` with ``lengths``, or a
        list of ``(T_i, D)``); lengths are cropped to ``max_motion_length`` and floored to a multiple
        of ``unit_length`` (T2M's dataset), motions zero-padded to ``max_motion_length``."""
        from motiongpt.eval.evaluator import as_clip_list  # shared input validation

        s = self.sizes
        clips = as_clip_list(features, lengths, s.dim_pose, s.unit_length)
        mean, std = self.mean.cpu().numpy(), self.std.cpu().numpy()
        out = []
        self.eval()
        for b0 in range(0, len(clips), batch_size):
            chunk = clips[b0 : b0 + batch_size]
            x = np.zeros((len(chunk), s.max_motion_length, s.dim_pose), np.float32)
            lens = np.zeros(len(chunk), np.int64)
            for i, c in enumerate(chunk):
                t = min(c.shape[0], s.max_motion_length) // s.unit_length * s.unit_length
                x[i, :t] = (c[:t] - mean) / std
                lens[i] = t
            xt = torch.from_numpy(x[..., :-4]).to(self.device)  # foot contacts dropped, as T2M
            movements = self.movement_encoder(xt)  # (B, 196/4, latent)
            emb = self.motion_encoder(movements, torch.from_numpy(lens // s.unit_length))
            out.append(emb.cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, s.dim_coemb_hidden), np.float32)


_STATE_KEYS = ("movement_encoder", "text_encoder", "motion_encoder")


def load_official_evaluator(
    checkpoint: str | os.PathLike,
    glove_dir: str | os.PathLike | None,
    meta_dir: str | os.PathLike,
    *,
    dataset: str = "t2m",
    device: str | torch.device = "cpu",
) -> OfficialT2MEvaluator:
    """Build T2M's evaluator from its files (see the module docstring).

    Args:
        checkpoint: ``finest.tar``, or the ``text_mot_match`` folder holding ``model/finest.tar``.
        glove_dir: folder with ``our_vab_data.npy``, ``our_vab_words.pkl``, ``our_vab_idx.pkl``
            (None: motion-only use; ``encode_text`` then raises).
        meta_dir: folder with the evaluator's ``mean.npy`` and ``std.npy``.
        dataset: ``t2m`` (HumanML3D, 263-d) or ``kit`` (KIT-ML, 251-d).
        device: where to put the model (an argument; nothing is moved implicitly).

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: naming the file when a state dict is missing or does not fit the architecture
            (missing / unexpected keys, shape mismatches), or the statistics have the wrong shape.
    """
    dims = {"t2m": 263, "humanml3d": 263, "kit": 251}
    if dataset not in dims:
        raise ValueError(f"dataset must be one of {sorted(dims)}, not {dataset!r}")
    ckpt = Path(checkpoint)
    if ckpt.is_dir():
        ckpt = ckpt / "model" / "finest.tar"
    if not ckpt.is_file():
        raise FileNotFoundError(f"official evaluator checkpoint {ckpt} not found (T2M's text_mot_match/model/finest.tar)")
    meta_dir = Path(meta_dir)
    stats = []
    for name in ("mean.npy", "std.npy"):
        p = meta_dir / name
        if not p.is_file():
            raise FileNotFoundError(
                f"evaluator normalization {p} not found (T2M's checkpoints/<dataset>/Comp_v6_KLD005/meta/{name})"
            )
        stats.append(np.load(p, allow_pickle=False))
    glove = load_glove(glove_dir) if glove_dir is not None else None
    sizes = OfficialSizes(dim_pose=dims[dataset])
    if glove is not None and glove.vectors.shape[1] != sizes.dim_word:
        raise ValueError(f"GloVe vectors in {glove_dir} are {glove.vectors.shape[1]}-d, the evaluator expects {sizes.dim_word}")
    model = OfficialT2MEvaluator(sizes, glove, stats[0], stats[1])
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise ValueError(f"{ckpt}: cannot be read with torch.load(weights_only=True) ({e})") from e
    if not isinstance(state, dict):
        raise ValueError(f"{ckpt}: expected a dict of state dicts, got {type(state).__name__}")
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"{ckpt}: missing state dict(s) {missing} (found keys {sorted(map(str, state))[:10]})")
    for key in _STATE_KEYS:
        module = getattr(model, key)
        sd = state[key]
        own = module.state_dict()
        problems = []
        if sorted(set(own) - set(sd)):
            problems.append(f"missing keys {sorted(set(own) - set(sd))}")
        if sorted(set(sd) - set(own)):
            problems.append(f"unexpected keys {sorted(set(sd) - set(own))}")
        problems += [
            f"{k}: {tuple(sd[k].shape)} vs expected {tuple(own[k].shape)}"
            for k in sorted(set(own) & set(sd))
            if tuple(sd[k].shape) != tuple(own[k].shape)
        ]
        if problems:
            raise ValueError(f"{ckpt}: '{key}' does not fit the official architecture: " + "; ".join(problems))
        module.load_state_dict(sd, strict=True)
    model.eval()
    return model.to(device)

