"""The gradio page: text-to-motion (with length, sampling, key tokens / key poses), motion-to-text,
prediction and in-betweening, the animation, downloads and a gallery of the session's generations.

:func:`build_ui` wires components to :class:`~motiongpt.app.service.MotionService` methods through
:func:`guarded`: a refused input (:class:`~motiongpt.app.inputs.UserInputError`) or any other
failure becomes a message in the status box, never a stack trace in the page (the traceback of an
unexpected failure goes to the server log). Every event that touches the model shares one
concurrency group of size 1, so queued requests run one after another.

Element ids (``elem_id``) are stable: the browser tests and anyone scripting the page use them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from motiongpt.app.inputs import MAX_GUIDANCE_SCALE, MOTION_SUFFIXES, UserInputError, check_sampling
from motiongpt.app.service import MotionService, Shown

log = logging.getLogger(__name__)

__all__ = ["build_ui", "guarded", "MODEL_CONCURRENCY_ID", "error_status", "N_OUTPUTS"]

MODEL_CONCURRENCY_ID = "model"
"""Concurrency group of every event that runs the model (limit 1: one job at a time)."""

N_OUTPUTS = 8
"""Outputs of a generation event: status, animation, video, description, tokens, downloads, gallery, state."""

_INTRO = """\
Type what the person should do and press **Generate motion**. Motion is written as VQ-VAE tokens
(one per {ds} frames at 20 fps) by the fine-tuned language model, decoded to a skeleton and rendered.
Pin tokens with **key tokens** (`position:code`), or take them from frames of a motion you upload.
"""


def error_status(message: str) -> str:
    """The status-box Markdown of a refused or failed request."""
    return f"**Error:** {message}"


def guarded(fn: Callable[..., Any], n_outputs: int) -> Callable[..., Any]:
    """Wrap a page handler so failures become a status message (first output) and the other
    outputs keep their values (``gr.skip()``)."""
    import gradio as gr

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except UserInputError as e:
            message = str(e)
        except Exception as e:  # any other failure: the page gets a message, the server log the traceback
            log.exception("request failed")
            message = f"the request failed ({type(e).__name__}: {e}). The server log has the details."
        if n_outputs == 1:
            return error_status(message)
        return (error_status(message), *([gr.skip()] * (n_outputs - 1)))

    wrapper.__name__ = getattr(fn, "__name__", "handler")
    return wrapper


def _present(shown: Shown, gallery: list[tuple[str, str]], max_gallery: int) -> tuple:
    """Map a :class:`Shown` to the generation outputs (see :data:`N_OUTPUTS`)."""
    if shown.gif:
        gallery = ([(shown.gif, shown.label)] + list(gallery))[:max_gallery]
    return (
        shown.status,
        shown.gif,  # None clears the previous animation rather than leaving it under a new status
        shown.mp4,
        shown.text,
        shown.tokens,
        shown.files,
        gallery,
        gallery,
    )


def build_ui(service: MotionService) -> Any:
    """The ``gr.Blocks`` page over ``service`` (not launched; :func:`motiongpt.app.server.serve` does)."""
    import gradio as gr

    cfg, lim = service.config, service.limits
    ds = service.downsample

    with gr.Blocks(title=cfg.title, analytics_enabled=False) as page:
        gr.Markdown(f"# {cfg.title}")
        gr.Markdown(_INTRO.format(ds=ds) + f"\n\nServing {service.describe()}.", elem_id="intro")
        history = gr.State([])
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tabs():
                    with gr.Tab("Text to motion", id="t2m"):
                        caption = gr.Textbox(label=f"Caption (up to {lim.max_caption_chars} characters)", lines=2,
                                             placeholder="a person walks forward, then jumps", elem_id="t2m-caption")
                        length = gr.Slider(0, lim.max_frames, value=0, step=ds, elem_id="t2m-length",
                                           label="Length in frames (0 = the model decides; 20 frames = 1 s)")
                        keys = gr.Textbox(label=f"Key tokens (position:code, up to {lim.max_key_tokens}; "
                                                f"codes 0..{service.nb_code - 1})",
                                          placeholder="0:12, 8:<motion_id_40>", elem_id="t2m-keys")
                        with gr.Accordion("Key poses from a motion", open=False, elem_id="keys-accordion"):
                            key_upload = gr.File(label="Motion (.npy joints (T, 22, 3) / features (T, 263), or .bvh)",
                                                 file_types=list(MOTION_SUFFIXES), type="filepath",
                                                 elem_id="keys-upload")
                            key_frames = gr.Textbox(label="Its frames to pin (their tokens become key tokens at the "
                                                          "same positions)", placeholder="0, 40, 80",
                                                    elem_id="keys-frames")
                            key_button = gr.Button("Use these poses as key tokens", elem_id="keys-from-motion")
                        # text-to-motion only: the generator refuses guidance for m2t / pred / inbetween
                        guidance = gr.Slider(0.0, MAX_GUIDANCE_SCALE, value=service.guidance_scale, step=0.1,
                                             label="Guidance scale", elem_id="guidance_scale",
                                             info="pushes the motion towards the caption (classifier-free "
                                                  "guidance; 1 = off)")
                        # offered when the model learned t2m_next (clause-by-clause writing)
                        compose = gr.Checkbox(value=service.can_compose, visible=service.can_compose,
                                              label="Write the caption clause by clause at each 'then'",
                                              info="each action is written from its own words, then joined; "
                                                   "applies when the model decides the length and no key "
                                                   "tokens are set",
                                              elem_id="t2m-compose")
                        t2m_button = gr.Button("Generate motion", variant="primary", elem_id="t2m-run")
                    with gr.Tab("Motion to text", id="m2t"):
                        m2t_upload = gr.File(label="Motion (.npy or .bvh)", file_types=list(MOTION_SUFFIXES),
                                             type="filepath", elem_id="m2t-upload")
                        m2t_button = gr.Button("Describe the motion", variant="primary", elem_id="m2t-run")
                    with gr.Tab("Prediction / in-betweening", id="edit"):
                        edit_upload = gr.File(label="Motion (.npy or .bvh)", file_types=list(MOTION_SUFFIXES),
                                              type="filepath", elem_id="edit-upload")
                        mode = gr.Radio(["prediction", "in-betweening"], value="prediction", label="Task",
                                        elem_id="edit-mode")
                        start = gr.Number(value=40, precision=0, label="Given frames at the start",
                                          elem_id="edit-start")
                        end = gr.Number(value=40, precision=0, label="Given frames at the end (in-betweening)",
                                        elem_id="edit-end")
                        edit_length = gr.Slider(0, lim.max_frames, value=0, step=ds, elem_id="edit-length",
                                                label="Total length in frames (0 = the model decides)")
                        edit_button = gr.Button("Generate", variant="primary", elem_id="edit-run")
                with gr.Accordion("Sampling", open=True):
                    with gr.Row():
                        temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature (0 = greedy)",
                                                elem_id="temperature")
                        top_k = gr.Slider(0, service.nb_code, value=min(50, service.nb_code), step=1,
                                          label="Top-k (0 = off)", elem_id="top-k")
                    with gr.Row():
                        top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (1 = off)", elem_id="top-p")
                        seed = gr.Number(value=0, precision=0, label="Seed (-1 = random)", elem_id="seed")
            with gr.Column(scale=1):
                status = gr.Markdown("Ready.", elem_id="status")
                with gr.Tabs():
                    with gr.Tab("Animation", id="gif"):
                        animation = gr.Image(label="Animation (GIF)", type="filepath", interactive=False, height=380,
                                             elem_id="animation")
                    with gr.Tab("MP4", id="mp4", visible=service.mp4):
                        video = gr.Video(label="MP4", interactive=False, height=380, elem_id="video")
                description = gr.Textbox(label="Description (motion to text)", interactive=False,
                                         elem_id="m2t-text")
                tokens = gr.Textbox(label="Motion tokens", lines=3, max_lines=6, interactive=False,
                                    buttons=["copy"], elem_id="tokens")
                downloads = gr.File(label="Downloads (joints .npy, .bvh, tokens .txt)", file_count="multiple",
                                    interactive=False, elem_id="downloads")
        gallery = gr.Gallery(label="This session's generations (newest first)", columns=6, height=300,
                             object_fit="contain", fit_columns=False, interactive=False,
                             elem_id="gallery")

        outputs = [status, animation, video, description, tokens, downloads, gallery, history]
        sampling = [temperature, top_k, top_p, seed]
        run = {"concurrency_id": MODEL_CONCURRENCY_ID, "concurrency_limit": 1}

        def t2m(cap: str, n: float, key_spec: str, g: float, c: bool, t: float, k: float, p: float, s: float,
                hist: list) -> tuple:
            shown = service.text_to_motion(cap, n, key_spec, check_sampling(t, k, p, s, guidance_scale=g),
                                           compose=bool(c))
            return _present(shown, hist, lim.max_gallery)

        def m2t(upload: str | None, t: float, k: float, p: float, s: float, hist: list) -> tuple:
            shown = service.motion_to_text(upload, check_sampling(t, k, p, s))
            return _present(shown, hist, lim.max_gallery)

        def edit(upload: str | None, task: str, a: float, b: float, n: float, t: float, k: float, p: float,
                 s: float, hist: list) -> tuple:
            sampling_inputs = check_sampling(t, k, p, s)
            if task == "prediction":
                shown = service.predict(upload, a, n, sampling_inputs)
            else:
                shown = service.inbetween(upload, a, b, n, sampling_inputs)
            return _present(shown, hist, lim.max_gallery)

        def from_motion(upload: str | None, frames: str, key_spec: str) -> tuple[str, str]:
            spec, message = service.key_tokens_from_motion(upload, frames, key_spec)
            return message, spec

        t2m_inputs = [caption, length, keys, guidance, compose, *sampling, history]
        t2m_button.click(guarded(t2m, N_OUTPUTS), t2m_inputs, outputs, api_name="text_to_motion", **run)
        caption.submit(guarded(t2m, N_OUTPUTS), t2m_inputs, outputs, api_name=False, **run)
        m2t_button.click(guarded(m2t, N_OUTPUTS), [m2t_upload, *sampling, history], outputs,
                         api_name="motion_to_text", **run)
        edit_button.click(guarded(edit, N_OUTPUTS), [edit_upload, mode, start, end, edit_length, *sampling, history],
                          outputs, api_name="edit_motion", **run)
        key_button.click(guarded(from_motion, 2), [key_upload, key_frames, keys], [status, keys],
                         api_name="key_tokens_from_motion", **run)
    return page
