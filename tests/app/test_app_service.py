"""The handlers without a browser: request building, the service over a tiny real checkpoint,
output files, error wrapping and the page's wiring (queue / concurrency)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from motiongpt.app.config import AppConfig, Limits
from motiongpt.app.inputs import UserInputError, check_sampling
from motiongpt.app.service import (
    MotionService,
    inbetween_request,
    m2t_request,
    pred_request,
    sampling_config,
    t2m_request,
)

SAMPLING = check_sampling(0.8, 20, 1.0, 0)


# --- request building (pure) ----------------------------------------------------------------


def test_requests_carry_the_page_inputs():
    r = t2m_request("a person jumps", None, [], seed=3, name="n1")
    assert (r.task, r.caption, r.length_frames, r.key_tokens, r.seed, r.name) == ("t2m", "a person jumps", None,
                                                                                   [], 3, "n1")
    r = t2m_request("a person jumps", 40, [(0, 5), (7, 2)], seed=0, name="n2")
    assert r.task == "t2m_keys_pos" and r.key_tokens == [(0, 5), (7, 2)] and r.length_frames == 40
    with pytest.raises(UserInputError, match="need a length"):
        t2m_request("a person jumps", None, [(0, 5)], seed=0, name="n3")
    r = m2t_request([1, 2, 3], seed=1, name="n4")
    assert (r.task, r.motion_codes) == ("m2t", [1, 2, 3])
    r = pred_request([4, 5], 40, seed=1, name="n5")
    assert (r.task, r.motion_codes, r.length_frames) == ("pred", [4, 5], 40)
    r = inbetween_request([1], [2, 3], None, seed=1, name="n6")
    assert (r.task, r.motion_codes, r.end_codes) == ("inbetween", [1], [2, 3])


def test_guidance_scale_goes_to_text_to_motion_only():
    guided = check_sampling(0.7, 20, 0.9, 0, guidance_scale=2.5)
    for task in ("t2m", "t2m_keys_pos"):  # the tasks the text tab sends
        cfg = sampling_config(guided, 11, task).validate()
        assert (cfg.guidance_scale, cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed) == (2.5, 0.7, 20, 0.9, 11)
    for task in ("m2t", "pred", "inbetween"):  # the generator refuses guidance there
        cfg = sampling_config(guided, 11, task).validate()
        assert (cfg.guidance_scale, cfg.temperature, cfg.seed) == (1.0, 0.7, 11)
    assert sampling_config(SAMPLING, 0, "t2m").guidance_scale == 1.0


# --- the service over the tiny checkpoint ------------------------------------------------------


def _recorded(shown) -> dict:
    """``results.json`` of the generation folder a request's files were written to."""
    return json.loads((Path(shown.files[0]).parent / "results.json").read_text(encoding="utf-8"))


def test_guidance_scale_reaches_the_generator_for_text_to_motion_only(service, joints_file):
    guided = check_sampling(0.8, 20, 1.0, 5, guidance_scale=2.5)
    for shown, task in [(service.text_to_motion("a person jumps", 24, "", guided), "t2m"),
                        (service.text_to_motion("a person jumps", 24, "0:3", guided), "t2m_keys_pos")]:
        doc = _recorded(shown)
        assert doc["samples"][0]["task"] == task and doc["meta"]["sampling"]["guidance_scale"] == 2.5
        assert "(seed 5, guidance scale 2.5)" in shown.status
    # the other tasks run unguided although the page's setting is 2.5 (the generator would refuse it)
    for shown in (service.motion_to_text(str(joints_file), guided), service.predict(str(joints_file), 8, 24, guided),
                  service.inbetween(str(joints_file), 4, 8, 0, guided)):
        assert _recorded(shown)["meta"]["sampling"]["guidance_scale"] == 1.0
        assert "guidance" not in shown.status and "(seed 5)" in shown.status
    plain = service.text_to_motion("a person jumps", 24, "", SAMPLING)
    assert _recorded(plain)["meta"]["sampling"]["guidance_scale"] == 1.0 and "guidance" not in plain.status


def test_text_to_motion_writes_consistent_files(service):
    shown = service.text_to_motion("a person walks forward", 32, "", SAMPLING)
    assert shown.status.startswith("Generated 8 motion tokens (32 frames")
    codes = [int(t) for t in shown.tokens.split(",")]
    assert len(codes) == 8 and all(0 <= c < service.nb_code for c in codes)
    files = {Path(f).suffix: Path(f) for f in shown.files}
    joints = np.load(files[".npy"])
    assert joints.shape == (32, 22, 3)
    assert files[".bvh"].read_text().startswith("HIERARCHY")
    tokens_file = next(Path(f) for f in shown.files if f.endswith("_tokens.txt"))
    assert [int(t) for t in tokens_file.read_text().split(",")] == codes
    assert Path(shown.gif).suffix == ".gif" and Path(shown.gif).stat().st_size > 0
    assert shown.label == "a person walks forward"
    for f in shown.files:  # everything offered lives in the service's own folder
        assert Path(f).resolve().is_relative_to(service.out_dir)


