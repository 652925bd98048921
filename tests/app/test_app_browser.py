"""The real page in headless Chromium: type, click, wait for the animation, download the files.

The app runs in this process over a tiny real checkpoint (nano LLaMA LoRA + random VQ-VAE), so
every step of a request runs for real: validation, constrained generation, decoding, GIF, BVH,
gradio's file serving. Skipped without /usr/bin/chromium or playwright (failed instead under
MOTIONGPT_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import io
import json
import sys
from urllib.parse import urlparse

import numpy as np
import pytest

pytestmark = pytest.mark.browser

TIMEOUT_MS = 90_000  # one generation takes ~1 s; generous for a loaded shared machine
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}

# Every outgoing connection and name lookup this process makes while the module runs (Python
# audit events; a hook cannot be removed, so it only records while ``_RECORDING`` is set).
_RECORDING = [False]
_OUTSIDE: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if not _RECORDING[0]:
        return
    if event == "socket.connect" and isinstance(args[1], tuple) and str(args[1][0]) not in LOCAL_HOSTS:
        _OUTSIDE.append(f"connect {args[1]}")
    elif event == "socket.getaddrinfo" and str(args[0]) not in LOCAL_HOSTS:
        _OUTSIDE.append(f"lookup {args[0]}")


sys.addaudithook(_audit)


@pytest.fixture(scope="module", autouse=True)
def _record_outside_connections():
    """Record from before the model loads and the server starts until the module ends."""
    _RECORDING[0] = True
    yield
    _RECORDING[0] = False


@pytest.fixture(scope="module")
def service(tiny_checkpoint, tmp_path_factory):
    """The service of these tests: MP4 as in production (when ffmpeg is available)."""
    from motiongpt.app.config import AppConfig
    from motiongpt.app.server import load_service

    svc = load_service(AppConfig(lora_path=str(tiny_checkpoint), out_dir=str(tmp_path_factory.mktemp("app_out"))))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def page(chromium, running_app):
    """One browser page on the app for the whole module; records every URL it requests."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.requested = []  # type: ignore[attr-defined]
    pg.on("request", lambda r: pg.requested.append(r.url))  # type: ignore[attr-defined]
    pg.goto(running_app.url)
    pg.locator("#t2m-run").wait_for()
    yield pg
    context.close()


def _status(pg) -> str:
    return pg.locator("#status").inner_text()


def _wait_status(pg, text: str) -> str:
    pg.locator("#status").get_by_text(text).wait_for()
    return _status(pg)


def _downloads(pg) -> dict[str, bytes]:
    """File name -> bytes of every link in the Downloads box, fetched through the page's session."""
    links = pg.locator("#downloads a[download]")
    links.first.wait_for()
    out = {}
    for i in range(links.count()):
        a = links.nth(i)
        resp = pg.request.get(a.get_attribute("href"))
        assert resp.ok, (a.get_attribute("href"), resp.status)
        out[a.get_attribute("download")] = resp.body()
    return out


def _tokens(pg) -> list[int]:
    text = pg.locator("#tokens textarea").input_value()
    return [int(t) for t in text.split(",")]


