"""Rendering of skeleton motions (animated GIF / MP4 and PNG frame strips) with matplotlib's Agg canvas."""

from motiongpt.viz.plot3d import (
    SIDE_COLORS,
    MotionFile,
    chain_sides,
    default_chains,
    find_motions,
    render_directory,
    render_frames_png,
    render_motion,
    render_to_arrays,
    validate_joints,
)

__all__ = [
    "SIDE_COLORS",
    "MotionFile",
    "chain_sides",
    "default_chains",
    "find_motions",
    "render_directory",
    "render_frames_png",
    "render_motion",
    "render_to_arrays",
    "validate_joints",
]
