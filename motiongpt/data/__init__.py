"""Datasets: the HumanML3D / KIT-ML layout loader and the synthetic motion corpus."""

from motiongpt.data.humanml3d import (
    Caption,
    HumanML3DDataset,
    LoadReport,
    MotionClip,
    format_caption_line,
    load_humanml3d,
    parse_caption_line,
    read_split,
)

__all__ = [
    "Caption",
    "HumanML3DDataset",
    "LoadReport",
    "MotionClip",
    "format_caption_line",
    "load_humanml3d",
    "parse_caption_line",
    "read_split",
]
