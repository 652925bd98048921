"""Check a motion against a synthetic label, from joint positions alone.

:func:`verify_clip` measures whole-clip facts (no segment timing is needed, so it also applies to
a *generated* motion for a label's caption): net travel direction and distance, net turn,
waves per hand, claps, kicks per leg, raised arms, jumps and squats. Each check returns the
expected and measured values and whether they agree. The measures are written from first
principles (hysteresis counters on heights and distances), independent of the generator.

Inputs are ``(T, 22, 3)`` joints in metres, y up, 20 fps, ideally as stored (canonical: frame 0
faces +z); only the frame-0 facing is used as the reference direction.
"""

from __future__ import annotations

import math

import numpy as np

from motiongpt.data.synthetic.labels import DISTANCE_BANDS, TRAVEL_MIN_M, band_of, facing_yaw

__all__ = ["count_excursions", "measure_clip", "verify_clip"]

_FEET = (7, 10, 8, 11)


def count_excursions(x: np.ndarray, high: float, low: float, min_len: int = 1) -> int:
    """Number of times ``x`` rises above ``high`` for at least ``min_len`` frames (re-armed when it
    falls below ``low``): a hysteresis peak counter that ignores jitter."""
    count, armed, run = 0, True, 0
    for v in np.asarray(x, dtype=np.float64):
        if armed:
            run = run + 1 if v > high else 0
            if run >= min_len:
                count, armed, run = count + 1, False, 0
        elif v < low:
            armed = True
    return count


