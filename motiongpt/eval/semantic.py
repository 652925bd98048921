"""Semantic accuracy on the synthetic corpus: does a motion do what its caption says?

For a motion (joints ``(T, 22, 3)``, metres, y up, 20 fps, frame 0 facing +z as HumanML3D stores
it) and the label of the clip whose caption it was generated from (``labels/<id>.json``), this
module detects what the body does from the joints alone and checks it against what the caption
states, at the granularity the caption states it:

* **what a caption always states** (whatever paraphrase was drawn, see
  :mod:`motiongpt.data.synthetic.captions`): the actions and their order; travel direction
  (forward / backward / sideways left or right); the pace words (slow and fast walks are always
  worded so, jog vs run); turn angle band (slightly = 45, a quarter = 90, around = 180) and its
  direction for 45/90; a spin is a full circle; jump, squat, kick and clap counts; forward jumps;
  kicking leg; waving hand; raised arm(s);
* **what only some paraphrases state** (checked only when a caption is given and says it):
  distance band ("a few steps" = short, "a long way" = long), the direction of a 180 turn or of a
  spin, jump and kick height ("high", "small", "hops"), jumping in place, and the number of waves.

Numbers are checked against the label's *bands*, not its exact values: a caption saying "walks
forward a few steps" passes for any forward walk shorter than 1.5 m. Step counts in captions
("takes four steps forward") are not checked: foot placements of a generated motion are too
ambiguous to count reliably (small settling steps at the end of a walk count in the label). The
plane of a raised arm (forward or sideways) is not checked either.

**Order**: actions are detected as time intervals (locomotion episodes, turning episodes, jump,
squat, kick and clap clusters, wave and raised-arm episodes); the caption's order holds when the
detected actions can be assigned, in caption order, to intervals with increasing centres. Standing
still ("stands still", "waits") cannot be told apart from the standing pads every clip starts and
ends with, so idle segments only get a "still for a second" check and take no part in the order.

**Unrequested actions**: a motion that does something the caption does not mention (a jump, a
wave, a kick, a clap, a squat, a raised arm, a turn of 30 degrees or more, or travel of 0.5 m or
more that no stated action explains) fails the ``extra`` check. A hand raised high (the raised-arm
test) while it waves, as the caption says it does, is that wave and not an unrequested raise.

The detectors are written from first principles on joint positions (hysteresis counters,
smoothed velocities, the gait's double support), independent of the generator, and are robust to
a constant floor offset (heights are measured from the clip's own floor) and to some foot skating.
A clap needs the wrists within 12 cm; a wave needs the raised hand to swing sideways by 3 cm
either way, and by half the largest swing of its episode; a forward jump carries the pelvis 20 cm
per jump.

Validation on the 2,000-clip demo corpus (``make demo``): the real clips of the val and test
splits (200 each) score 1.0 (without captions and with each of their first three captions);
the reconstructions of the demo's tiny VQ-VAE 0.998-1.0 (an earlier, smaller-loss tokenizer on the
earlier corpus: 0.64-0.66, losing wave swings, the forward travel of jumps, part of 180-degree
turns and some claps); motions paired with the label of a clip of another composition 0.0. Of
3,200 checks of train, val and test clips (no caption and their first three), one fails: a spin
followed by a turn the same way, which the turn detector sees as one longer turn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from motiongpt.data.synthetic.labels import (
    DISTANCE_BANDS,
    JUMP_HEIGHT_BANDS,
    KICK_HEIGHT_BANDS,
    SPEED_BANDS,
    SPIN_ANGLE_BAND,
    TURN_ANGLE_BANDS,
    band_of,
    facing_yaw,
)

__all__ = [
    "FPS",
    "Interval",
    "MotionEvents",
    "StatedSegment",
    "detect_events",
    "stated_segments",
    "check_motion",
    "semantic_accuracy",
]

FPS = 20
"""Frame rate the detectors assume (HumanML3D's)."""

_FEET = (7, 10, 8, 11)  # left ankle, left toe, right ankle, right toe
_LOCOMOTION = ("walk", "run", "walk_backward", "sidestep")
_TURNING = ("turn", "spin")
_COUNT_ADVERBS = ("once", "twice", "three times", "four times", "five times")

# ---- detector thresholds (metres, seconds, degrees); chosen on the demo corpus's val split ----
WAVE_MIN_M = 0.03
"""Smallest sideways swing of a raised hand (either way of its median) that counts as a wave."""
WAVE_REL = 0.5
"""A swing counts as a wave when it reaches this fraction of the largest swing of its episode (the
corpus's waves swing 10-14 cm either way; a settling hand wobbles a few cm)."""
AIRBORNE_M = 0.03
"""A frame is airborne when the lowest foot joint is this far above the clip's floor."""
JUMP_MIN_FRAMES = 3
"""Shortest airborne run that is a jump (running flight phases last 1-2 frames, jumps 4-11)."""
LOCO_SPEED = 0.15
"""Smoothed pelvis speed (m/s) above which a frame counts as travelling."""
LOCO_MIN_M = 0.3
"""Shortest displacement of a travel episode (the corpus's ``TRAVEL_MIN_M``)."""
RUN_DOUBLE_SUPPORT = 0.1
"""A forward episode is a run when both feet are planted on less than this fraction of its cruise
frames: walking always has double support (0.36-0.57 of the cruise in the corpus, 0.24-0.57 in
tiny-VQ reconstructions), running never (0.0), even a jog whose flight phases are too low to see."""
JUMP_FORWARD_M = 0.2
"""A forward jump carries the pelvis at least this far per jump (generated: 0.35-0.85 m); an
in-place jump less (generated: 0)."""
TURN_RATE_DEG = 20.0
"""Smoothed yaw rate (deg/s) above which a frame counts as turning."""
TURN_MIN_DEG = 20.0
"""Smallest net yaw change of a turning episode (the lower edge of the 45-degree band)."""
EXTRA_TURN_DEG = 30.0
"""A turning episode no stated action explains fails ``extra`` from this angle on."""
EXTRA_TRAVEL_M = 0.5
"""A travel episode no stated action explains fails ``extra`` from this distance on."""
STILL_S = 0.8
"""Idle segments must hold a still period at least this long."""


# --------------------------------------------------------------------------------------------
# Small signal helpers
# --------------------------------------------------------------------------------------------


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 (edges use the nearest value)."""
    from scipy.ndimage import uniform_filter1d

    if window <= 1 or x.shape[0] < 2:
        return x
    return uniform_filter1d(x, size=window, axis=0, mode="nearest")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of every run of True."""
    edges = np.flatnonzero(np.diff(np.r_[0, np.asarray(mask, dtype=np.int8), 0]))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill runs of False of at most ``max_gap`` frames between True frames."""
    out = np.asarray(mask, dtype=bool).copy()
    idx = np.flatnonzero(out)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            out[a:b] = True
    return out


def _excursions(x: np.ndarray, high: float, low: float, min_len: int = 1) -> list[int]:
    """Frames where ``x`` rises above ``high`` for ``min_len`` frames (re-armed below ``low``):
    a hysteresis peak detector that ignores jitter. Returns the frame of each peak's maximum."""
    out: list[int] = []
    armed, run, start = True, 0, 0
    x = np.asarray(x, dtype=np.float64)
    for t, v in enumerate(x):
        if armed:
            if v > high:
                if run == 0:
                    start = t
                run += 1
                if run >= min_len:
                    armed, run = False, 0
            else:
                run = 0
        elif v < low:
            seg = x[start:t]
            out.append(start + int(np.argmax(seg)))
            armed = True
    if not armed:
        out.append(start + int(np.argmax(x[start:])))
    return out


# --------------------------------------------------------------------------------------------
# Detected events
# --------------------------------------------------------------------------------------------


@dataclass
class Interval:
    """One detected action instance: frames ``[start, end)`` and its measured properties."""

    kind: str
    """What it is: ``forward``/``backward``/``left``/``right`` (travel), ``turn``, ``jump``,
    ``squat``, ``kick_left``, ``wave_right``, ``raise_left``, ``clap``, ``still``."""
    start: int
    """First frame."""
    end: int
    """One past the last frame."""
    props: dict = field(default_factory=dict)
    """Measurements: distance_m / speed_mps / run (travel), angle_deg (turn), height_m / forward_m
    (jump), count (wave, clap, kick), ..."""

    @property
    def center(self) -> float:
        """Middle frame (used to order actions)."""
        return 0.5 * (self.start + self.end - 1)


@dataclass
class MotionEvents:
    """Everything :func:`detect_events` found in one motion."""

    length: int
    """Number of frames."""
    travel: list[Interval]
    """Travel episodes (kind = body-relative direction) with ``distance_m``, ``speed_mps`` (cruise),
    ``double_support`` (fraction of cruise frames with both feet planted), ``run``."""
    turns: list[Interval]
    """Turning episodes with signed ``angle_deg`` (+ = left / counter-clockwise)."""
    jumps: list[Interval]
    """One interval per jump (its airborne phase) with ``height_m`` and ``forward_m``."""
    squats: list[Interval]
    """One interval per squat (the low hold)."""
    kicks: dict[str, list[Interval]]
    """Per leg, one interval per kick with ``height_m`` (peak ankle height above the floor)."""
    waves: dict[str, list[Interval]]
    """Per hand, one interval per raised-hand episode with its ``count`` of side-to-side waves."""
    claps: list[Interval]
    """One interval per clap."""
    raises: dict[str, list[Interval]]
    """Per arm, episodes with the wrist well above the head."""
    still_s: float
    """Longest still period in seconds (no joint moving faster than 0.3 m/s, no travel or turning)."""

    def counts(self) -> dict[str, Any]:
        """Summary counts (for reports and debugging)."""
        return {
            "jumps": len(self.jumps),
            "squats": len(self.squats),
            "claps": len(self.claps),
            "kicks": {s: len(v) for s, v in self.kicks.items()},
            "waves": {s: sum(i.props["count"] for i in v) for s, v in self.waves.items()},
            "raises": {s: len(v) for s, v in self.raises.items()},
            "travel": [(i.kind, round(i.props["distance_m"], 2), round(i.props["speed_mps"], 2)) for i in self.travel],
            "turns": [round(i.props["angle_deg"], 1) for i in self.turns],
            "still_s": round(self.still_s, 2),
        }


def _check_joints(joints: np.ndarray, name: str = "joints") -> np.ndarray:
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1] != 22 or j.shape[2] != 3:
        raise ValueError(f"{name}: expected (T, 22, 3) joint positions, got shape {j.shape}")
    if j.shape[0] < 2:
        raise ValueError(f"{name}: needs at least 2 frames, got {j.shape[0]}")
    if not np.isfinite(j).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return j


