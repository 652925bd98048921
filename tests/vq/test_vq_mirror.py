"""VQ-VAE training on mirrored clips (``train.mirror``): left/right actions swap sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motiongpt.config import apply_overrides
from motiongpt.data.synthetic.corpus import render_plan
from motiongpt.eval.semantic import detect_events
from motiongpt.motion.features import features_to_joints
from motiongpt.vq import get_preset
from motiongpt.vq.data import NO_MAX_LENGTH, load_motion_set
from motiongpt.vq.train import _mirrored, train_vqvae


def test_mirrored_clip_waves_and_steps_with_the_other_side() -> None:
    feats, _, label = render_plan([("wave", {"side": "left", "count": 3}), ("sidestep", {"direction": "left"})])
    before = detect_events(features_to_joints(feats))
    assert before.counts()["waves"] == {"left": 3, "right": 0}  # the fixture is what it says
    (mirrored,) = _mirrored([feats], 22, Path("render_plan"))
    assert mirrored.shape == (feats.shape[0] - 1, feats.shape[1])  # features need the next frame
    after = detect_events(features_to_joints(mirrored))
    assert after.counts()["waves"] == {"left": 0, "right": 3}
    assert [iv.kind for iv in after.travel] == ["right"] and [iv.kind for iv in before.travel] == ["left"]


def test_mirror_needs_the_22_joint_skeleton() -> None:
    feats, _, _ = render_plan(["wave"])
    with pytest.raises(ValueError, match="train.mirror.*21 joints"):
        _mirrored([feats[:, :251]], 21, Path("kit_data"))


def test_training_with_mirror_samples_twice_the_clips(toy_data: Path, tmp_path: Path) -> None:
    small = [
        "model.width=32", "model.code_dim=16", "model.nb_code=32", "train.batch_size=8", "train.total_iters=2",
        "train.eval_every=0", "train.save_every=2", "train.progress_bar=false", "train.tensorboard=false",
        "train.final_model=last", "train.window_size=40",
    ]
    n_clips = len(load_motion_set(toy_data, "train", min_length=40, max_length=NO_MAX_LENGTH).features)
    for mirror, expected in ((False, n_clips), (True, None)):
        out = tmp_path / f"mirror_{mirror}"
        train_vqvae(apply_overrides(get_preset("tiny"), small + [f"train.mirror={str(mirror).lower()}"]), toy_data, out)
        state = json.loads((out / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())
        got = state["ranks"][0]["sampler"]["n_clips"]
        if expected is not None:
            assert got == expected
        else:  # mirrored clips are one frame shorter: those of exactly 40 frames drop out of the windows
            assert n_clips < got <= 2 * n_clips
