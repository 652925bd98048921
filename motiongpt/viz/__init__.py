"""Rendering of motions: skeleton animations (GIF / MP4, side by side) and PNG frame strips with
matplotlib's Agg canvas (:mod:`motiongpt.viz.plot3d`), and a shaded capsule body rendered with
numpy (:mod:`motiongpt.viz.body`). Video writing is in :mod:`motiongpt.viz.video`."""

from motiongpt.viz.plot3d import (
    SIDE_COLORS,
    MotionFile,
    chain_sides,
    default_chains,
    find_motions,
    load_features_file,
    load_motion_file,
    render_directory,
    render_frames_png,
    render_motion,
    render_motions,
    render_motions_to_arrays,
    render_to_arrays,
    validate_joints,
)
from motiongpt.viz.body import (
    BodyModel,
    BodyRenderOptions,
    body_model,
    iter_body_frames,
    render_bodies,
    render_bodies_frames,
    render_body,
    render_body_frames,
)
from motiongpt.viz.video import ffmpeg_available, find_ffmpeg, read_video, write_video

__all__ = [
    "BodyModel",
    "BodyRenderOptions",
    "body_model",
    "iter_body_frames",
    "render_bodies",
    "render_bodies_frames",
    "render_body",
    "render_body_frames",
    "SIDE_COLORS",
    "MotionFile",
    "chain_sides",
    "default_chains",
    "ffmpeg_available",
    "find_ffmpeg",
    "find_motions",
    "load_features_file",
    "load_motion_file",
    "read_video",
    "render_directory",
    "render_frames_png",
    "render_motion",
    "render_motions",
    "render_motions_to_arrays",
    "render_to_arrays",
    "validate_joints",
    "write_video",
]
