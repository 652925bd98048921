"""VQ-VAE trajectory loss terms: root weight, integrated root path/heading, global joint velocity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from motiongpt.config import apply_overrides
from motiongpt.motion.features import features_to_joints
from motiongpt.vq import VQVAE, get_preset
from motiongpt.vq.config import check_config
from motiongpt.vq.model import VQOutput, window_joints


def _config(**model: object):
    cfg = apply_overrides(get_preset("tiny"), ["model.width=32", "model.code_dim=16", "model.nb_code=32"])
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model))


def _features(b: int, t: int, seed: int = 0) -> np.ndarray:
    """Unnormalized features ``(B, T, 263)`` with a turning, travelling root (not physical motion)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(scale=0.05, size=(b, t, 263))
    f[..., 0] = rng.uniform(-0.05, 0.05, size=(b, 1))  # half-yaw velocity (rad / frame)
    f[..., 1:3] = rng.uniform(-0.05, 0.05, size=(b, 1, 2))  # root step in the facing frame (m)
    f[..., 3] = 0.9  # root height
    return f


def test_window_joints_match_features_to_joints() -> None:
    f = _features(3, 40)
    joints, yaw = window_joints(torch.from_numpy(f), 22)
    assert joints.shape == (3, 40, 22, 3) and yaw.shape == (3, 40)
    for i in range(3):
        np.testing.assert_allclose(joints[i].numpy(), features_to_joints(f[i]), atol=1e-5)
    # yaw integrates twice the half-angle velocity of the previous frames
    np.testing.assert_allclose(yaw[:, -1].numpy(), 2 * f[:, :-1, 0].sum(axis=1), atol=1e-9)


def _loss_of(model: VQVAE, x: torch.Tensor, recon: torch.Tensor) -> dict[str, torch.Tensor]:
    out = VQOutput(recon=recon, codes=torch.zeros(x.shape[0], x.shape[1] // 4, dtype=torch.long),
                   commit_loss=torch.tensor(0.0), perplexity=torch.tensor(1.0))
    return model.loss(x, out)


def test_extra_terms_are_off_by_default_as_in_t2m() -> None:
    cfg = get_preset("t2m").model
    assert (cfg.root_weight, cfg.traj_weight, cfg.vel_weight) == (0.0, 0.0, 0.0)
    model = VQVAE(_config(root_weight=0.0, traj_weight=0.0, vel_weight=0.0))
    x = torch.randn(2, 16, 263)
    losses = _loss_of(model, x, x + 0.1)
    assert not {"root", "traj", "vel"} & set(losses)


def test_weighted_total_and_root_term() -> None:
    torch.manual_seed(0)
    model = VQVAE(_config(pos_weight=0.5, root_weight=2.0, traj_weight=0.5, vel_weight=0.25))
    x = torch.randn(2, 16, 263)
    recon = x + 0.3 * torch.randn_like(x)
    losses = _loss_of(model, x, recon)
    assert torch.allclose(losses["root"], F.smooth_l1_loss(recon[..., :4], x[..., :4]))
    expected = losses["recon"] + 0.5 * losses["pos"] + 2.0 * losses["root"] + 0.5 * losses["traj"] + 0.25 * losses["vel"]
    assert torch.allclose(losses["loss"], expected)


def test_traj_term_integrates_a_velocity_bias() -> None:
    """A constant forward-velocity bias costs the same per frame to the root term, but its
    integrated path error grows with the window: longer windows, larger trajectory term."""
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    model = VQVAE(_config(traj_weight=1.0), mean=mean, std=std)
    vals = []
    for t in (16, 64):
        x = torch.from_numpy(_features(2, t).astype(np.float32))
        x[..., 0] = 0.0  # no turning: the bias stays along one world direction
        recon = x.clone()
        recon[..., 2] += 0.01  # 1 cm per frame too far forward
        vals.append(float(_loss_of(model, x, recon)["traj"]))
    # mean over frames of a linearly growing error: (t - 1) / 2 cm -> 7.5 and 31.5 cm
    np.testing.assert_allclose(vals, [0.075, 0.315], rtol=1e-4)


def test_vel_term_sees_a_flattened_oscillation() -> None:
    """A wrist oscillating +-5 cm at 2 Hz vs the same motion with the wrist held at its mean: the
    velocity term is large, and zero for a perfect reconstruction."""
    mean, std = np.zeros(263, np.float32), np.ones(263, np.float32)
    model = VQVAE(_config(vel_weight=1.0), mean=mean, std=std)
    x = torch.from_numpy(_features(1, 40).astype(np.float32))
    x[..., 0:3] = 0.0  # standing still, so only the wrist moves
    wrist_x = 4 + (21 - 1) * 3  # ric x of joint 21 (right wrist)
    x[0, :, wrist_x] = 0.05 * torch.sin(2 * np.pi * 2.0 * torch.arange(40) / 20.0)
    flat = x.clone()
    flat[0, :, wrist_x] = 0.0
    assert float(_loss_of(model, x, x)["vel"]) < 1e-6
    # (d/dt 0.05 sin(4 pi t))^2 averages (0.2 pi)^2 / 2 = 0.197 (m/s)^2 on one of 22 joints
    # (finite differences at 20 fps see 97 % of it)
    assert float(_loss_of(model, x, flat)["vel"]) == pytest.approx(0.197 * 0.97 / 22, rel=0.05)


def test_trajectory_terms_train_the_encoder() -> None:
    torch.manual_seed(0)
    model = VQVAE(_config(root_weight=0.0, traj_weight=1.0, vel_weight=1.0, pos_weight=0.0)).train()
    x = torch.from_numpy(_features(2, 32).astype(np.float32))
    losses = model.loss(x, model(x))
    (losses["traj"] + losses["vel"]).backward()
    assert model.encoder.layers[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("field", ["root_weight", "traj_weight", "vel_weight"])
def test_negative_weights_are_rejected(field: str) -> None:
    cfg = _config()
    bad = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **{field: -1.0}))
    with pytest.raises(ValueError, match=f"model.{field}"):
        check_config(bad)
