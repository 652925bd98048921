"""Synthetic motions: physical plausibility and agreement between labels and joints.

Everything is measured on the stored joints (``features_to_joints`` of the saved features), with
helpers written here from first principles rather than from the generator's internal events.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from motiongpt.data.synthetic import build_synthetic_dataset, render_plan
from motiongpt.data.synthetic.labels import (
    JUMP_HEIGHT_BANDS,
    KICK_HEIGHT_BANDS,
    SPEED_BANDS,
    TURN_ANGLE_BANDS,
    facing_yaw,
)
from motiongpt.motion.skeleton import PARENTS, TARGET_BONE_LENGTHS

FEET = (7, 10, 8, 11)
CONTACT_SQ = 0.002  # the HumanML3D foot-contact rule: squared displacement per frame (m^2)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synm") / "c"
    build_synthetic_dataset(out, 40, seed=11, workers=1)
    return out


@pytest.fixture(scope="module")
def clips(corpus_dir: Path) -> list[np.ndarray]:
    ids = (corpus_dir / "all.txt").read_text().split()
    return [np.load(corpus_dir / "new_joints" / f"{i}.npy").astype(np.float64) for i in ids]


@cache
def _plan(key: tuple) -> tuple[np.ndarray, dict]:
    """Render a plan given as a hashable tuple ((family, ((k, v), ...)), ...)."""
    plan = [(fam, dict(params)) for fam, params in key]
    _, joints, label = render_plan(plan, seed=5)
    return joints.astype(np.float64), label


def plan(*items: tuple[str, dict]) -> tuple[np.ndarray, dict]:
    return _plan(tuple((fam, tuple(sorted(p.items()))) for fam, p in items))


# ---------------------------------------------------------------------------- measurement helpers


def slide_steps(j: np.ndarray) -> np.ndarray:
    """Horizontal per-frame displacement of foot joints on frames the contact rule calls planted
    (height < 3 cm at both ends of the step and squared displacement < 0.002)."""
    p = j[:, FEET]  # (T, 4, 3)
    d = np.diff(p, axis=0)
    planted = (p[:-1, :, 1] < 0.03) & (p[1:, :, 1] < 0.03) & ((d**2).sum(-1) < CONTACT_SQ)
    return np.linalg.norm(d[..., [0, 2]], axis=-1)[planted]


def body_frame(j: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit forward and left horizontal vectors of the body at ``frame``."""
    yaw = facing_yaw(j)[frame]
    return np.array([math.sin(yaw), 0.0, math.cos(yaw)]), np.array([math.cos(yaw), 0.0, -math.sin(yaw)])


def count_peaks(x: np.ndarray, high: float, low: float) -> int:
    """Number of excursions of ``x`` above ``high`` (re-armed only after it falls below ``low``)."""
    count, armed = 0, True
    for v in x:
        if armed and v > high:
            count, armed = count + 1, False
        elif not armed and v < low:
            armed = True
    return count


def seg(label: dict, action: str) -> dict:
    return next(s for s in label["segments"] if s["action"] == action)


# ---------------------------------------------------------------------------- physical plausibility


def test_bone_lengths_exact(clips: list[np.ndarray]) -> None:
    for j in clips:
        lengths = np.linalg.norm(j[:, 1:] - j[:, PARENTS[1:]], axis=-1)
        np.testing.assert_allclose(lengths, np.broadcast_to(TARGET_BONE_LENGTHS[1:], lengths.shape), atol=2e-5)


def test_lengths_in_range(clips: list[np.ndarray]) -> None:
    assert all(40 <= j.shape[0] <= 196 for j in clips)


def test_feet_on_floor(clips: list[np.ndarray]) -> None:
    for j in clips:
        assert abs(j[:, FEET, 1].min()) < 0.02  # someone stands on the floor
        assert j[..., 1].min() > -1e-3  # nothing goes through it
        # feet that hold still are resting on the floor, not floating
        still = (np.linalg.norm(np.diff(j[:, FEET], axis=0), axis=-1) < 0.002).all(axis=1)
        assert j[1:][still][:, FEET, 1].min(axis=1).max() < 0.01