def test_same_seed_same_motion_and_random_seed_is_reported(service):
    a = service.text_to_motion("a person jumps", 0, "", check_sampling(1.0, 0, 1.0, 7))
    b = service.text_to_motion("a person jumps", 0, "", check_sampling(1.0, 0, 1.0, 7))
    assert a.tokens == b.tokens and a.files != b.files  # a fresh folder per generation
    c = service.text_to_motion("a person jumps", 0, "", check_sampling(1.0, 0, 1.0, -1))
    assert "(seed " in c.status and "(seed 7)" not in c.status


def test_key_tokens_are_pinned(service):
    shown = service.text_to_motion("a person waves", 40, "0:3, 9:<motion_id_17>", SAMPLING)
    codes = [int(t) for t in shown.tokens.split(",")]
    assert len(codes) == 10 and codes[0] == 3 and codes[9] == 17


def test_key_poses_from_an_upload_become_key_tokens(service, joints_file):
    expected = service.generator.encode_motion(joints_file)
    spec, status = service.key_tokens_from_motion(str(joints_file), "0, 13, 47", "2:9")
    # frame 13 -> token 3; frame 47 is past the last whole token (joints lose one frame to the
    # velocity features, features are cropped to 4-frame tokens): it maps to the last token
    last = len(expected) - 1
    assert spec == f"0:{expected[0]}, 2:9, 3:{expected[3]}, {last}:{expected[last]}"
    assert "frames 0, 13, 47" in status
    with pytest.raises(UserInputError, match="past the uploaded motion's end"):
        service.key_tokens_from_motion(str(joints_file), "48", "")


def test_motion_to_text_prediction_and_inbetween(service, joints_file):
    given = service.generator.encode_motion(joints_file)
    m2t = service.motion_to_text(str(joints_file), SAMPLING)
    assert m2t.status.startswith(f"Described a motion of {len(given)} tokens") and m2t.text.strip()
    assert [int(t) for t in m2t.tokens.split(",")] == given

    pred = service.predict(str(joints_file), 8, 24, SAMPLING)
    codes = [int(t) for t in pred.tokens.split(",")]
    assert len(codes) == 6 and codes[:2] == given[:2]

    mid = service.inbetween(str(joints_file), 4, 8, 0, SAMPLING)
    codes = [int(t) for t in mid.tokens.split(",")]
    assert codes[:1] == given[:1] and codes[-2:] == given[-2:] and len(codes) >= 4

    with pytest.raises(UserInputError, match="overlap"):
        service.inbetween(str(joints_file), 24, 24, 0, SAMPLING)
    with pytest.raises(UserInputError, match="leaves nothing to generate"):
        service.predict(str(joints_file), 16, 16, SAMPLING)


def test_bvh_uploads_are_read(service):
    made = service.text_to_motion("a person turns", 40, "", SAMPLING)
    bvh = next(f for f in made.files if f.endswith(".bvh"))
    shown = service.motion_to_text(bvh, SAMPLING)
    # the BVH of a 40-frame motion reads back as 39 joint frames -> 9 whole tokens
    assert shown.status.startswith("Described a motion of 9 tokens") and shown.text.strip()
    spec, _ = service.key_tokens_from_motion(bvh, "0", "")
    assert spec == f"0:{service.generator.encode_motion(bvh)[0]}"


def test_bad_uploads_are_user_errors(service, tmp_path):
    wrong = tmp_path / "wrong_shape.npy"
    np.save(wrong, np.zeros((30, 5), np.float32))
    with pytest.raises(UserInputError, match=r"wrong_shape.npy.*\(30, 5\)") as e:
        service.motion_to_text(str(wrong), SAMPLING)
    assert str(tmp_path) not in str(e.value)  # the server-side path is not shown
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((20, 22, 3), np.nan, np.float32))
    with pytest.raises(UserInputError, match="nan.npy"):
        service.motion_to_text(str(nan), SAMPLING)