def test_text_to_motion_shows_animation_and_offers_files(page, running_app, tmp_path):
    pg = page
    pg.locator("#t2m-caption textarea").fill("a person walks forward and waves")
    # the guidance slider starts at the model's recommendation; the request runs with the one set
    guidance = pg.locator("#guidance_scale input[type=number]")
    assert float(guidance.input_value()) == running_app.service.generator.recommended_guidance_scale
    guidance.fill("2.5")
    guidance.press("Enter")
    pg.locator("#t2m-run").click()
    status = _wait_status(pg, "Generated")
    assert "Error" not in status and "guidance scale 2.5" in status

    # the animation is a GIF that the browser actually decoded
    img = pg.locator("#animation img")
    img.wait_for()
    assert pg.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    assert urlparse(img.get_attribute("src")).path.endswith(".gif")

    files = _downloads(pg)
    names = sorted(files)
    assert any(n.endswith(".npy") for n in names) and any(n.endswith(".bvh") for n in names), names
    joints = np.load(io.BytesIO(files[next(n for n in names if n.endswith(".npy"))]), allow_pickle=False)
    assert joints.ndim == 3 and joints.shape[1:] == (22, 3) and np.isfinite(joints).all()
    bvh = files[next(n for n in names if n.endswith(".bvh"))].decode("utf-8")
    assert bvh.startswith("HIERARCHY") and "MOTION" in bvh
    n_bvh_frames = int(next(line for line in bvh.splitlines() if line.startswith("Frames:")).split(":")[1])
    token_text = files[next(n for n in names if n.endswith("_tokens.txt"))].decode("utf-8").strip()
    codes = [int(t) for t in token_text.split(",")]
    nb_code = running_app.service.nb_code
    assert codes and all(0 <= c < nb_code for c in codes)
    # one token per 4 frames, in every file: joints, BVH and the tokens box agree
    assert joints.shape[0] == 4 * len(codes) == n_bvh_frames
    assert _tokens(pg) == codes
    # the generation's results.json (next to the files offered) records the scale it ran with
    name = next(n for n in names if n.endswith(".npy"))[: -len(".npy")]  # motiongpt_<NNNNNN>_t2m
    record = json.loads((running_app.service.out_dir / f"gen_{name.split('_', 1)[1]}" / "results.json").read_text())
    assert record["meta"]["sampling"]["guidance_scale"] == 2.5 and record["samples"][0]["task"] == "t2m"

    # the MP4 (when ffmpeg is available) plays in the browser and is offered too
    if running_app.service.mp4:
        assert any(n.endswith(".mp4") for n in names), names
        pg.get_by_role("tab", name="MP4").click()
        pg.locator("#video video").wait_for()
        pg.wait_for_function("() => { const v = document.querySelector('#video video');"
                             " return v.readyState >= 1 && !v.error && v.duration > 0 }")
        pg.get_by_role("tab", name="Animation").click()

    # the session gallery shows it
    assert pg.locator("#gallery img").count() >= 1
    shot = tmp_path / "app_after_generation.png"
    pg.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_length_and_key_poses_from_an_uploaded_motion(page, running_app, joints_file):
    pg = page
    expected = running_app.service.generator.encode_motion(joints_file)  # the tokenizer's codes of the upload
    pg.locator("#keys-accordion").get_by_text("Key poses from a motion").click()
    pg.locator("#keys-upload input[type=file]").set_input_files(str(joints_file))
    pg.locator("#keys-upload").get_by_text("walk").first.wait_for()
    pg.locator("#keys-frames textarea, #keys-frames input").first.fill("0, 21")
    pg.locator("#keys-from-motion").click()
    _wait_status(pg, "Key tokens from frames")
    # frame f pins the upload's token f // 4 at that same position
    want = f"0:{expected[0]}, 5:{expected[5]}"
    pg.wait_for_function("([sel, v]) => document.querySelector(sel).value === v", arg=["#t2m-keys textarea", want])

    pg.locator("#t2m-caption textarea").fill("a person kicks")
    length = pg.locator("#t2m-length input[type=number]")
    length.fill("40")
    length.press("Enter")
    pg.locator("#t2m-run").click()
    _wait_status(pg, "Generated 10 motion tokens")
    codes = _tokens(pg)
    assert len(codes) == 10 and codes[0] == expected[0] and codes[5] == expected[5]


def test_motion_to_text_from_upload(page, joints_file):
    pg = page
    pg.get_by_role("tab", name="Motion to text").click()
    pg.locator("#m2t-upload input[type=file]").set_input_files(str(joints_file))
    pg.locator("#m2t-upload").get_by_text("walk").first.wait_for()
    pg.locator("#m2t-run").click()
    _wait_status(pg, "Described a motion")
    pg.wait_for_function("document.querySelector('#m2t-text textarea').value.trim().length > 0")


def test_inbetween_keeps_the_given_start_and_end(page, running_app, joints_file):
    pg = page
    expected = running_app.service.generator.encode_motion(joints_file)
    pg.get_by_role("tab", name="Prediction / in-betweening").click()
    pg.locator("#edit-upload input[type=file]").set_input_files(str(joints_file))
    pg.locator("#edit-upload").get_by_text("walk").first.wait_for()
    pg.locator("#edit-mode").get_by_text("in-betweening").click()
    pg.locator("#edit-start input").fill("8")
    pg.locator("#edit-end input").fill("4")
    pg.locator("#edit-run").click()
    _wait_status(pg, "Generated")
    codes = _tokens(pg)
    assert codes[:2] == expected[:2] and codes[-1:] == expected[-1:] and len(codes) > 3


def test_bad_inputs_show_messages_not_tracebacks(page, tmp_path):
    pg = page
    # an upload of the wrong shape, on the motion-to-text tab
    bad = tmp_path / "not_a_motion.npy"
    np.save(bad, np.zeros((30, 5), np.float32))
    pg.get_by_role("tab", name="Motion to text").click()
    pg.locator("#m2t-upload").get_by_role("button", name="Clear").first.click()  # the earlier upload
    pg.locator("#m2t-upload input[type=file]").set_input_files(str(bad))
    pg.locator("#m2t-upload").get_by_text("not_a_motion").first.wait_for()
    pg.locator("#m2t-run").click()
    status = _wait_status(pg, "Error")
    assert "not_a_motion.npy" in status and "(30, 5)" in status

    # an over-long caption
    pg.get_by_role("tab", name="Text to motion").click()
    pg.locator("#t2m-caption textarea").fill("walk " * 100)
    pg.locator("#t2m-run").click()
    status = _wait_status(pg, "too long")
    assert "499 characters" in status and "limit is 300" in status
    body = pg.locator("body").inner_text()
    assert "Traceback" not in body and 'File "' not in body


def test_nothing_leaves_the_machine(page, running_app):
    """Every request the page made (after all the tests above) went to the app itself, and the
    server side (model loading, gradio startup, every request) connected nowhere else."""
    origin = urlparse(running_app.url).netloc
    outside = [u for u in page.requested if urlparse(u).scheme in ("http", "https", "ws", "wss")
               and urlparse(u).netloc != origin]
    assert page.requested and not outside, outside[:5]
    assert not _OUTSIDE, _OUTSIDE[:5]