def test_no_foot_sliding(clips: list[np.ndarray]) -> None:
    """A planted foot is fixed by construction; the only motion of a foot joint near the floor is
    the heel/ball roll at touch-down and lift-off (millimetres). Motion-capture contact frames
    drift ~1 cm per frame, so 1 cm/frame max and 2 mm mean flag any real sliding."""
    steps = np.concatenate([slide_steps(j) for j in clips])
    assert steps.size > 1000  # many contact frames are checked
    assert steps.max() < 0.01
    assert steps.mean() < 0.002


def test_no_sliding_detector_fires_on_sliding() -> None:
    """The sliding measure itself must catch a foot dragged along the floor."""
    j, _ = plan(("idle", {"duration_s": 2.0}))
    dragged = j.copy()
    dragged[:, 10, 0] += np.linspace(0.0, 0.6, len(j))  # 1.5 cm per frame along the floor
    assert slide_steps(dragged).max() > 0.01 > slide_steps(j).max()


def test_no_self_intersection(clips: list[np.ndarray]) -> None:
    for j in clips:
        ankle_gap = np.linalg.norm(j[:, 7, [0, 2]] - j[:, 8, [0, 2]], axis=-1)
        assert ankle_gap.min() > 0.08  # feet never pass through each other
        axis = j[:, 12] - j[:, 0]
        for w in (20, 21):
            t = np.clip(((j[:, w] - j[:, 0]) * axis).sum(-1) / (axis * axis).sum(-1), 0.0, 1.0)
            dist = np.linalg.norm(j[:, w] - (j[:, 0] + t[:, None] * axis), axis=-1)
            assert dist.min() > 0.1  # wrists stay outside the torso


def test_knees_bend_forward(clips: list[np.ndarray]) -> None:
    for j in clips:
        across = j[:, 1] - j[:, 2]
        fwd = np.stack([-across[:, 2], np.zeros(len(j)), across[:, 0]], -1)
        fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
        for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
            assert (((j[:, knee] - (j[:, hip] + j[:, ankle]) / 2) * fwd).sum(-1)).min() > -0.02


def test_motion_is_continuous(clips: list[np.ndarray]) -> None:
    for j in clips:
        step = np.linalg.norm(np.diff(j, axis=0), axis=-1)
        assert step.max() < 0.5  # no joint faster than 10 m/s (a runner's swing foot peaks ~8-9 m/s)
        assert np.linalg.norm(np.diff(j[:, 0, [0, 2]], axis=0), axis=-1).max() < 0.22  # pelvis < 4.4 m/s
        assert np.abs(np.diff(facing_yaw(j))).max() < math.radians(25)


# ---------------------------------------------------------------------------- labels agree with motion


@pytest.mark.parametrize(
    "family,params,forward,left",
    [
        ("walk", {"speed_band": "normal", "speed_mps": 1.2, "distance_m": 3.0}, 1, 0),
        ("run", {"speed_band": "run", "speed_mps": 3.0, "distance_m": 5.0}, 1, 0),
        ("walk_backward", {"speed_band": "normal", "speed_mps": 0.8, "distance_m": 1.5}, -1, 0),
        ("sidestep", {"direction": "left", "speed_mps": 0.3, "distance_m": 1.0}, 0, 1),
        ("sidestep", {"direction": "right", "speed_mps": 0.3, "distance_m": 1.0}, 0, -1),
    ],
)
def test_travel_direction_and_distance(family: str, params: dict, forward: int, left: int) -> None:
    j, label = plan(("idle", {}), (family, params))
    s = seg(label, family)
    d = s["params"]["distance_m"]
    fwd, lft = body_frame(j, s["start"])
    disp = j[s["end"] - 1, 0] - j[s["start"], 0]
    assert disp @ fwd == pytest.approx(forward * d, abs=0.2 * d)
    assert disp @ lft == pytest.approx(left * d, abs=0.2 * d)
    expected = {(1, 0): "forward", (-1, 0): "backward", (0, 1): "left", (0, -1): "right"}[(forward, left)]
    assert label["summary"]["travel"]["direction"] == expected