def detect_events(joints: np.ndarray) -> MotionEvents:
    """Detect the actions of one motion from its joint positions ``(T, 22, 3)``."""
    j = _check_joints(joints)
    n = j.shape[0]
    root = j[:, 0]  # (T, 3)
    yaw = facing_yaw(j)  # (T,) unwrapped, + = left
    yaw_s = _smooth(yaw, 9)  # the torso twists with every step; a 0.45 s window averages it out

    # Heights are measured from the clip's own floor (the lowest foot joint on most frames), so a
    # generated motion floating or sinking a few centimetres is judged the same.
    foot_y = j[:, _FEET, 1]  # (T, 4)
    floor = float(np.percentile(foot_y.min(axis=1), 10))
    feet_min = foot_y.min(axis=1) - floor  # (T,)
    airborne = feet_min > AIRBORNE_M

    # ---- jumps: airborne runs long enough to be a jump (not a running flight phase) ----
    grounded = ~airborne
    stand_y = float(np.percentile(root[grounded, 1], 90)) if grounded.any() else float(root[:, 1].max())
    jumps: list[Interval] = []
    jump_mask = np.zeros(n, dtype=bool)
    for a, b in _runs(airborne):
        if b - a < JUMP_MIN_FRAMES:
            continue
        lo, hi = max(a - 4, 0), min(b + 4, n - 1)
        # the standing height just before the take-off crouch; fall back to the clip's standing height
        before = root[max(a - 20, 0) : max(a - 6, 1), 1]
        base = float(before.max()) if before.size else stand_y
        d = root[hi, [0, 2]] - root[lo, [0, 2]]
        y0 = float(yaw_s[lo])
        fwd = d[0] * math.sin(y0) + d[1] * math.cos(y0)
        jumps.append(Interval("jump", a, b, {"height_m": float(root[a:b, 1].max()) - base, "forward_m": float(fwd)}))
        jump_mask[max(a - 8, 0) : min(b + 8, n)] = True

    # ---- travel: smoothed pelvis velocity in the body frame ----
    vel = np.gradient(root[:, [0, 2]], axis=0) * FPS  # (T, 2) m/s on x, z
    vel_s = _smooth(vel, 9)  # averages the lateral sway of the gait
    speed = np.linalg.norm(vel_s, axis=1)
    fwd_v = vel_s[:, 0] * np.sin(yaw_s) + vel_s[:, 1] * np.cos(yaw_s)
    left_v = vel_s[:, 0] * np.cos(yaw_s) - vel_s[:, 1] * np.sin(yaw_s)
    moving = (speed > LOCO_SPEED) & ~jump_mask
    direction = np.where(
        np.abs(fwd_v) >= np.abs(left_v), np.where(fwd_v > 0, 0, 1), np.where(left_v > 0, 2, 3)
    )  # 0 forward, 1 backward, 2 left, 3 right
    names = ("forward", "backward", "left", "right")
    # horizontal path of each foot joint; travelling means stepping (a squat moves the pelvis back
    # and forth by 0.3 m, but the feet stay put)
    foot_step = np.linalg.norm(np.diff(j[:, _FEET][:, :, [0, 2]], axis=0), axis=-1)  # (T-1, 4)
    foot_path = np.r_[np.zeros((1, 4)), np.cumsum(foot_step, axis=0)]  # (T, 4) cumulative metres
    # a foot is planted when one of its joints is near the floor and not sliding
    planted = (foot_y - floor < 0.06) & (np.r_[np.zeros((1, 4)), foot_step] * FPS < 0.4)  # (T, 4)
    both_planted = (planted[:, 0] | planted[:, 1]) & (planted[:, 2] | planted[:, 3])  # (T,)
    travel: list[Interval] = []
    for k, name in enumerate(names):
        mask = _close_gaps(moving & (direction == k), 4)
        for a, b in _runs(mask):
            # displacement along the episode's direction, over the episode widened by the
            # smoothing half-window (its speed ramps are partly below the threshold)
            lo, hi = max(a - 4, 0), min(b + 4, n)
            comp = (fwd_v if k < 2 else left_v)[lo:hi] * (1.0 if k in (0, 2) else -1.0)
            dist = float(np.clip(comp, 0.0, None).sum() / FPS)
            stepped = float((foot_path[hi - 1] - foot_path[lo]).max())
            if dist < LOCO_MIN_M or stepped < 0.2:
                continue
            cruise_speed = float(np.percentile(speed[a:b], 90))
            cruise = speed[a:b] >= 0.8 * cruise_speed  # leave out the start and stop ramps
            travel.append(
                Interval(name, a, b, {
                    "distance_m": dist,
                    "speed_mps": cruise_speed,
                    "flight_phases": len(_runs(airborne[a:b])),
                    "double_support": float(both_planted[a:b][cruise].mean()),
                })
            )
    for iv in travel:
        # the gait, not the speed, tells a run: walking always has both feet down for a while
        iv.props["run"] = bool(iv.kind == "forward" and iv.props["double_support"] < RUN_DOUBLE_SUPPORT)
    travel.sort(key=lambda iv: iv.start)

    # ---- turning: smoothed yaw rate ----
    rate = np.degrees(np.gradient(yaw_s)) * FPS  # (T,) deg/s
    turns: list[Interval] = []
    turning = _close_gaps(np.abs(rate) > TURN_RATE_DEG, 6)
    for a, b in _runs(turning):
        # split an episode where the yaw rate changes sign (a left turn then a right one)
        sign = np.sign(rate[a:b])
        cuts = [a] + [a + i + 1 for i in np.flatnonzero((sign[:-1] * sign[1:]) < 0)] + [b]
        for c0, c1 in zip(cuts[:-1], cuts[1:]):
            lo, hi = max(c0 - 2, 0), min(c1 + 2, n - 1)
            angle = math.degrees(float(yaw_s[hi] - yaw_s[lo]))
            if abs(angle) >= TURN_MIN_DEG:
                turns.append(Interval("turn", c0, c1, {"angle_deg": angle}))

    # ---- body axes per frame (for arm and leg measures) ----
    fw = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=-1)  # (T, 3) facing
    lf = np.stack([np.cos(yaw), np.zeros_like(yaw), -np.sin(yaw)], axis=-1)  # (T, 3) body's left

    # ---- waves: hand above the shoulder with the elbow bent, oscillating sideways ----
    waves: dict[str, list[Interval]] = {}
    raises: dict[str, list[Interval]] = {}
    for side, (w, sh) in {"left": (20, 16), "right": (21, 17)}.items():
        rel = j[:, w] - j[:, sh]  # (T, 3) wrist relative to its shoulder
        up = (rel[:, 1] > 0.05) & (np.linalg.norm(rel, axis=-1) < 0.45)
        lat = (rel * lf).sum(-1) * (1.0 if side == "left" else -1.0)
        episodes = []
        for a, b in _runs(_close_gaps(up, 6)):
            x = lat[a:b] - np.median(lat[a:b])
            # a wave is a swing of at least half the episode's largest (and 3 cm): the wobble a
            # hand makes as it settles after its last wave is not one more
            thr = max(WAVE_MIN_M, WAVE_REL * float(np.abs(x).max()))
            count = len(_excursions(x, thr, -thr))
            if count:
                episodes.append(Interval(f"wave_{side}", a, b, {"count": count}))
        waves[side] = episodes
        high = j[:, w, 1] > j[:, 15, 1] + 0.15  # wrist well above the head
        raises[side] = [Interval(f"raise_{side}", a, b) for a, b in _runs(_close_gaps(high, 4))]

    # ---- claps: the wrists come together ----
    gap = np.linalg.norm(j[:, 20] - j[:, 21], axis=-1)
    claps = [Interval("clap", f, f + 1) for f in _excursions(-gap, -0.12, -0.2)]

    # ---- kicks: standing on the other foot, the kicking ankle swings up in front of its hip ----
    kicks: dict[str, list[Interval]] = {}
    for side, (ank, hip, other) in {"left": (7, 1, (8, 11)), "right": (8, 2, (7, 10))}.items():
        ahead = ((j[:, ank] - j[:, hip]) * fw).sum(-1)
        other_down = j[:, list(other), 1].min(axis=1) - floor < 0.03
        kicking = other_down & (ahead > 0.25) & (speed < 0.4)
        ank_y = j[:, ank, 1] - floor
        peaks = _excursions(np.where(kicking, ank_y, 0.0), 0.2, 0.1)
        kicks[side] = [Interval(f"kick_{side}", p, p + 1, {"height_m": float(ank_y[p])}) for p in peaks]

    # ---- squats: the pelvis drops and holds low while the feet stay put ----
    # "still" allows 0.7 m/s of foot skating: generated motions slide their planted feet
    feet_still = np.r_[True, (np.linalg.norm(np.diff(j[:, _FEET], axis=0), axis=-1) < 0.035).all(axis=1)]
    drop = np.where(feet_still & ~jump_mask, stand_y - root[:, 1], 0.0)
    squats = [Interval("squat", f, f + 1) for f in _excursions(drop, 0.2, 0.08, min_len=6)]

    # ---- still: nothing moves ----
    joint_speed = np.linalg.norm(np.gradient(j, axis=0), axis=-1).max(axis=1) * FPS  # (T,) fastest joint
    still = (_smooth(joint_speed, 5) < 0.3) & (speed < LOCO_SPEED) & (np.abs(rate) < TURN_RATE_DEG)
    still_runs = _runs(still)
    still_s = max((b - a for a, b in still_runs), default=0) / FPS

    return MotionEvents(
        length=n, travel=travel, turns=turns, jumps=jumps, squats=squats, kicks=kicks, waves=waves,
        claps=claps, raises=raises, still_s=still_s,
    )


