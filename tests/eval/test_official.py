"""T2M's official evaluator: architecture shapes and the loading path, with files written here
(no real weights)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from motiongpt.data.humanml3d import parse_caption_line
from motiongpt.eval.official import (
    MotionEncoderBiGRUCo,
    MovementConvEncoder,
    OfficialSizes,
    TextEncoderBiGRUCo,
    load_glove,
    load_official_evaluator,
    restricted_pickle_load,
)

WORDS = ["unk", "sos", "eos", "a", "man", "walk", "forward", "left"]


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_official_layer_names_and_sizes():
    s = OfficialSizes()
    mov = MovementConvEncoder(s.dim_pose - 4, s.dim_movement_enc_hidden, s.dim_movement_latent)
    assert _shapes(mov) == {
        "main.0.weight": (512, 259, 4), "main.0.bias": (512,), "main.3.weight": (512, 512, 4), "main.3.bias": (512,),
        "out_net.weight": (512, 512), "out_net.bias": (512,),
    }
    txt = TextEncoderBiGRUCo(s.dim_word, s.dim_pos_ohot, s.dim_text_hidden, s.dim_coemb_hidden)
    t = _shapes(txt)
    assert t["pos_emb.weight"] == (300, 15) and t["input_emb.weight"] == (512, 300)
    assert t["gru.weight_ih_l0"] == (1536, 512) and t["gru.weight_hh_l0_reverse"] == (1536, 512)
    assert t["hidden"] == (2, 1, 512)
    assert t["output_net.0.weight"] == (512, 1024) and t["output_net.1.weight"] == (512,)
    assert t["output_net.3.weight"] == (512, 512)
    mot = MotionEncoderBiGRUCo(s.dim_movement_latent, s.dim_motion_hidden, s.dim_coemb_hidden)
    m = _shapes(mot)
    assert m["input_emb.weight"] == (1024, 512) and m["gru.weight_ih_l0"] == (3072, 1024)
    assert m["hidden"] == (2, 1, 1024) and m["output_net.0.weight"] == (1024, 2048)
    assert m["output_net.3.weight"] == (512, 1024)
    # 4x temporal downsampling: 196 frames -> 49 steps
    with torch.no_grad():
        assert mov.eval()(torch.zeros(2, 196, 259)).shape == (2, 49, 512)


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2m_eval")
    s = OfficialSizes()
    torch.manual_seed(0)
    state = {
        "movement_encoder": MovementConvEncoder(s.dim_pose - 4, 512, 512).state_dict(),
        "text_encoder": TextEncoderBiGRUCo(300, 15, 512, 512).state_dict(),
        "motion_encoder": MotionEncoderBiGRUCo(512, 1024, 512).state_dict(),
        "epoch": 7,
    }
    (root / "text_mot_match" / "model").mkdir(parents=True)
    torch.save(state, root / "text_mot_match" / "model" / "finest.tar")
    glove = root / "glove"
    glove.mkdir()
    rng = np.random.default_rng(0)
    np.save(glove / "our_vab_data.npy", rng.normal(size=(len(WORDS), 300)).astype(np.float32))
    (glove / "our_vab_words.pkl").write_bytes(pickle.dumps(WORDS))
    (glove / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(WORDS)}))
    meta = root / "meta"
    meta.mkdir()
    np.save(meta / "mean.npy", rng.normal(size=263).astype(np.float32))
    np.save(meta / "std.npy", rng.uniform(0.5, 1.5, size=263).astype(np.float32))
    return root, state


def test_load_restores_every_weight_and_encodes(official_files):
    root, state = official_files
    ev = load_official_evaluator(root / "text_mot_match", root / "glove", root / "meta")
    for key in ("movement_encoder", "text_encoder", "motion_encoder"):
        loaded = getattr(ev, key).state_dict()
        assert all(torch.equal(loaded[k], state[key][k]) for k in state[key]), key
    caps = [parse_caption_line("a man walk forward#a/DET man/NOUN walk/VERB forward/ADV#0.0#0.0"),
            ["a/DET", "zebra/NOUN"]]
    text = ev.encode_text(caps)
    assert text.shape == (2, 512) and np.isfinite(text).all()
    rng = np.random.default_rng(1)
    clips = [rng.normal(size=(60, 263)).astype(np.float32), rng.normal(size=(203, 263)).astype(np.float32)]
    emb = ev.encode_motion(clips)
    assert emb.shape == (2, 512)
    # the same motion with other batch-mates gives the same embedding (always padded to 196)
    assert np.allclose(ev.encode_motion(clips[:1]), emb[:1], atol=1e-5)
    # the movement encoder sees normalized features without the 4 foot contacts
    mean, std = np.load(root / "meta" / "mean.npy"), np.load(root / "meta" / "std.npy")
    x = np.zeros((1, 196, 263), np.float32)
    x[0, :60] = (clips[0] - mean) / std
    with torch.no_grad():
        ref = ev.motion_encoder(ev.movement_encoder(torch.from_numpy(x[..., :-4])), torch.tensor([15]))
    assert np.allclose(ref.numpy(), emb[:1], atol=1e-5)


def test_clear_errors_for_missing_and_mismatched_files(official_files, tmp_path):
    root, state = official_files
    with pytest.raises(FileNotFoundError, match="finest.tar"):
        load_official_evaluator(tmp_path, root / "glove", root / "meta")
    with pytest.raises(FileNotFoundError, match="our_vab_idx.pkl"):
        (tmp_path / "g").mkdir()
        np.save(tmp_path / "g" / "our_vab_data.npy", np.zeros((2, 300), np.float32))
        (tmp_path / "g" / "our_vab_words.pkl").write_bytes(pickle.dumps(["unk"]))
        load_glove(tmp_path / "g")
    with pytest.raises(FileNotFoundError, match="mean.npy"):
        load_official_evaluator(root / "text_mot_match", root / "glove", tmp_path)
    bad = dict(state)
    bad["text_encoder"] = {k: v for k, v in state["text_encoder"].items() if k != "hidden"}
    torch.save(bad, tmp_path / "bad.tar")
    with pytest.raises(ValueError, match="text_encoder.*missing keys \\['hidden'\\]"):
        load_official_evaluator(tmp_path / "bad.tar", root / "glove", root / "meta")
    torch.save({"movement_encoder": state["movement_encoder"]}, tmp_path / "partial.tar")
    with pytest.raises(ValueError, match="missing state dict"):
        load_official_evaluator(tmp_path / "partial.tar", None, root / "meta")


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_word_files_are_unpickled_without_globals(tmp_path):
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"walk": 1, "run": [2, 3]}))
    assert restricted_pickle_load(tmp_path / "ok.pkl") == {"walk": 1, "run": [2, 3]}
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match="evil.pkl"):
        restricted_pickle_load(tmp_path / "evil.pkl")
    (tmp_path / "arr.pkl").write_bytes(pickle.dumps(np.zeros(3)))
    with pytest.raises(ValueError, match="refusing"):
        restricted_pickle_load(tmp_path / "arr.pkl")