def test_old_generation_folders_are_pruned(service, tiny_checkpoint, tmp_path):
    cfg = AppConfig(lora_path=str(tiny_checkpoint), mp4=False, limits=Limits(max_stored=2))
    small = MotionService(service.generator, cfg, out_dir=tmp_path / "out")
    shown = [small.text_to_motion("a person runs", 8, "", SAMPLING) for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert kept == ["gen_000002_t2m", "gen_000003_t2m"]
    assert not Path(shown[0].gif).exists() and Path(shown[2].gif).is_file()
    # a restarted service continues the numbering instead of overwriting
    again = MotionService(service.generator, cfg, out_dir=tmp_path / "out")
    assert Path(again.text_to_motion("a person runs", 8, "", SAMPLING).gif).parent.name == "gen_000004_t2m"


def test_temporary_output_folder_is_removed_on_close(service, tiny_checkpoint):
    svc = MotionService(service.generator, AppConfig(lora_path=str(tiny_checkpoint), mp4=False))
    folder = svc.out_dir
    assert folder.is_dir()
    svc.close()
    assert not folder.exists()


# --- the page wiring (no browser) --------------------------------------------------------------


def test_guarded_turns_failures_into_status_messages():
    from motiongpt.app.ui import guarded

    def refuse(x):
        raise UserInputError("Caption is too long: 400 characters (the limit is 300).")

    def crash(x):
        raise KeyError("boom")

    out = guarded(refuse, 3)("x")
    assert out[0] == "**Error:** Caption is too long: 400 characters (the limit is 300)."
    assert out[1] == out[2] == {"__type__": "update"}  # gr.skip(): other outputs keep their values
    msg = guarded(crash, 1)("x")
    assert msg.startswith("**Error:** the request failed (KeyError") and "Traceback" not in msg
    assert guarded(lambda x: x + 1, 1)(1) == 2


def _slider(page, elem_id: str):
    found = [b for b in page.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    assert len(found) == 1, elem_id
    return found[0]


def test_guidance_slider_defaults_to_the_generators_recommendation(service, tiny_checkpoint, tmp_path):
    from motiongpt.app.ui import build_ui
    from motiongpt.generate import MotionGenerator

    # the tiny checkpoint's records were written without the instruction builder: no uncond_prob
    assert service.generator.recommended_guidance_scale == 1.0
    slider = _slider(build_ui(service), "guidance_scale")
    assert (slider.value, slider.minimum, slider.maximum, slider.step) == (1.0, 0.0, 5.0, 0.1)
    assert slider.label == "Guidance scale" and "1 = off" in slider.info

    g = service.generator
    recommending = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, recommended_guidance_scale=2.0)
    svc = MotionService(recommending, AppConfig(lora_path=str(tiny_checkpoint), mp4=False), out_dir=tmp_path)
    assert _slider(build_ui(svc), "guidance_scale").value == 2.0


def test_every_model_event_is_queued_one_at_a_time(service):
    from motiongpt.app.ui import MODEL_CONCURRENCY_ID, build_ui

    page = build_ui(service)
    fns = list(page.fns.values())
    assert len(fns) >= 5
    for fn in fns:  # every event touches the model (generation or the tokenizer)
        assert fn.queue is not False
        assert fn.concurrency_id == MODEL_CONCURRENCY_ID and fn.concurrency_limit == 1, fn.api_name
    names = {fn.api_name for fn in fns}
    assert {"text_to_motion", "motion_to_text", "edit_motion", "key_tokens_from_motion"} <= names


def test_compose_checkbox_and_composed_text_to_motion(service, tiny_checkpoint, tmp_path):
    """The page offers clause-by-clause writing only for a model trained with t2m_next, on by
    default; with it a caption with "then" is composed (the same codes as generate_composed), and a
    length or key tokens turn it off."""
    from motiongpt.app.ui import build_ui
    from motiongpt.generate import GenerationRequest, MotionGenerator
    from motiongpt.generate.compose import generate_composed

    assert service.can_compose is False  # records written without the builder: tasks unknown
    box = _slider(build_ui(service), "t2m-compose")
    assert box.value is False and box.visible is False
    plain = service.text_to_motion("a person jumps, then waves", 0, "", SAMPLING, compose=True)
    assert "composed" not in plain.status

    g = service.generator
    composer = MotionGenerator(g.model, g.tokenizer, g.fmt, g.vq, template=g.template, wrap_output=g.wrapped,
                               max_motion_tokens=g.max_motion_tokens, trained_tasks=("t2m", "t2m_next"))
    svc = MotionService(composer, AppConfig(lora_path=str(tiny_checkpoint), mp4=False), out_dir=tmp_path)
    box = _slider(build_ui(svc), "t2m-compose")
    assert box.value is True and box.visible is True
    caption = "a person jumps, then waves"
    shown = svc.text_to_motion(caption, 0, "", SAMPLING, compose=True)
    assert "2 clauses composed" in shown.status
    expected = generate_composed(composer, [GenerationRequest("t2m", caption, seed=0)],
                                 sampling_config(SAMPLING, 0, "t2m"))[0]
    assert shown.tokens == ",".join(map(str, expected.codes))
    saved = json.loads((Path(shown.gif).parent / "results.json").read_text())
    assert saved["meta"]["compose"] is True
    # a length, key tokens or the box off: the whole caption at once
    for shown in (svc.text_to_motion(caption, 24, "", SAMPLING, compose=True),
                  svc.text_to_motion(caption, 24, "0:3", SAMPLING, compose=True),
                  svc.text_to_motion(caption, 0, "", SAMPLING, compose=False)):
        assert "composed" not in shown.status
        assert json.loads((Path(shown.gif).parent / "results.json").read_text())["meta"]["compose"] is False