# --------------------------------------------------------------------------------------------
# What a caption states
# --------------------------------------------------------------------------------------------


@dataclass
class StatedSegment:
    """One action as the caption states it: the facts a motion must show for it."""

    index: int
    """Position in the caption (0 = first action)."""
    action: str
    """Action family (``walk``, ``turn``, ``wave``, ...)."""
    facts: dict
    """Stated facts, e.g. ``{"speed_band": "slow", "distance_band": "short"}``, ``{"side": "left",
    "count": 2}``, ``{"angle_band": 90, "direction": "left"}``; absent keys are not stated."""
    phrase: str | None = None
    """The caption's words for this action (None when no caption was given or it did not parse)."""


def _invariant_facts(seg: Mapping[str, Any]) -> dict:
    """Facts every caption of a labelled segment states, whatever paraphrase was drawn."""
    a, p = seg["action"], seg["params"]
    if a == "walk":
        # slow and fast walks are always worded so ("slowly", "strolls", "quickly", "hurries");
        # a normal pace has no pace word, so it is not checked
        return {"speed_band": p["speed_band"]} if p["speed_band"] in ("slow", "fast") else {}
    if a == "run":
        return {"speed_band": p["speed_band"]}  # "jogs" vs "runs"
    if a == "walk_backward":
        return {"speed_band": "slow"} if p["speed_band"] == "slow" else {}
    if a == "sidestep":
        return {"direction": p["direction"]}
    if a == "turn":
        out = {"angle_band": int(p["angle_nominal"])}
        if int(p["angle_nominal"]) != 180:  # "turns around" has no direction
            out["direction"] = p["direction"]
        return out
    if a == "spin":
        return {}  # "spins around": a full circle, direction not always stated
    if a == "jump":
        out = {"count": int(p["count"])}
        if p["forward"]:
            out["forward"] = True  # every forward-jump phrase says forward / ahead
        return out
    if a in ("squat", "clap"):
        return {"count": int(p["count"])}
    if a == "kick":
        return {"side": p["side"], "count": int(p["count"])}
    if a == "wave":
        return {"side": p["side"]}
    if a == "raise_arm":
        return {"side": p["side"]}  # left / right / both
    if a == "idle":
        return {}
    raise ValueError(f"unknown action family {a!r} in label segment")