@pytest.mark.parametrize("band,speed", [("slow", 0.7), ("normal", 1.2), ("fast", 1.7)])
def test_walk_speed_band(band: str, speed: float) -> None:
    j, label = plan(("walk", {"speed_band": band, "speed_mps": speed, "distance_m": 4.0}))
    s = seg(label, "walk")
    a, b = s["start"], s["end"]
    mid = slice(a + (b - a) // 3, b - (b - a) // 3)
    v = np.median(np.linalg.norm(np.diff(j[mid, 0, [0, 2]], axis=0), axis=-1)) * 20
    lo, hi = SPEED_BANDS["walk"][band]
    assert lo <= v < hi and v == pytest.approx(speed, rel=0.15)


def test_running_has_flight_and_walking_does_not() -> None:
    run, _ = plan(("run", {"speed_band": "run", "speed_mps": 3.0, "distance_m": 6.0}))
    walk, _ = plan(("walk", {"speed_band": "fast", "speed_mps": 1.7, "distance_m": 4.0}))
    assert (run[:, FEET, 1].min(axis=1) > 0.02).sum() >= 5
    assert (walk[:, FEET, 1].min(axis=1) > 0.02).sum() == 0


@pytest.mark.parametrize("direction", ["left", "right"])
@pytest.mark.parametrize("nominal", [45, 90, 180])
def test_turn_direction_and_angle(direction: str, nominal: int) -> None:
    j, label = plan(("turn", {"direction": direction, "angle_nominal": nominal, "angle_deg": float(nominal)}))
    s = seg(label, "turn")
    # Left = counter-clockwise seen from above: the facing rotates from +z toward +x (the left).
    f0, _ = body_frame(j, s["start"])
    f1, _ = body_frame(j, s["end"] - 1)
    cross_y = f0[2] * f1[0] - f0[0] * f1[2]  # y of f0 x f1: > 0 for a counter-clockwise rotation
    if nominal < 180:
        assert (cross_y > 0) == (direction == "left")
    angle = math.degrees(facing_yaw(j)[s["end"] - 1] - facing_yaw(j)[s["start"]])
    assert (angle > 0) == (direction == "left")
    lo, hi = TURN_ANGLE_BANDS[nominal]
    assert lo <= abs(angle) < hi
    assert abs(angle) == pytest.approx(nominal, abs=10)
    assert label["summary"]["turn"]["direction"] == direction
    assert np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]) < 0.15  # turning in place


def test_spin_full_circle() -> None:
    j, label = plan(("spin", {"direction": "right"}))
    s = seg(label, "spin")
    angle = math.degrees(facing_yaw(j)[s["end"] - 1] - facing_yaw(j)[s["start"]])
    assert angle == pytest.approx(-360, abs=25)


@pytest.mark.parametrize("band,apex", [("low", 0.1), ("high", 0.32)])
def test_jump_lifts_body_off_floor(band: str, apex: float) -> None:
    j, label = plan(("jump", {"forward": False, "count": 2, "height_band": band, "apex_m": apex}))
    s = seg(label, "jump")
    a, b = s["start"], s["end"]
    rise = j[a:b, 0, 1].max() - j[a, 0, 1]
    lo, hi = JUMP_HEIGHT_BANDS[band]
    assert lo <= rise < hi and s["params"]["height_band"] == band
    assert s["params"]["height_m"] == pytest.approx(rise, abs=1e-3)
    airborne = j[a:b, FEET, 1].min(axis=1) > 0.03
    flights = int(np.sum(np.diff(airborne.astype(int)) == 1))
    assert flights == 2  # two separate flight phases


def test_forward_jump_travels() -> None:
    j, label = plan(("jump", {"forward": True, "count": 1, "height_band": "low", "apex_m": 0.12, "distance_m": 0.7}))
    s = seg(label, "jump")
    fwd, _ = body_frame(j, s["start"])
    assert (j[s["end"] - 1, 0] - j[s["start"], 0]) @ fwd == pytest.approx(0.7, abs=0.14)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("count", [1, 3])