def _runs(mask: np.ndarray, min_len: int) -> int:
    """Number of runs of True of at least ``min_len`` frames."""
    return count_excursions(mask.astype(np.float64), 0.5, 0.5, min_len)


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill runs of False of at most ``max_gap`` frames that lie between True frames."""
    out = mask.copy()
    idx = np.flatnonzero(mask)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            out[a:b] = True
    return out


def measure_clip(joints: np.ndarray) -> dict:
    """Whole-clip measurements used by :func:`verify_clip` (see the module docstring)."""
    j = np.asarray(joints, dtype=np.float64)
    yaw = facing_yaw(j)
    root = j[:, 0]
    d = root[-1, [0, 2]] - root[0, [0, 2]]
    y0 = float(yaw[0])
    fwd = d[0] * math.sin(y0) + d[1] * math.cos(y0)
    left = d[0] * math.cos(y0) - d[1] * math.sin(y0)
    dist = math.hypot(fwd, left)
    if dist < TRAVEL_MIN_M:
        direction = "none"
    elif abs(fwd) >= abs(left):
        direction = "forward" if fwd > 0 else "backward"
    else:
        direction = "left" if left > 0 else "right"

    # Per-frame body axes (from the facing), for lateral / forward components.
    fw = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=-1)  # (T, 3)
    lf = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], axis=-1)

    feet_min = j[:, _FEET, 1].min(axis=1)  # (T,) lowest foot joint
    airborne = feet_min > 0.03
    # standing pelvis height: a high percentile of grounded frames (squats spend long low)
    stand_y = float(np.percentile(root[:, 1][~airborne], 90)) if (~airborne).any() else float(root[:, 1].max())
    speed = np.r_[0.0, np.linalg.norm(np.diff(root[:, [0, 2]], axis=0), axis=-1)] * 20.0  # (T,) m/s

    waves = {}
    raised = {}
    for side, (w, sh) in {"left": (20, 16), "right": (21, 17)}.items():
        # waving: hand above the shoulder with the elbow bent (a raised straight arm is not a wave)
        up = (j[:, w, 1] > j[:, sh, 1] + 0.05) & (np.linalg.norm(j[:, w] - j[:, sh], axis=-1) < 0.45)
        lat = ((j[:, w] - j[:, sh]) * lf).sum(-1) * (1.0 if side == "left" else -1.0)
        # count each raised-hand episode on its own (centred on its own median); gaps of a few
        # frames (the hand dipping below the thresholds mid-wave) do not split an episode
        up = _close_gaps(up, 6)
        edges = np.flatnonzero(np.diff(np.r_[0, up.astype(np.int8), 0]))
        waves[side] = sum(
            count_excursions(lat[a:b] - np.median(lat[a:b]), 0.03, -0.03) for a, b in zip(edges[::2], edges[1::2])
        )
        raised[side] = bool((j[:, w, 1] > j[:, 15, 1] + 0.15).any())  # wrist well above the head
    gap = np.linalg.norm(j[:, 20] - j[:, 21], axis=-1)
    claps = count_excursions(-gap, -0.12, -0.2)

    kicks = {}
    for side, (ank, hip, other) in {"left": (7, 1, (8, 11)), "right": (8, 2, (7, 10))}.items():
        ahead = ((j[:, ank] - j[:, hip]) * fw).sum(-1)
        other_down = j[:, list(other), 1].min(axis=1) < 0.02
        kicking = other_down & (ahead > 0.25) & (speed < 0.25)  # standing on the other foot, not running
        kicks[side] = count_excursions(np.where(kicking, j[:, ank, 1], 0.0), 0.2, 0.1)
    jumps = _runs(airborne, 2)
    feet_still = np.r_[True, (np.linalg.norm(np.diff(j[:, _FEET], axis=0), axis=-1) < 0.01).all(axis=1)]
    drop = np.where(feet_still, stand_y - root[:, 1], 0.0)
    squats = count_excursions(drop, 0.2, 0.08, min_len=6)  # a squat holds low; a jump crouch is brief
    return {
        "travel": {"direction": direction, "forward_m": fwd, "left_m": left, "distance_m": dist,
                   "distance_band": band_of(dist, DISTANCE_BANDS)},
        "turn_deg": math.degrees(float(yaw[-1] - yaw[0])),
        "waves": waves,
        "claps": claps,
        "kicks": kicks,
        "arms_raised": raised,
        "airborne_phases": jumps,
        "max_rise_m": float(root[:, 1].max() - stand_y),
        "squats": squats,
    }


def verify_clip(joints: np.ndarray, label: dict, *, distance_tol: float = 0.25, angle_tol: float = 30.0) -> dict:
    """Check joints against a label's summary.

    Args:
        joints: ``(T, 22, 3)``.
        label: a ``labels/<id>.json`` dict.
        distance_tol: relative tolerance of the net travelled distance (and 0.2 m absolute slack).
        angle_tol: degrees of tolerance on the net turn.

    Returns:
        ``{"ok": bool, "checks": {name: {"expected", "measured", "ok"}}}``.
    """
    m = measure_clip(joints)
    s = label["summary"]
    fams = set(s["families"])
    checks: dict[str, dict] = {}

    def check(name: str, expected: object, measured: object, ok: bool) -> None:
        checks[name] = {"expected": expected, "measured": measured, "ok": bool(ok)}

    tr = s["travel"]
    check("travel_direction", tr["direction"], m["travel"]["direction"], tr["direction"] == m["travel"]["direction"])
    check("travel_distance_m", tr["distance_m"], round(m["travel"]["distance_m"], 3),
          abs(m["travel"]["distance_m"] - tr["distance_m"]) <= distance_tol * tr["distance_m"] + 0.2)
    planned = s["turn"]["planned_angle_deg"]
    check("turn_deg", planned, round(m["turn_deg"], 1), abs(m["turn_deg"] - planned) <= angle_tol)
    for side in ("left", "right"):
        check(f"waves_{side}", s["waves"][side], m["waves"][side], m["waves"][side] == s["waves"][side])
        check(f"kicks_{side}", s["kicks"][side], m["kicks"][side], m["kicks"][side] == s["kicks"][side])
        check(f"arm_raised_{side}", s["arms_raised"][side], m["arms_raised"][side], m["arms_raised"][side] == s["arms_raised"][side])
    check("claps", s["claps"], m["claps"], m["claps"] == s["claps"])
    if "run" not in fams:  # running has flight phases too
        check("jumps", s["jumps"]["count"], m["airborne_phases"], m["airborne_phases"] == s["jumps"]["count"])
    if "jump" not in fams and "run" not in fams:
        check("squats", s["squats"], m["squats"], m["squats"] == s["squats"])
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