def _phrase_facts(seg: Mapping[str, Any], phrase: str) -> dict:
    """Facts one paraphrase adds to :func:`_invariant_facts` (words only some paraphrases have)."""
    a, p = seg["action"], seg["params"]
    words = set(re.findall(r"[a-z]+", phrase))
    out: dict = {}
    if a in ("walk", "walk_backward", "run"):
        if "few steps" in phrase:
            out["distance_band"] = "short"
        elif "long way" in phrase:
            out["distance_band"] = "long"
    elif a == "turn" and words & {"left", "right"}:
        out["direction"] = p["direction"]
    elif a == "spin" and words & {"left", "right", "clockwise", "counterclockwise"}:
        out["direction"] = p["direction"]
    elif a == "jump":
        if words & {"high", "big", "small", "little", "hops", "hop"}:
            out["height_band"] = p["height_band"]
        if not p["forward"] and ("in place" in phrase or "straight up" in phrase or "up and down" in phrase):
            out["forward"] = False
    elif a == "kick" and words & {"high", "low"}:
        out["height_band"] = p["height_band"]
    elif a == "wave" and any(adv in phrase for adv in _COUNT_ADVERBS):
        out["count"] = int(p["count"])
    return out


def _split_caption(caption: str, segments: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The caption's phrase for each labelled segment, in order, or None when it does not parse.

    Synthetic captions are ``subject [first] phrase (connector phrase)*.``; the phrases are the
    faithful templates of :func:`motiongpt.data.synthetic.captions.segment_phrases`, so matching
    them back tells exactly which paraphrase (and so which facts) the caption used.
    """
    from motiongpt.data.synthetic.captions import CONNECTORS, SUBJECTS, segment_phrases

    text = " ".join(caption.strip().lower().split()).rstrip(".").strip()
    connectors = sorted(set(CONNECTORS) | {" and "}, key=len, reverse=True)
    for subject, possessive, _w in SUBJECTS:
        if not text.startswith(subject + " "):
            continue
        body = text[len(subject) + 1 :]
        if body.startswith("first "):
            body = body[len("first ") :]
        options = [sorted(set(segment_phrases(dict(seg), possessive)), key=len, reverse=True) for seg in segments]

        def match(i: int, rest: str) -> list[str] | None:
            for ph in options[i]:
                if not rest.startswith(ph):
                    continue
                tail = rest[len(ph) :]
                if i == len(options) - 1:
                    if not tail:
                        return [ph]
                    continue
                for conn in connectors:
                    if tail.startswith(conn):
                        sub = match(i + 1, tail[len(conn) :])
                        if sub is not None:
                            return [ph] + sub
            return None

        found = match(0, body) if options else None
        if found is not None:
            return found
    return None


def stated_segments(label: Mapping[str, Any], caption: str | None = None) -> tuple[list[StatedSegment], bool]:
    """What a caption of ``label``'s clip states, action by action.

    Without a caption (or when ``caption`` does not parse as one of the label's paraphrases) only
    the facts every paraphrase states are returned. Returns ``(segments, caption_parsed)``.

    Raises:
        ValueError: naming the label when it has no segments or an unknown action.
    """
    segs = label.get("segments") if isinstance(label, Mapping) else None
    if not segs:
        raise ValueError(f"label {label.get('id', '?') if isinstance(label, Mapping) else label!r} has no segments")
    phrases = _split_caption(caption, segs) if caption else None
    out = []
    for i, seg in enumerate(segs):
        facts = _invariant_facts(seg)
        phrase = None
        if phrases is not None:
            phrase = phrases[i]
            facts.update(_phrase_facts(seg, phrase))
        out.append(StatedSegment(index=i, action=seg["action"], facts=facts, phrase=phrase))
    return out, phrases is not None


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _travel_kind(action: str, facts: Mapping[str, Any]) -> str:
    if action == "walk":
        return "walk"
    if action == "run":
        return "run"
    if action == "walk_backward":
        return "backward"
    return str(facts["direction"])  # sidestep left / right


def _episode_kind(iv: Interval) -> str:
    if iv.kind == "forward":
        return "run" if iv.props["run"] else "walk"
    return iv.kind


def _span(items: Sequence[Interval]) -> tuple[int, int]:
    return min(i.start for i in items), max(i.end for i in items)


def check_motion(joints: np.ndarray, label: Mapping[str, Any], caption: str | None = None) -> dict:
    """Check one motion against what its caption (or, without one, every caption) of ``label`` states.

    Returns:
        ``{"ok": bool, "caption_parsed": bool, "checks": [{"name", "family", "segment", "expected",
        "measured", "ok"}, ...], "events": detected counts}``. ``name`` is ``<family>.<what>``
        (``walk.present``, ``turn.angle_band``, ``wave.count``, ...), ``order`` or ``extra``;
        ``segment`` is the caption position the check belongs to (None for ``order``/``extra``).
    """
    stated, parsed = stated_segments(label, caption)
    ev = detect_events(joints)
    checks: list[dict] = []
    spans: dict[int, tuple[int, int]] = {}  # caption position -> detected interval (for the order)

    def check(seg: StatedSegment | None, what: str, expected: Any, measured: Any, ok: bool) -> None:
        checks.append({
            "name": f"{seg.action}.{what}" if seg is not None else what,
            "family": seg.action if seg is not None else None,
            "segment": seg.index if seg is not None else None,
            "expected": expected,
            "measured": measured,
            "ok": bool(ok),
        })

    # ---- travel: the k-th stated segment of a kind takes the first later episode of that kind
    # that fits its bands (else the first later one, to report what it measured) ----
    used_travel: set[int] = set()
    last_by_kind: dict[str, int] = {}
    for seg in stated:
        if seg.action not in _LOCOMOTION:
            continue
        kind = _travel_kind(seg.action, seg.facts)
        cands = [k for k, iv in enumerate(ev.travel) if _episode_kind(iv) == kind and k not in used_travel
                 and k > last_by_kind.get(kind, -1)]

        def fits(iv: Interval, seg: StatedSegment = seg) -> bool:
            f = seg.facts
            if "speed_band" in f and band_of(iv.props["speed_mps"], SPEED_BANDS[seg.action]) != f["speed_band"]:
                return False
            if "distance_band" in f and band_of(iv.props["distance_m"], DISTANCE_BANDS) != f["distance_band"]:
                return False
            return True

        pick = next((k for k in cands if fits(ev.travel[k])), cands[0] if cands else None)
        check(seg, "present", kind, [_episode_kind(iv) for iv in ev.travel], pick is not None)
        if pick is None:
            for key in ("speed_band", "distance_band"):
                if key in seg.facts:
                    check(seg, key, seg.facts[key], None, False)
            continue
        used_travel.add(pick)
        last_by_kind[kind] = pick
        iv = ev.travel[pick]
        spans[seg.index] = (iv.start, iv.end)
        if "speed_band" in seg.facts:
            got = band_of(iv.props["speed_mps"], SPEED_BANDS[seg.action])
            check(seg, "speed_band", seg.facts["speed_band"], f"{got} ({iv.props['speed_mps']:.2f} m/s)", got == seg.facts["speed_band"])
        if "distance_band" in seg.facts:
            got = band_of(iv.props["distance_m"], DISTANCE_BANDS)
            check(seg, "distance_band", seg.facts["distance_band"], f"{got} ({iv.props['distance_m']:.2f} m)", got == seg.facts["distance_band"])

    # ---- turns and spins: stated in caption order, matched to turning episodes in time order ----
    used_turn: set[int] = set()
    last_turn = -1
    for seg in stated:
        if seg.action not in _TURNING:
            continue
        band = TURN_ANGLE_BANDS[seg.facts["angle_band"]] if seg.action == "turn" else SPIN_ANGLE_BAND
        sign = {"left": 1.0, "right": -1.0}.get(seg.facts.get("direction", ""), 0.0)

        def fits_turn(iv: Interval, band: tuple[float, float] = band, sign: float = sign) -> bool:
            ang = iv.props["angle_deg"]
            return band[0] <= abs(ang) < band[1] and (sign == 0.0 or ang * sign > 0)

        cands = [k for k in range(len(ev.turns)) if k > last_turn and k not in used_turn]
        pick = next((k for k in cands if fits_turn(ev.turns[k])), cands[0] if cands else None)
        expected = f"{band[0]:g}-{band[1]:g} deg"
        if pick is None:
            check(seg, "angle_band", expected, None, False)
            if sign:
                check(seg, "direction", seg.facts["direction"], None, False)
            continue
        used_turn.add(pick)
        last_turn = pick
        iv = ev.turns[pick]
        ang = iv.props["angle_deg"]
        spans[seg.index] = (iv.start, iv.end)
        check(seg, "angle_band", expected, round(abs(ang), 1), band[0] <= abs(ang) < band[1])
        if sign:
            got = "left" if ang > 0 else "right"
            check(seg, "direction", seg.facts["direction"], got, got == seg.facts["direction"])

    # ---- counted actions: totals over the clip (robust to how events cluster), and the k-th
    # stated segment takes the next `count` events in time order (for its bands and its order) ----
    def counted(family: str, events: list[Interval], side: str | None = None) -> None:
        segs = [s for s in stated if s.action == family and (side is None or s.facts.get("side") == side)]
        if not segs:
            return
        if all("count" in s.facts for s in segs):
            want = sum(int(s.facts["count"]) for s in segs)
            check(segs[0], "count", want, len(events), len(events) == want)
        pos = 0
        for s in segs:
            mine = events[pos : pos + int(s.facts.get("count", 1))]
            pos += len(mine)
            if mine:
                spans[s.index] = _span(mine)
            if family == "jump":
                if "forward" in s.facts:
                    fwd = [round(i.props["forward_m"], 2) for i in mine]
                    if s.facts["forward"]:
                        ok = bool(mine) and min(fwd) > JUMP_FORWARD_M
                    else:
                        ok = bool(mine) and max(abs(f) for f in fwd) < JUMP_FORWARD_M
                    check(s, "forward" if s.facts["forward"] else "in_place", "forward" if s.facts["forward"] else "in place", fwd, ok)
                if "height_band" in s.facts:
                    h = max((i.props["height_m"] for i in mine), default=None)
                    got = None if h is None else band_of(h, JUMP_HEIGHT_BANDS)
                    check(s, "height_band", s.facts["height_band"], None if h is None else f"{got} ({h:.2f} m)", got == s.facts["height_band"])
            if family == "kick" and "height_band" in s.facts:
                h = max((i.props["height_m"] for i in mine), default=None)
                got = None if h is None else band_of(h, KICK_HEIGHT_BANDS)
                check(s, "height_band", s.facts["height_band"], None if h is None else f"{got} ({h:.2f} m)", got == s.facts["height_band"])

    counted("jump", ev.jumps)
    counted("squat", ev.squats)
    counted("clap", ev.claps)
    for side in ("left", "right"):
        counted("kick", ev.kicks[side], side)

    # ---- waves: the hand always, the number of waves when every wave of that hand states it ----
    for side in ("left", "right"):
        segs = [s for s in stated if s.action == "wave" and s.facts["side"] == side]
        episodes = ev.waves[side]
        for k, s in enumerate(segs):
            check(s, "present", side, len(episodes), k < len(episodes))
            if k < len(episodes):
                spans[s.index] = (episodes[k].start, episodes[k].end)
        if segs and all("count" in s.facts for s in segs):
            want = sum(int(s.facts["count"]) for s in segs)
            got = sum(int(i.props["count"]) for i in episodes)
            check(segs[0], "count", want, got, got == want)

    # ---- raised arms ----
    raise_segs = [s for s in stated if s.action == "raise_arm"]
    next_raise = {"left": 0, "right": 0}
    for s in raise_segs:
        sides = ("left", "right") if s.facts["side"] == "both" else (s.facts["side"],)
        found = []
        for sd in sides:
            k = next_raise[sd]
            if k < len(ev.raises[sd]):
                found.append(ev.raises[sd][k])
                next_raise[sd] = k + 1
        ok = len(found) == len(sides)
        if ok and len(found) == 2:  # both arms: the two episodes overlap in time
            ok = found[0].start < found[1].end and found[1].start < found[0].end
        check(s, "present", s.facts["side"], {sd: len(ev.raises[sd]) for sd in ("left", "right")}, ok)
        if found:
            spans[s.index] = _span(found)

    # ---- standing still ----
    for s in stated:
        if s.action == "idle":
            check(s, "still", f">= {STILL_S} s", round(ev.still_s, 2), ev.still_s >= STILL_S)

    # ---- order: detected actions, in caption order, have increasing centres ----
    if sum(1 for s in stated if s.action != "idle") >= 2 and len(spans) >= 2:
        order = sorted(spans)
        centres = [0.5 * (spans[i][0] + spans[i][1] - 1) for i in order]
        check(None, "order", [stated[i].action for i in order],
              [stated[i].action for i in sorted(order, key=lambda i: centres[order.index(i)])],
              all(a < b for a, b in zip(centres[:-1], centres[1:])))

    # ---- unrequested actions ----
    fams = {s.action for s in stated}
    sides_waved = {s.facts["side"] for s in stated if s.action == "wave"}
    sides_kicked = {s.facts["side"] for s in stated if s.action == "kick"}
    sides_raised = set()
    for s in raise_segs:
        sides_raised.update(("left", "right") if s.facts["side"] == "both" else (s.facts["side"],))
    extra: list[str] = []
    forward_jump = any(s.action == "jump" and s.facts.get("forward") for s in stated)
    for k, iv in enumerate(ev.travel):
        if k in used_travel or iv.props["distance_m"] < EXTRA_TRAVEL_M:
            continue
        if forward_jump and iv.kind == "forward" and not iv.props["run"]:
            continue  # the run-up / landing of a forward jump
        extra.append(f"travel {_episode_kind(iv)} {iv.props['distance_m']:.2f} m")
    for k, iv in enumerate(ev.turns):
        if k not in used_turn and abs(iv.props["angle_deg"]) >= EXTRA_TURN_DEG:
            extra.append(f"turn {iv.props['angle_deg']:.0f} deg")
    if ev.jumps and "jump" not in fams:
        extra.append(f"{len(ev.jumps)} jump(s)")
    if ev.squats and "squat" not in fams:
        extra.append(f"{len(ev.squats)} squat(s)")
    if ev.claps and "clap" not in fams:
        extra.append(f"{len(ev.claps)} clap(s)")
    for side in ("left", "right"):
        if ev.waves[side] and side not in sides_waved:
            extra.append(f"{side} wave")
        if ev.kicks[side] and side not in sides_kicked:
            extra.append(f"{side} kick")
        # a hand raised high while it waves as stated is that wave's hand, not a second action
        raised = [iv for iv in ev.raises[side] if not (side in sides_waved and any(
            iv.start < w.end and w.start < iv.end for w in ev.waves[side]))]
        if raised and side not in sides_raised:
            extra.append(f"{side} arm raised")
    check(None, "extra", [], extra, not extra)

    return {"ok": all(c["ok"] for c in checks), "caption_parsed": parsed, "checks": checks, "events": ev.counts()}


def semantic_accuracy(
    joints_list: Sequence[np.ndarray],
    labels: Sequence[Mapping[str, Any]],
    captions: Sequence[str | None] | None = None,
    *,
    return_details: bool = False,
) -> dict:
    """Semantic accuracy of motions against the labels (and captions) they were generated for.

    Args:
        joints_list: one ``(T_i, 22, 3)`` joint array per motion (metres, y up, 20 fps).
        labels: the ``labels/<id>.json`` dict of the clip whose caption each motion was made from.
        captions: the caption each motion was generated from (checks what that paraphrase states);
            None: check only what every caption of the label states.
        return_details: also return every motion's checks under ``"details"``.

    Returns:
        ``{"accuracy": fraction of motions passing all their checks, "n": number of motions,
        "per_check": {name: {"accuracy", "n"}}, "per_family": {family: {"accuracy", "n"}} (a
        stated action passes when all its checks pass), "order_accuracy", "extra_free_rate",
        "captions_parsed": how many captions were matched to their label's paraphrases}``.

    Raises:
        ValueError: when the lengths differ, naming the motion index of a bad joints array.
    """
    if len(joints_list) != len(labels):
        raise ValueError(f"semantic_accuracy: {len(joints_list)} motions but {len(labels)} labels")
    if captions is not None and len(captions) != len(labels):
        raise ValueError(f"semantic_accuracy: {len(captions)} captions but {len(labels)} labels")
    if not labels:
        raise ValueError("semantic_accuracy: no motions to score")
    per_check: dict[str, list[bool]] = {}
    per_family: dict[str, list[bool]] = {}
    details = []
    n_ok = n_parsed = 0
    for i, (joints, label) in enumerate(zip(joints_list, labels)):
        caption = captions[i] if captions is not None else None
        try:
            res = check_motion(joints, label, caption)
        except ValueError as e:
            raise ValueError(f"motion {i} (label {label.get('id', '?')}): {e}") from e
        n_ok += res["ok"]
        n_parsed += res["caption_parsed"]
        seg_ok: dict[int, bool] = {}
        for c in res["checks"]:
            per_check.setdefault(c["name"], []).append(c["ok"])
            if c["segment"] is not None:
                seg_ok[c["segment"]] = seg_ok.get(c["segment"], True) and c["ok"]
        for k, seg in enumerate(label["segments"]):
            if k in seg_ok:
                per_family.setdefault(seg["action"], []).append(seg_ok[k])
        if return_details:
            details.append({"id": label.get("id"), **res})

    def rate(v: list[bool]) -> dict:
        return {"accuracy": round(float(np.mean(v)), 4), "n": len(v)}

    out = {
        "accuracy": n_ok / len(labels),
        "n": len(labels),
        "per_check": {k: rate(v) for k, v in sorted(per_check.items())},
        "per_family": {k: rate(v) for k, v in sorted(per_family.items())},
        "order_accuracy": float(np.mean(per_check["order"])) if "order" in per_check else None,
        "extra_free_rate": float(np.mean(per_check["extra"])),
        "captions_parsed": n_parsed if captions is not None else None,
    }
    if return_details:
        out["details"] = details
    return out