def test_wave_hand_and_count(side: str, count: int) -> None:
    j, label = plan(("wave", {"side": side, "count": count}))
    s = seg(label, "wave")
    a, b = s["start"], s["end"]
    w, o = (20, 21) if side == "left" else (21, 20)
    sh = 16 if side == "left" else 17
    moved = lambda k: np.ptp(j[a:b, k] - j[a:b, 0], axis=0).max()  # noqa: E731
    assert moved(w) > 5 * moved(o)
    assert (j[a:b, w, 1] > j[a:b, sh, 1]).any()  # the hand is raised
    _, lft = body_frame(j, a)
    raised = j[a:b, w, 1] > j[a:b, sh, 1]
    lateral = ((j[a:b, w] - j[a:b, sh]) @ lft) * (1 if side == "left" else -1)
    lat = lateral[raised]
    assert count_peaks(lat - np.median(lat), 0.03, -0.03) == count


@pytest.mark.parametrize("count", [2, 4])
def test_clap_count(count: int) -> None:
    j, label = plan(("clap", {"count": count}))
    s = seg(label, "clap")
    gap = np.linalg.norm(j[s["start"] : s["end"], 20] - j[s["start"] : s["end"], 21], axis=-1)
    assert count_peaks(-gap, -0.12, -0.2) == count  # hands meet (< 12 cm), then part (> 20 cm)


@pytest.mark.parametrize("side", ["left", "right"])
def test_kick_leg_and_height(side: str) -> None:
    j, label = plan(("kick", {"side": side, "count": 2, "height_band": "high", "height_m": 0.7}))
    s = seg(label, "kick")
    a, b = s["start"], s["end"]
    k, o = (7, 8) if side == "left" else (8, 7)
    assert j[a:b, k, 1].max() >= KICK_HEIGHT_BANDS["high"][0]
    assert j[a:b, o, 1].max() < 0.12  # the stance foot stays down
    assert count_peaks(j[a:b, k, 1], 0.5, 0.15) == 2


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_raise_arm(side: str) -> None:
    j, label = plan(("raise_arm", {"side": side, "plane": "sideways"}))
    s = seg(label, "raise_arm")
    a, b = s["start"], s["end"]
    top = j[a:b, 15, 1]
    up = {w: bool((j[a:b, w, 1] > top).any()) for w in (20, 21)}
    assert up == {20: side in ("left", "both"), 21: side in ("right", "both")}
    assert label["summary"]["arms_raised"] == {"left": side in ("left", "both"), "right": side in ("right", "both")}


@pytest.mark.parametrize("count", [1, 3])
def test_squat_count(count: int) -> None:
    j, label = plan(("squat", {"count": count, "depth_m": 0.35}))
    s = seg(label, "squat")
    y = j[s["start"] : s["end"], 0, 1]
    assert count_peaks(y[0] - y, 0.2, 0.05) == count
    assert j[s["start"] : s["end"], FEET, 1].max() < 0.12  # feet stay planted


def _peak_frames(x: np.ndarray, high: float, low: float) -> list[int]:
    """Frame of the maximum of each excursion of ``x`` above ``high`` (re-armed below ``low``)."""
    out: list[int] = []
    start = None
    for t, v in enumerate(x):
        if start is None and v > high:
            start = t
        elif start is not None and v < low:
            out.append(start + int(np.argmax(x[start:t])))
            start = None
    return out


def test_counted_actions_keep_a_steady_beat() -> None:
    """Claps and wave cycles repeat at their fixed period whatever the clip's style (seed), measured
    on the joints: a clap every 12 frames (3 motion codes), a wave cycle every 16 (4 codes)."""
    from motiongpt.data.synthetic.actions import BEAT_JITTER, CLAP_PERIOD_S, WAVE_PERIOD_S

    clap_gaps, wave_gaps = [], []
    for seed in range(6):  # six styles, tempos 0.85-1.2 apart
        _, j, label = render_plan([("clap", {"count": 4})], seed=seed)
        s = seg(label, "clap")
        gap = np.linalg.norm(j[s["start"]: s["end"], 20] - j[s["start"]: s["end"], 21], axis=-1)
        contacts = _peak_frames(-gap, -0.12, -0.2)
        assert len(contacts) == 4, f"seed {seed}: {len(contacts)} claps"
        clap_gaps += list(np.diff(contacts))
        _, j, label = render_plan([("wave", {"side": "right", "count": 3})], seed=seed)
        s = seg(label, "wave")
        a, b = s["start"], s["end"]
        _, lft = body_frame(j, a)
        lateral = -((j[a:b, 21] - j[a:b, 17]) @ lft)
        raised = j[a:b, 21, 1] > j[a:b, 17, 1]
        lat = np.where(raised, lateral - np.median(lateral[raised]), 0.0)
        swings = _peak_frames(lat, 0.03, -0.03)
        assert len(swings) == 3, f"seed {seed}: {len(swings)} wave cycles"
        wave_gaps += list(np.diff(swings))
    tol = 1 + BEAT_JITTER * 16  # a frame of rounding plus the jitter
    assert np.abs(np.array(clap_gaps) - CLAP_PERIOD_S * 20).max() <= tol, clap_gaps
    assert np.abs(np.array(wave_gaps) - WAVE_PERIOD_S * 20).max() <= tol, wave_gaps


