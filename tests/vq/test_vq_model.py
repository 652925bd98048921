"""VQ-VAE model: shapes, codebook EMA and dead-code reset, losses, input validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from motiongpt.config import apply_overrides
from motiongpt.vq import VQVAE, QuantizeEMAReset, get_preset, length_buckets
from motiongpt.vq.model import Decoder, Encoder


def small_config(**model: object):
    cfg = apply_overrides(get_preset("tiny"), ["model.width=32", "model.code_dim=16", "model.nb_code=32"])
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model)) if model else cfg


@pytest.fixture()
def model() -> VQVAE:
    torch.manual_seed(0)
    m = VQVAE(small_config())
    # One training-mode pass initializes the codebook from encoder outputs.
    m.train()
    m(torch.randn(4, 64, 263))
    return m.eval()


def test_encoder_downsamples_by_4_and_decoder_inverts() -> None:
    cfg = small_config().model
    enc = Encoder(263, cfg.code_dim, cfg.width, cfg.down_t, cfg.depth, cfg.dilation_growth_rate)
    dec = Decoder(263, cfg.code_dim, cfg.width, cfg.down_t, cfg.depth, cfg.dilation_growth_rate)
    for t in (4, 64, 196):
        z = enc(torch.randn(2, 263, t))
        assert z.shape == (2, cfg.code_dim, t // 4)
        assert dec(z).shape == (2, 263, t)


def test_encoder_uses_increasing_dilations_decoder_reversed() -> None:
    cfg = small_config().model
    enc = Encoder(263, cfg.code_dim, cfg.width, cfg.down_t, cfg.depth, cfg.dilation_growth_rate)
    dec = Decoder(263, cfg.code_dim, cfg.width, cfg.down_t, cfg.depth, cfg.dilation_growth_rate)
    enc_d = [b.conv1.dilation[0] for b in enc.layers[2][1].blocks]
    dec_d = [b.conv1.dilation[0] for b in dec.layers[2][0].blocks]
    assert enc_d == [1, 3, 9] and dec_d == [9, 3, 1]


def test_forward_shapes_and_loss_terms() -> None:
    torch.manual_seed(0)
    # T2M-GPT's loss composition (the trajectory / velocity terms are tested in test_vq_loss.py)
    m = VQVAE(small_config(pos_weight=0.5, root_weight=0.0, traj_weight=0.0, vel_weight=0.0)).train()
    x = torch.randn(3, 64, 263)
    out = m(x)
    assert out.recon.shape == (3, 64, 263) and out.codes.shape == (3, 16)
    assert out.codes.dtype == torch.int64
    losses = m.loss(x, out)
    expected = losses["recon"] + 0.5 * losses["pos"] + 0.02 * losses["commit"]
    assert torch.allclose(losses["loss"], expected)
    pos = torch.nn.functional.smooth_l1_loss(out.recon[..., 4:67], x[..., 4:67])
    assert torch.allclose(losses["pos"], pos)
    losses["loss"].backward()
    # The straight-through estimator carries the reconstruction gradient into the encoder.
    assert m.encoder.layers[0].weight.grad.abs().sum() > 0


def test_forward_rejects_lengths_not_multiple_of_4() -> None:
    m = VQVAE(small_config())
    with pytest.raises(ValueError, match="multiple of 4"):
        m(torch.randn(1, 66, 263))


def test_encode_decode_shapes_and_odd_lengths_cropped(model: VQVAE) -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(70, 263)).astype(np.float32)
    codes = model.encode(feats)
    assert codes.shape == (17,) and codes.dtype == np.int64
    assert ((codes >= 0) & (codes < model.nb_code)).all()
    np.testing.assert_array_equal(codes, model.encode(feats[:68]))  # 70 -> cropped to 68
    dec = model.decode(codes)
    assert dec.shape == (68, 263) and dec.dtype == np.float32
    assert model.encode(torch.from_numpy(feats)).shape == (17,)


def test_encode_batch_equals_per_clip(model: VQVAE) -> None:
    rng = np.random.default_rng(1)
    clips = [rng.normal(size=(t, 263)).astype(np.float32) for t in (40, 65, 40, 99, 8, 64)]
    batch = model.encode_batch(clips, batch_size=2)
    for clip, codes in zip(clips, batch):
        np.testing.assert_array_equal(codes, model.encode(clip))
    decoded = model.decode_batch(batch, batch_size=2)
    for codes, feats in zip(batch, decoded):
        np.testing.assert_allclose(feats, model.decode(codes), atol=1e-5)


def test_reconstruct_batch_equals_decode_encode(model: VQVAE) -> None:
    rng = np.random.default_rng(2)
    clips = [rng.normal(size=(t, 263)).astype(np.float32) for t in (41, 64)]
    feats, codes = model.reconstruct_batch(clips)
    for clip, f, c in zip(clips, feats, codes):
        np.testing.assert_array_equal(c, model.encode(clip))
        np.testing.assert_allclose(f, model.decode(c), atol=1e-5)


def test_length_buckets_groups_equal_lengths() -> None:
    buckets = length_buckets([8, 4, 8, 8, 4], batch_size=2)
    assert sorted(map(sorted, buckets)) == [[0, 2], [1, 4], [3]]


def test_normalization_round_trip() -> None:
    rng = np.random.default_rng(3)
    mean = rng.normal(size=263).astype(np.float32)
    std = rng.uniform(0.5, 2, size=263).astype(np.float32)
    m = VQVAE(small_config(), mean=mean, std=std)
    x = rng.normal(size=(8, 263)).astype(np.float32)
    np.testing.assert_allclose(m.denormalize(m.normalize(x)), x, atol=1e-5)
    np.testing.assert_allclose(m.normalize(x), (x - mean) / std, atol=1e-6)


# ---- codebook ---------------------------------------------------------------------------------


def make_quantizer(k: int = 8, c: int = 4) -> QuantizeEMAReset:
    q = QuantizeEMAReset(k, c, decay=0.99, reset_threshold=1.0)
    torch.manual_seed(0)
    q.codebook.copy_(torch.randn(k, c))
    q.code_sum.copy_(q.codebook * 5.0)
    q.code_count.fill_(5.0)  # alive
    q.initted.fill_(True)
    return q


def test_dead_code_is_reset_to_an_encoder_output() -> None:
    q = make_quantizer()
    dead = 7
    q.codebook[dead] = 1e3  # far from all inputs: never selected
    q.code_sum[dead] = 0.5e3
    q.code_count[dead] = 0.5  # below the threshold of 1 -> dead
    x = q.codebook[:7].repeat(16, 1) + 0.05 * torch.randn(112, 4)  # (N, C) near codes 0..6
    z = x.reshape(4, 28, 4).permute(0, 2, 1)  # (B, C, N)
    q.train()
    _, _, _, codes = q(z)
    assert not (codes == dead).any()
    new = q.codebook[dead]
    assert new.abs().max() < 100  # moved away from 1e3
    dist = (x - new).norm(dim=1).min()
    assert dist < 1e-5  # N >= nb_code: an exact encoder output, no tiling noise


def test_alive_codes_follow_the_ema_formula() -> None:
    q = make_quantizer()
    x = q.codebook[:8].repeat(4, 1) + 0.1 * torch.randn(32, 4)
    z = x.reshape(2, 16, 4).permute(0, 2, 1)
    old_sum, old_count = q.code_sum.clone(), q.code_count.clone()
    codes = q.quantize(x)
    q.train()
    q(z)
    for k in codes.unique().tolist():
        sel = x[codes == k]
        s = 0.99 * old_sum[k] + 0.01 * sel.sum(0)
        n = 0.99 * old_count[k] + 0.01 * sel.shape[0]
        torch.testing.assert_close(q.codebook[k], s / n)


def test_first_training_batch_initializes_codebook_eval_never_changes_it() -> None:
    q = QuantizeEMAReset(8, 4)
    x = torch.randn(2, 4, 3)  # 6 rows < 8 codes: tiled with small noise
    q.eval()
    q(x)
    assert not bool(q.initted) and q.codebook.abs().sum() == 0
    q.train()
    q(x)
    assert bool(q.initted)
    rows = x.permute(0, 2, 1).reshape(-1, 4)
    d = torch.cdist(q.codebook, rows).min(dim=1).values
    assert (d < 0.05).all()  # every code is (a noisy copy of) an encoder output
    before = q.codebook.clone()
    q.eval()
    q(torch.randn(2, 4, 5))
    assert torch.equal(before, q.codebook)


def test_perplexity_counts_effective_codes() -> None:
    assert QuantizeEMAReset.perplexity(torch.tensor([0, 1, 2, 3]), 8).item() == pytest.approx(4.0, rel=1e-4)
    assert QuantizeEMAReset.perplexity(torch.tensor([5, 5, 5]), 8).item() == pytest.approx(1.0, rel=1e-4)


def test_inference_helpers_keep_training_mode_and_codebook(model: VQVAE) -> None:
    model.train()
    before = model.quantizer.codebook.clone()
    model.encode(np.random.default_rng(0).normal(size=(64, 263)).astype(np.float32))
    assert model.training
    assert torch.equal(before, model.quantizer.codebook)


# ---- validation -------------------------------------------------------------------------------


def test_out_of_range_and_malformed_codes_raise(model: VQVAE) -> None:
    with pytest.raises(ValueError, match=r"code 32 at position 1 is out of range \[0, 32\)"):
        model.decode([3, 32, 1])
    with pytest.raises(ValueError, match="code -1 at position 0 is out of range"):
        model.decode(np.array([-1, 2]))
    with pytest.raises(ValueError, match="out of range"):
        model.codes_to_joints(torch.tensor([0, 99]))
    with pytest.raises(ValueError, match="integer codes"):
        model.decode(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="1-D"):
        model.decode(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="empty"):
        model.decode([])


def test_bad_features_raise(model: VQVAE) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="feature size 251 does not match the VQ-VAE's 263"):
        model.encode(rng.normal(size=(64, 251)))
    with pytest.raises(ValueError, match=r"expected \(T, 263\)"):
        model.encode(rng.normal(size=(263,)))
    bad = rng.normal(size=(64, 263))
    bad[10, 5] = np.nan
    with pytest.raises(ValueError, match="NaN/inf in 1 frame.*frame 10"):
        model.encode(bad)
    with pytest.raises(ValueError, match="shorter than one code"):
        model.encode(rng.normal(size=(3, 263)))
    with pytest.raises(ValueError, match="clip 1"):
        model.encode_batch([rng.normal(size=(8, 263)), rng.normal(size=(8, 7))])


def test_bad_statistics_raise() -> None:
    with pytest.raises(ValueError, match="std has non-positive"):
        VQVAE(small_config(), std=np.zeros(263, np.float32))
    with pytest.raises(ValueError, match="mean has shape"):
        VQVAE(small_config(), mean=np.zeros(251, np.float32))
