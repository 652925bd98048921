"""Structured ground truth of synthetic clips: parameter names, bands, and label computation.

A later checker imports these constants to verify a generated motion from its joints alone, so
every band here is stated in quantities measurable on ``new_joints`` (metres, 20 fps, y up; the
clip starts at the origin facing +z with its left side toward +x, as HumanML3D canonicalizes).

Sign conventions (shared with the whole package):

* heading / yaw: angle about +y; **positive = counter-clockwise seen from above = a left turn**
  (the facing direction +z rotates toward +x, the body's left);
* lateral: + = the body's left (+x at frame 0); forward: + = the initial facing (+z at frame 0).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "LABEL_VERSION",
    "SPEED_SAMPLING",
    "SPEED_BANDS",
    "DISTANCE_BANDS",
    "TURN_ANGLES",
    "TURN_ANGLE_BANDS",
    "SPIN_ANGLE_BAND",
    "JUMP_HEIGHT_SAMPLING",
    "JUMP_HEIGHT_BANDS",
    "KICK_HEIGHT_SAMPLING",
    "KICK_HEIGHT_BANDS",
    "WAVE_COUNTS",
    "CLAP_COUNTS",
    "SQUAT_COUNTS",
    "KICK_COUNTS",
    "JUMP_COUNTS",
    "TRAVEL_MIN_M",
    "PARAM_NAMES",
    "band_of",
    "facing_yaw",
    "build_label",
]

LABEL_VERSION = 1

# Cruise speeds (m/s of the pelvis) the generator draws from, per family and band. The gaps
# between a family's ranges keep the bands unambiguous.
SPEED_SAMPLING: dict[str, dict[str, tuple[float, float]]] = {
    "walk": {"slow": (0.6, 0.9), "normal": (1.05, 1.35), "fast": (1.55, 1.85)},
    "run": {"jog": (1.9, 2.4), "run": (2.7, 3.3)},
    "walk_backward": {"slow": (0.4, 0.6), "normal": (0.7, 0.95)},
    "sidestep": {"normal": (0.25, 0.4)},
}

# Classification bands of the cruise speed, [lo, hi): boundaries halfway between sampling ranges.
SPEED_BANDS: dict[str, dict[str, tuple[float, float]]] = {
    "walk": {"slow": (0.0, 0.975), "normal": (0.975, 1.45), "fast": (1.45, math.inf)},
    "run": {"jog": (0.0, 2.55), "run": (2.55, math.inf)},
    "walk_backward": {"slow": (0.0, 0.65), "normal": (0.65, math.inf)},
    "sidestep": {"normal": (0.0, math.inf)},
}

# Travelled distance (metres of pelvis displacement), [lo, hi).
DISTANCE_BANDS: dict[str, tuple[float, float]] = {"short": (0.0, 1.5), "medium": (1.5, 4.0), "long": (4.0, math.inf)}

# Turns in place: nominal angles (degrees; the generator adds up to +-6) and their bands [lo, hi).
TURN_ANGLES: tuple[int, ...] = (45, 90, 180)
TURN_ANGLE_BANDS: dict[int, tuple[float, float]] = {45: (20.0, 67.5), 90: (67.5, 135.0), 180: (135.0, 270.0)}
SPIN_ANGLE_BAND: tuple[float, float] = (270.0, 450.0)  # a spin is one full turn (360 +- 8 generated)

# Jumps: the generator draws the ballistic apex (m above take-off) from these ranges; the label's
# ``height_m`` is measured: peak pelvis height minus the standing pelvis height before the jump.
JUMP_HEIGHT_SAMPLING: dict[str, tuple[float, float]] = {"low": (0.08, 0.15), "high": (0.25, 0.36)}
JUMP_HEIGHT_BANDS: dict[str, tuple[float, float]] = {"low": (0.0, 0.245), "high": (0.245, math.inf)}

# Kicks: peak ankle height (m above the floor) of the kicking leg.
KICK_HEIGHT_SAMPLING: dict[str, tuple[float, float]] = {"low": (0.25, 0.42), "high": (0.6, 0.8)}
KICK_HEIGHT_BANDS: dict[str, tuple[float, float]] = {"low": (0.0, 0.5), "high": (0.5, math.inf)}

WAVE_COUNTS: tuple[int, ...] = (1, 2, 3, 4)
CLAP_COUNTS: tuple[int, ...] = (1, 2, 3, 4, 5)
SQUAT_COUNTS: tuple[int, ...] = (1, 2, 3)
KICK_COUNTS: tuple[int, ...] = (1, 2, 3)
JUMP_COUNTS: tuple[int, ...] = (1, 2, 3)

# A clip whose net pelvis displacement is below this has travel direction "none".
TRAVEL_MIN_M = 0.3

# Segment parameter names per family (``labels/<id>.json`` -> segments[i].params).
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "walk": ("direction", "speed_band", "speed_mps", "distance_m", "distance_band", "steps"),
    "run": ("direction", "speed_band", "speed_mps", "distance_m", "distance_band", "steps"),
    "walk_backward": ("direction", "speed_band", "speed_mps", "distance_m", "distance_band", "steps"),
    "sidestep": ("direction", "speed_band", "speed_mps", "distance_m", "distance_band", "steps"),
    "turn": ("direction", "angle_nominal", "angle_deg", "steps"),
    "spin": ("direction", "angle_deg", "count", "steps"),
    "jump": ("forward", "count", "height_band", "height_m", "apex_m", "distance_m"),
    "squat": ("count", "depth_m"),  # depth_m: measured pelvis drop
    "kick": ("side", "count", "height_band", "height_m"),
    "wave": ("side", "count"),
    "raise_arm": ("side", "plane"),
    "clap": ("count",),
    "idle": ("duration_s",),
}


def band_of(value: float, bands: dict) -> str:
    """Name of the band ``[lo, hi)`` holding ``value`` (the last band also takes ``hi``)."""
    items = list(bands.items())
    for name, (lo, hi) in items:
        if lo <= value < hi:
            return str(name)
    return str(items[-1][0]) if value >= items[-1][1][0] else str(items[0][0])


def facing_yaw(joints: np.ndarray) -> np.ndarray:
    """Per-frame body heading (radians, + = left/counter-clockwise) from the hips and shoulders.

    Uses the same across vector as HumanML3D's canonicalization: ``(j2 - j1) + (j17 - j16)``
    (right minus left), and forward = up x across; yaw 0 faces +z.

    Args:
        joints: ``(T, 22, 3)``.

    Returns:
        ``(T,)`` unwrapped yaw.
    """
    across = (joints[:, 2] - joints[:, 1]) + (joints[:, 17] - joints[:, 16])  # (T, 3) points right
    fwd_x = across[:, 2]  # up x across = (across_z, 0, -across_x) with up = +y
    fwd_z = -across[:, 0]
    return np.unwrap(np.arctan2(fwd_x, fwd_z))


_TRAVEL = ("walk", "run", "walk_backward", "sidestep")
_TURNING = ("turn", "spin")


def _r(x: float, nd: int = 3) -> float:
    """Round for JSON (stable, readable labels)."""
    return round(float(x), nd)


def _body_frame(d: np.ndarray, yaw: float) -> tuple[float, float]:
    """(forward, left) components of a horizontal displacement ``d = (dx, dz)`` for heading ``yaw``."""
    fwd = d[0] * math.sin(yaw) + d[1] * math.cos(yaw)
    left = d[0] * math.cos(yaw) - d[1] * math.sin(yaw)
    return fwd, left


def _direction(fwd: float, left: float) -> str:
    if math.hypot(fwd, left) < TRAVEL_MIN_M:
        return "none"
    if abs(fwd) >= abs(left):
        return "forward" if fwd > 0 else "backward"
    return "left" if left > 0 else "right"


def build_label(clip_id: str, parts: list, joints: np.ndarray, fps: int = 20) -> dict:
    """The ``labels/<id>.json`` content of one clip.

    Args:
        clip_id: e.g. ``"S000123"``.
        parts: the clip's timeline parts (objects with ``family``, ``params``, ``f0``, ``f1``,
            ``events``); ``"pad"`` parts (relaxed standing at the ends) are not segments.
        joints: ``(T, 22, 3)`` stored joints (``new_joints``; canonical: frame 0 at the origin
            facing +z). Measured quantities come from these, so they hold for the saved motion.
        fps: frame rate.

    Returns:
        ``{"id", "fps", "length", "segments": [{"action", "params", "start", "end", "measured",
        "event_frames"}], "summary": {...}}``; ``end`` is exclusive; directions are relative to the
        body's facing at the segment start (segments) or at frame 0 (summary).
    """
    n = joints.shape[0]
    root = joints[:, 0].astype(np.float64)
    yaw = facing_yaw(joints.astype(np.float64))
    segments = []
    summary: dict = {
        "families": [],
        "jumps": {"count": 0, "max_height_m": 0.0},
        "waves": {"left": 0, "right": 0},
        "claps": 0,
        "kicks": {"left": 0, "right": 0},
        "squats": 0,
        "spins": {"left": 0, "right": 0},
        "arms_raised": {"left": False, "right": False},
        "hands_used": [],
        "legs_kicked": [],
    }
    planned_turn = 0.0
    hands: set[str] = set()
    for part in parts:
        if part.family == "pad":
            continue
        a, b = int(min(part.f0, n - 1)), int(min(part.f1, n))
        last = max(b - 1, a)
        fam = part.family
        p = dict(part.params)
        measured: dict = {}
        if fam in _TRAVEL:
            d = root[last, [0, 2]] - root[a, [0, 2]]
            fwd, left = _body_frame(d, float(yaw[a]))
            measured = {"forward_m": _r(fwd), "left_m": _r(left), "distance_m": _r(math.hypot(fwd, left))}
            p["distance_band"] = band_of(p["distance_m"], DISTANCE_BANDS)
            p["steps"] = int(part.events.get("steps", 0))
        elif fam in _TURNING:
            sign = 1.0 if p["direction"] == "left" else -1.0
            planned_turn += sign * p["angle_deg"]
            measured = {"angle_deg": _r(math.degrees(yaw[last] - yaw[a]), 2)}
            p["steps"] = int(part.events.get("steps", 0))
            if fam == "turn":
                p["angle_band"] = str(p["angle_nominal"])
            else:
                summary["spins"][p["direction"]] += 1
        elif fam == "jump":
            height = float(root[a:b, 1].max() - root[a, 1])
            p["height_m"] = _r(height)
            p["height_band"] = band_of(height, JUMP_HEIGHT_BANDS)
            d = root[last, [0, 2]] - root[a, [0, 2]]
            fwd, left = _body_frame(d, float(yaw[a]))
            measured = {"forward_m": _r(fwd), "left_m": _r(left)}
            if p["forward"]:
                p["distance_m"] = _r(math.hypot(fwd, left))
            summary["jumps"]["count"] += p["count"]
            summary["jumps"]["max_height_m"] = max(summary["jumps"]["max_height_m"], p["height_m"])
        elif fam == "kick":
            ankle = 7 if p["side"] == "left" else 8
            height = float(joints[a:b, ankle, 1].max())
            p["height_m"] = _r(height)
            p["height_band"] = band_of(height, KICK_HEIGHT_BANDS)
            summary["kicks"][p["side"]] += p["count"]
        elif fam == "squat":
            p["depth_m"] = _r(root[a, 1] - root[a:b, 1].min())
            summary["squats"] += p["count"]
        elif fam == "wave":
            summary["waves"][p["side"]] += p["count"]
            hands.add(p["side"])
        elif fam == "clap":
            summary["claps"] += p["count"]
            hands.update(("left", "right"))
        elif fam == "raise_arm":
            sides = ("left", "right") if p["side"] == "both" else (p["side"],)
            head_y = joints[a:b, 15, 1]
            above = {}
            for sd in sides:
                wrist = 20 if sd == "left" else 21
                summary["arms_raised"][sd] = True
                above[sd] = bool(np.any(joints[a:b, wrist, 1] > head_y))
                hands.add(sd)
            measured = {"wrist_above_head": above}
        events = {k: [int(f) for f in v] for k, v in part.events.items() if isinstance(v, list)}
        summary["families"].append(fam)
        segments.append({"action": fam, "params": p, "start": a, "end": b, "measured": measured, "event_frames": events})
    d = root[-1, [0, 2]] - root[0, [0, 2]]
    fwd, left = _body_frame(d, float(yaw[0]))
    path = float(np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=1).sum())
    summary["travel"] = {
        "direction": _direction(fwd, left),
        "forward_m": _r(fwd),
        "left_m": _r(left),
        "distance_m": _r(math.hypot(fwd, left)),
        "distance_band": band_of(math.hypot(fwd, left), DISTANCE_BANDS),
        "path_length_m": _r(path),
    }
    summary["turn"] = {
        "direction": "left" if planned_turn > 1e-6 else ("right" if planned_turn < -1e-6 else "none"),
        "planned_angle_deg": _r(planned_turn, 2),
        "measured_angle_deg": _r(math.degrees(yaw[-1] - yaw[0]), 2),
    }
    summary["hands_used"] = sorted(hands)
    summary["legs_kicked"] = sorted(s for s, k in summary["kicks"].items() if k)
    summary["num_segments"] = len(segments)
    return {"id": clip_id, "fps": fps, "length": n, "segments": segments, "summary": summary}