def test_composition_order_and_continuity() -> None:
    j, label = plan(
        ("walk", {"speed_band": "normal", "speed_mps": 1.2, "distance_m": 2.0}),
        ("turn", {"direction": "left", "angle_nominal": 90, "angle_deg": 90.0}),
        ("wave", {"side": "right", "count": 2}),
    )
    assert [s["action"] for s in label["segments"]] == ["walk", "turn", "wave"]
    ends = [s["end"] for s in label["segments"]]
    starts = [s["start"] for s in label["segments"]]
    assert starts[1:] == ends[:-1]  # back to back
    yaw = facing_yaw(j)
    assert math.degrees(yaw[-1] - yaw[0]) == pytest.approx(90, abs=10)
    assert label["summary"]["travel"]["direction"] == "forward"
    assert label["summary"]["waves"] == {"left": 0, "right": 2}


# ---------------------------------------------------------------------------- solver and verifier


def test_solver_reaches_planted_foot_targets() -> None:
    from motiongpt.data.synthetic.actions import build_segment
    from motiongpt.data.synthetic.body import solve_body
    from motiongpt.data.synthetic.compose import Style, Timeline, render_targets

    tl = Timeline(Style(), psi0=0.7)
    rng = np.random.default_rng(0)
    build_segment(tl, "walk", {"direction": "forward", "speed_band": "normal", "speed_mps": 1.2, "distance_m": 2.5}, rng)
    build_segment(tl, "squat", {"count": 1, "depth_m": 0.4}, rng)
    rc = render_targets(tl)
    sol = solve_body(rc.targets)
    np.testing.assert_allclose(sol.joints[:, [7, 8]], rc.targets.ankle, atol=1e-9)
    assert sol.local_quats.shape == (len(sol.joints), 22, 4)


def test_verify_clip_accepts_corpus_and_rejects_mismatches(corpus_dir: Path) -> None:
    import json

    from motiongpt.data.synthetic import verify_clip
    from motiongpt.motion.features import mirror_joints

    for cid in (corpus_dir / "all.txt").read_text().split():
        lab = json.loads((corpus_dir / "labels" / f"{cid}.json").read_text())
        res = verify_clip(np.load(corpus_dir / "new_joints" / f"{cid}.npy"), lab)
        assert res["ok"], (cid, {k: c for k, c in res["checks"].items() if not c["ok"]})

    j, label = plan(("wave", {"side": "left", "count": 2}), ("walk", {"speed_band": "normal", "speed_mps": 1.2, "distance_m": 2.0}))
    assert verify_clip(j, label)["ok"]
    mirrored = verify_clip(mirror_joints(j), label)
    assert not mirrored["ok"] and not mirrored["checks"]["waves_left"]["ok"]
    idle, _ = plan(("idle", {"duration_s": 3.0}))
    assert not verify_clip(idle, label)["checks"]["travel_direction"]["ok"]
    turn_j, turn_label = plan(("turn", {"direction": "left", "angle_nominal": 90, "angle_deg": 90.0}))
    assert verify_clip(turn_j, turn_label)["ok"]
    assert not verify_clip(mirror_joints(turn_j), turn_label)["checks"]["turn_deg"]["ok"]
