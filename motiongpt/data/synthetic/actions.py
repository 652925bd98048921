"""Procedural action families: parameter sampling and per-segment animation builders.

Every family has a ``sample_<family>(rng, style, budget_s)`` that draws the caption-relevant
parameters (side, speed band, count, angle, ...) and a ``build_<family>(tl, params, rng)`` that
appends the segment to a :class:`~motiongpt.data.synthetic.compose.Timeline`: the base
trajectory, the foot plan (planted stances and swings) and the channels (arms, torso, pelvis).

Parameter names and the bands they are drawn from are module-level constants in
:mod:`motiongpt.data.synthetic.labels`, so captions, labels and a later checker agree.

**Counted actions keep a steady beat.** Waves, claps, squats, kicks and jumps repeat at a fixed
rate (within a few per cent, whatever the clip's style tempo), so that "three claps" lasts about
as long wherever it appears and a count can be read from how long the repetitions last at the
motion tokenizer's resolution (one code per 4 frames). Hand cycles are slow enough to be
resolved there: a wave cycle lasts :data:`WAVE_PERIOD_S` (4 codes), a clap
:data:`CLAP_PERIOD_S` (3 codes). Why: with free tempos (a wave cycle of 0.45-0.65 s, 2-3 codes,
a clap of 0.36-0.5 s) the tiny VQ-VAE lost swings and claps (its reconstructions failed wave and
clap counts 32 times in 600 checks) and the tiny LLM, whose clause lengths match the data's
closely, still got counts wrong by one 116 times in 600 motions: the same number of repetitions
could last 40 % longer or shorter. Everything else (raising and lowering the hands, walking
cadence, turns) keeps the style's tempo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from motiongpt.data.synthetic.body import HIP_OFFSET, LEG_REACH, SHOULDER_IN_CHEST
from motiongpt.data.synthetic.compose import (
    FPS,
    Stance,
    Style,
    Swing,
    Timeline,
    foot_pose,
    minjerk,
    smoothstep,
)
from motiongpt.data.synthetic.labels import (
    CLAP_COUNTS,
    JUMP_HEIGHT_SAMPLING,
    KICK_HEIGHT_SAMPLING,
    SPEED_SAMPLING,
    TURN_ANGLES,
)

__all__ = ["FAMILIES", "LOCOMOTION", "Family", "FAMILY_SPECS", "sample_params", "build_segment", "build_pad"]

G = 9.81

WAVE_PERIOD_S = 0.8
"""Duration of one side-to-side wave cycle (16 frames, 4 motion codes), within :data:`BEAT_JITTER`."""
CLAP_PERIOD_S = 0.6
"""Duration of one clap (open -> contact -> open; 12 frames, 3 motion codes), within :data:`BEAT_JITTER`."""
BEAT_JITTER = 0.04
"""Relative spread of the duration of one repetition of a counted action (uniform, +-)."""


def _beat(rng: np.random.Generator, seconds: float) -> float:
    """A steady-beat duration: ``seconds`` within +-:data:`BEAT_JITTER` (no style tempo)."""
    return seconds * _u(rng, 1.0 - BEAT_JITTER, 1.0 + BEAT_JITTER)


# ============================================================================ small helpers


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _choice(rng: np.random.Generator, items: tuple, p: tuple[float, ...] | None = None):
    idx = int(rng.choice(len(items), p=None if p is None else np.asarray(p) / np.sum(p)))
    return items[idx]


def keyframes(t: np.ndarray, times: list[float], values: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Minimum-jerk interpolation through keyframes (zero velocity at every key; held outside).

    Args:
        t: ``(n,)`` query times.
        times: increasing key times ``(K,)``.
        values: ``(K, ...)`` key values.

    Returns:
        ``(n, ...)`` values.
    """
    times = np.asarray(times, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    i = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[i + 1] - times[i], 1e-9)
    e = minjerk((t - times[i]) / span)
    e = e.reshape(e.shape + (1,) * (vals.ndim - 1))
    return vals[i] + (vals[i + 1] - vals[i]) * e


def _polar_arm(theta: np.ndarray, r: float | np.ndarray, plane: np.ndarray, out: float) -> np.ndarray:
    """Left-arm wrist target at angle ``theta`` from hanging, in the plane spanned by down and ``plane``.

    ``plane`` is a unit horizontal direction in the chest frame ((0,0,1) forward, (1,0,0) sideways).
    Returns ``(n, 3)`` relative to the left shoulder; mirror x for the right arm.
    """
    theta = np.asarray(theta, dtype=np.float64)
    r = np.broadcast_to(np.asarray(r, dtype=np.float64), theta.shape)
    w = r[:, None] * (np.sin(theta)[:, None] * plane[None, :] - np.cos(theta)[:, None] * np.array([0.0, 1.0, 0.0]))
    w[:, 0] += out
    return w


_MIRROR = np.array([-1.0, 1.0, 1.0])


def _both(left: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    """Stack left/right arm arrays ``(n, 3)`` into ``(n, 2, 3)`` (right = mirrored left by default)."""
    if right is None:
        right = left * _MIRROR
    return np.stack([left, right], axis=1)


def _frames(seconds: float) -> int:
    return max(1, int(round(seconds * FPS)))


# ============================================================================ locomotion


@dataclass
class Gait:
    """Stepping pattern of a locomotion segment (times in frames)."""

    period: float
    """Full gait cycle (two steps), frames."""
    duty: float
    """Stance fraction of a foot's cycle (> 0.5 walking: double support; < 0.5 running: flight)."""
    phi_in: float
    """Foot pitch at touch-down (rad)."""
    frac_in: float
    """Fraction of the stance spent rolling in."""
    phi_out: float
    """Foot pitch at lift-off (rad)."""
    frac_out: float
    """Fraction of the stance spent rolling out."""
    clearance: float
    """Swing arc height (m)."""
    peak: float
    """Where in the swing the arc peaks (0..1)."""
    width: float
    """Stance half-width (m)."""
    ramp: float
    """Frames to accelerate from rest to cruise speed (and to stop)."""
    hold: float = 0.12
    """Swing fraction at each end without horizontal foot motion (see Swing.hold)."""
    profile: str = "minjerk"
    """Horizontal swing ease (see Swing.profile)."""


def _progress(tau: np.ndarray, tm: float, ta: float) -> np.ndarray:
    """Fraction of the distance covered at ``tau`` for a trapezoidal speed with smooth ramps."""
    ta = min(ta, tm / 2.0)
    tau = np.clip(tau, 0.0, tm)

    def f(x: np.ndarray) -> np.ndarray:  # integral of smoothstep from 0 to x
        return x**3 - 0.5 * x**4

    total = tm - ta
    d = np.where(
        tau < ta,
        ta * f(tau / max(ta, 1e-9)),
        np.where(tau <= tm - ta, ta / 2.0 + (tau - ta), total - ta * f((tm - tau) / max(ta, 1e-9))),
    )
    return d / total


def locomote(
    tl: Timeline,
    gait: Gait,
    *,
    disp: tuple[float, float] = (0.0, 0.0),
    speed: float | None = None,
    dpsi: float = 0.0,
    move_frames: float | None = None,
    first_side: int = 0,
    settle: float = 3.0,
) -> dict:
    """Append a stepping segment: move the base by ``disp`` (lateral +left, forward; metres, in the
    heading frame at the start) at cruise ``speed`` (m/s) and/or turn by ``dpsi`` over
    ``move_frames``. Feet step at mid-stance neutral positions, so they never slide and end in
    the standing stance. Returns events (number of steps, move duration, start/end frames)."""
    f0 = tl.t
    x0, z0, psi0 = tl.pose
    dist = math.hypot(*disp)
    if dist > 1e-6:
        tm = dist / (speed / FPS) + gait.ramp
    else:
        tm = float(move_frames)
    ta = gait.ramp
    c0, s0 = math.cos(psi0), math.sin(psi0)
    dx = c0 * disp[0] + s0 * disp[1]
    dz = -s0 * disp[0] + c0 * disp[1]

    def path(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tau = np.asarray(tau, dtype=np.float64)
        p = _progress(tau, tm, ta) if dist > 1e-6 else np.zeros_like(tau)
        return x0 + dx * p, z0 + dz * p, psi0 + dpsi * minjerk(tau / tm)

    tc = gait.period
    tsw = (1.0 - gait.duty) * tc
    tst = gait.duty * tc
    done = [False, False]
    side = first_side
    k = 0
    n_steps = 0
    last_land = 0.0
    last_n_in = 0.0
    while not all(done) and k < 400:
        tau_lift = k * tc / 2.0
        tau_land = tau_lift + tsw
        tau_mid = tau_land + tst / 2.0
        if not done[side]:
            px, pz, ppsi = (float(v) for v in path(np.array(min(tau_mid, tm))))
            fx, fz, fyaw = tl.neutral_foot(side, px, pz, ppsi, gait.width)
            cur = tl.feet[side].current
            step_len = math.hypot(fx - cur.x, fz - cur.z)
            turn = abs(float((fyaw - cur.yaw + math.pi) % (2 * math.pi) - math.pi))
            final = tau_mid >= tm
            if final and step_len < 0.03 and turn < 0.07:
                done[side] = True
            else:
                scale = min(1.0, step_len / 0.45)
                n_in = gait.frac_in * tst
                tl.feet[side].step(
                    f0 + tau_lift,
                    f0 + tau_land,
                    Stance(t0=0.0, t1=math.inf, x=fx, z=fz, yaw=fyaw, phi_in=gait.phi_in * scale, n_in=n_in),
                    Swing(
                        clearance=gait.clearance * (0.5 + 0.5 * min(1.0, step_len / 0.3)),
                        peak=gait.peak,
                        hold=gait.hold,
                        profile=gait.profile,
                        pivot=(x0, z0) if dist <= 1e-6 else None,  # turning in place: orbit the centre
                    ),
                    phi_out=gait.phi_out * max(scale, 0.3),
                    n_out=gait.frac_out * tst,
                )
                n_steps += 1
                last_land, last_n_in = tau_land, n_in
                done[side] = final
        side = 1 - side
        k += 1
    end = max(tm, last_land + last_n_in + 1.0) + settle
    n = int(math.ceil(end))
    bx, bz, bpsi = path(np.arange(n, dtype=np.float64))
    tl.append_base(bx, bz, bpsi)
    return {"steps": n_steps, "move_frames": tm, "f0": f0, "f1": tl.t}


def _walk_gait(style: Style, speed: float, rng: np.random.Generator) -> Gait:
    """Walking: cadence grows with speed; heel strike and push-off scale with the step."""
    steps_per_s = (1.55 + 0.5 * speed) * style.cadence
    period = 2.0 * FPS / steps_per_s
    return Gait(
        period=period,
        duty=0.62 - 0.03 * (speed - 1.0),
        phi_in=math.radians(_u(rng, 10, 18)),
        frac_in=0.15,
        phi_out=-math.radians(_u(rng, 22, 32)),
        frac_out=0.3,
        clearance=0.07 * style.clearance,
        peak=0.45,
        width=style.stance_w * 0.9,
        ramp=0.5 * period,
    )


def _run_gait(style: Style, speed: float, rng: np.random.Generator) -> Gait:
    """Running: short stances (flight phase), forefoot-ish landing, strong push-off, high heel recovery."""
    steps_per_s = (2.35 + 0.15 * speed) * style.cadence  # ~2.8 steps/s at 3 m/s, as measured in runners
    period = 2.0 * FPS / steps_per_s
    return Gait(
        period=period,
        duty=0.40 - 0.03 * (speed - 2.0),
        phi_in=math.radians(_u(rng, 0, 6)),
        frac_in=0.2,
        phi_out=-math.radians(_u(rng, 30, 40)),
        frac_out=0.35,
        clearance=_u(rng, 0.16, 0.24) * style.clearance,
        peak=0.38,
        width=style.stance_w * 0.75,
        ramp=0.8 * period,
        hold=0.06,
        profile="cubic",  # swing-foot peak ~2.5-3x running speed, like real runners
    )


def _loco_channels(tl: Timeline, n: int, *, swing: float, twist: float, sway: float, flex: float) -> dict[str, np.ndarray]:
    ch = tl.style.rest_channels(n)
    ch["gait"][:] = (swing, twist, sway, flex)
    return ch


def sample_walk(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Forward walk: speed band slow/normal/fast, cruise speed in the band, distance 1-6 m (within budget)."""
    band = _choice(rng, ("slow", "normal", "fast"), (0.3, 0.45, 0.25))
    speed = _u(rng, *SPEED_SAMPLING["walk"][band])
    max_d = max(0.8, (budget_s - 1.6) * speed)
    dist = min(_u(rng, 1.0, 6.0), max_d)
    return {"direction": "forward", "speed_band": band, "speed_mps": round(speed, 3), "distance_m": round(dist, 3)}


def build_walk(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Walk forward from rest and stop in the standing stance (heel strike, push-off, arm swing)."""
    st = tl.style
    speed = p["speed_mps"]
    gait = _walk_gait(st, speed, rng)
    f0 = tl.t
    ev = locomote(tl, gait, disp=(0.0, p["distance_m"]), speed=speed, first_side=int(rng.integers(2)), settle=_u(rng, 2, 5))
    ch = _loco_channels(tl, tl.t - f0, swing=0.28 * st.arm_swing * min(1.4, speed / 1.2), twist=0.1, sway=st.sway, flex=0.35)
    ch["spine"][:, 0] += 0.04 * speed
    return {"channels": ch, "events": ev}


def sample_run(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Forward run: band jog/run, cruise speed in the band, distance 2.5-10 m (within budget)."""
    band = _choice(rng, ("jog", "run"), (0.5, 0.5))
    speed = _u(rng, *SPEED_SAMPLING["run"][band])
    max_d = max(2.0, (budget_s - 1.5) * speed)
    dist = min(_u(rng, 2.5, 10.0), max_d)
    return {"direction": "forward", "speed_band": band, "speed_mps": round(speed, 3), "distance_m": round(dist, 3)}


def build_run(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Run forward with flight phases, bent-elbow arm swing, forward lean and pelvis bounce."""
    st = tl.style
    speed = p["speed_mps"]
    gait = _run_gait(st, speed, rng)
    f0 = tl.t
    ev = locomote(tl, gait, disp=(0.0, p["distance_m"]), speed=speed, first_side=int(rng.integers(2)), settle=_u(rng, 2, 5))
    n = tl.t - f0
    ch = _loco_channels(tl, n, swing=0.55 * st.arm_swing, twist=0.14, sway=0.3 * st.sway, flex=0.1)
    tau = np.arange(n, dtype=np.float64)
    # cruise envelope (0 at rest, 1 at speed): from the base speed
    x, z = np.asarray(tl._x[-1]), np.asarray(tl._z[-1])
    v = np.hypot(np.gradient(x), np.gradient(z)) * FPS  # base speed (m/s)
    env = smoothstep(v / max(speed, 1e-6) * 1.2)
    # Pelvis bounce: lowest at mid-stance, highest in flight (half-period Tc/2).
    tsw = (1.0 - gait.duty) * gait.period
    half = gait.period / 2.0
    ph = ((tau - tsw) % half) / half  # 0 at a touch-down
    stance_frac = min(2.0 * gait.duty, 0.95)
    bounce = np.where(
        ph < stance_frac,
        -0.035 * np.sin(np.pi * ph / stance_frac),
        0.03 * np.sin(np.pi * (ph - stance_frac) / (1.0 - stance_frac)),
    )
    ch["y_nom"] = ch["y_nom"] - 0.04 * env + bounce * env
    ch["spine"][:, 0] += 0.12 * env
    ch["tilt"][:, 0] += 0.05 * env
    ch["neck"][:, 0] -= 0.1 * env
    # Running arms: elbows bent ~90 degrees, wrists a little toward the midline.
    run_arm = _polar_arm(np.full(n, math.radians(35)), 0.37, np.array([0.0, 0.0, 1.0]), -0.05)
    hang = ch["wrist"][:, 0]
    ch["wrist"] = _both(hang + (run_arm - hang) * env[:, None])
    ch["pole"] = _both(np.tile([0.25, -0.2, -1.0], (n, 1)))
    return {"channels": ch, "events": ev, "gait": gait}


def sample_walk_backward(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Backward walk: band slow/normal, distance 0.8-3 m."""
    band = _choice(rng, ("slow", "normal"), (0.45, 0.55))
    speed = _u(rng, *SPEED_SAMPLING["walk_backward"][band])
    max_d = max(0.6, (budget_s - 1.8) * speed)
    dist = min(_u(rng, 0.8, 3.0), max_d)
    return {"direction": "backward", "speed_band": band, "speed_mps": round(speed, 3), "distance_m": round(dist, 3)}


def build_walk_backward(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Walk backward (ball of the foot lands first, heel leaves last)."""
    st = tl.style
    speed = p["speed_mps"]
    steps_per_s = (1.5 + 0.5 * speed) * st.cadence
    period = 2.0 * FPS / steps_per_s
    # Time-reversed walking: the ball of the foot lands first, the heel leaves last (toe up).
    gait = Gait(
        period=period, duty=0.64, phi_in=-math.radians(_u(rng, 8, 14)), frac_in=0.2,
        phi_out=math.radians(_u(rng, 6, 12)), frac_out=0.2, clearance=0.06 * st.clearance,
        peak=0.55, width=st.stance_w * 0.95, ramp=0.5 * period,
    )
    f0 = tl.t
    ev = locomote(tl, gait, disp=(0.0, -p["distance_m"]), speed=speed, first_side=int(rng.integers(2)), settle=_u(rng, 2, 5))
    ch = _loco_channels(tl, tl.t - f0, swing=0.12 * st.arm_swing, twist=0.05, sway=st.sway * 0.8, flex=0.2)
    ch["neck"][:, 0] += 0.05
    return {"channels": ch, "events": ev}


def sample_sidestep(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Sidestep: direction left/right, 0.25-0.4 m/s, 0.5-1.6 m."""
    direction = _choice(rng, ("left", "right"))
    speed = _u(rng, *SPEED_SAMPLING["sidestep"]["normal"])
    max_d = max(0.4, (budget_s - 1.8) * speed)
    dist = min(_u(rng, 0.5, 1.6), max_d)
    return {"direction": direction, "speed_band": "normal", "speed_mps": round(speed, 3), "distance_m": round(dist, 3)}


def build_sidestep(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Step sideways with a wide stance, leading with the foot on the side of travel."""
    st = tl.style
    lat = 1.0 if p["direction"] == "left" else -1.0
    period = 2.0 * FPS / (_u(rng, 2.1, 2.6) * st.cadence)
    gait = Gait(
        period=period, duty=0.6, phi_in=0.0, frac_in=0.1, phi_out=-math.radians(8), frac_out=0.2,
        clearance=0.05 * st.clearance, peak=0.5, width=max(st.stance_w, 0.17), ramp=0.5 * period,
    )
    f0 = tl.t
    # lead with the foot on the side of travel
    ev = locomote(tl, gait, disp=(lat * p["distance_m"], 0.0), speed=p["speed_mps"], first_side=0 if lat > 0 else 1, settle=_u(rng, 2, 5))
    ch = _loco_channels(tl, tl.t - f0, swing=0.0, twist=0.0, sway=0.6 * st.sway, flex=0.0)
    # arms slightly away from the body for balance
    ch["wrist"][:, :, 0] += np.array([0.04, -0.04])
    return {"channels": ch, "events": ev}


MAX_TURN_PER_STEP = 80.0  # degrees of body rotation between two placements of the same foot


def _turn_period(cycle_s: float, angle_deg: float, seconds: float) -> float:
    """Gait cycle (frames) for turning in place: shortened when needed so that each foot is
    re-planted at most every MAX_TURN_PER_STEP degrees (larger steps would swing one foot around
    the other one). The rotation follows a minimum-jerk profile, whose peak speed is 1.875x mean."""
    peak_rate = 1.875 * angle_deg / seconds  # deg/s
    return FPS * min(cycle_s, MAX_TURN_PER_STEP / peak_rate)


def sample_turn(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Turn in place: direction left/right, nominal 45/90/180 degrees (+-6 degrees jitter)."""
    direction = _choice(rng, ("left", "right"))
    nominal = _choice(rng, TURN_ANGLES, (0.25, 0.5, 0.25))
    angle = nominal + _u(rng, -6.0, 6.0)
    return {"direction": direction, "angle_nominal": nominal, "angle_deg": round(angle, 2)}


def build_turn(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Turn in place by stepping around (the head leads the turn a little)."""
    st = tl.style
    sign = 1.0 if p["direction"] == "left" else -1.0
    ang = math.radians(p["angle_deg"])
    seconds = (0.55 + 1.25 * p["angle_deg"] / 180.0) * _u(rng, 0.9, 1.15) / st.tempo
    period = _turn_period(_u(rng, 0.9, 1.1), p["angle_deg"], seconds)
    gait = Gait(
        period=period, duty=0.66, phi_in=0.0, frac_in=0.1, phi_out=-math.radians(10), frac_out=0.25,
        clearance=0.05 * st.clearance, peak=0.5, width=st.stance_w, ramp=0.0,
    )
    f0 = tl.t
    ev = locomote(tl, gait, dpsi=sign * ang, move_frames=seconds * FPS, first_side=0 if sign > 0 else 1, settle=_u(rng, 2, 5))
    ch = _loco_channels(tl, tl.t - f0, swing=0.05, twist=0.0, sway=0.5 * st.sway, flex=0.0)
    # the head leads the turn a little
    tau = np.arange(tl.t - f0, dtype=np.float64)
    ch["neck"][:, 1] += sign * 0.25 * np.sin(np.pi * np.clip(tau / (seconds * FPS), 0, 1))
    return {"channels": ch, "events": ev}


def sample_spin(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Spin: direction left/right, one full turn (360 +- 8 degrees)."""
    direction = _choice(rng, ("left", "right"))
    return {"direction": direction, "angle_deg": round(360.0 + _u(rng, -8.0, 8.0), 2), "count": 1}


def build_spin(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Spin a full circle with quick small steps, arms opening a little."""
    st = tl.style
    sign = 1.0 if p["direction"] == "left" else -1.0
    seconds = _u(rng, 2.0, 2.8) / st.tempo
    period = _turn_period(_u(rng, 0.45, 0.55), p["angle_deg"], seconds)
    gait = Gait(
        period=period, duty=0.6, phi_in=-math.radians(5), frac_in=0.15, phi_out=-math.radians(15), frac_out=0.3,
        clearance=0.06 * st.clearance, peak=0.5, width=st.stance_w * 0.8, ramp=0.0,
    )
    f0 = tl.t
    ev = locomote(tl, gait, dpsi=sign * math.radians(p["angle_deg"]), move_frames=seconds * FPS, first_side=0 if sign > 0 else 1, settle=_u(rng, 2, 5))
    n = tl.t - f0
    ch = _loco_channels(tl, n, swing=0.0, twist=0.0, sway=0.3 * st.sway, flex=0.0)
    # arms open a little away from the body while spinning
    tau = np.arange(n, dtype=np.float64)
    env = np.sin(np.pi * np.clip(tau / (seconds * FPS), 0, 1))
    ch["wrist"] = ch["wrist"] + _both(np.outer(env, [0.12, 0.08, 0.0]))
    return {"channels": ch, "events": ev}


# ============================================================================ in-place actions


def _stand_still(tl: Timeline, n: int) -> int:
    """Hold the base for ``n`` frames (feet stay planted); returns the first frame."""
    f0 = tl.t
    tl.hold(n)
    return f0


def sample_idle(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Stand idle for 1.2-3 s."""
    return {"duration_s": round(min(_u(rng, 1.2, 3.0), max(1.0, budget_s)), 2)}


def build_idle(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Relaxed standing with small sway, breathing and looking around (feet planted)."""
    n = _frames(p["duration_s"])
    _stand_still(tl, n)
    ch = tl.style.rest_channels(n)
    tau = np.arange(n, dtype=np.float64) / FPS
    ph = rng.uniform(0, 2 * np.pi, size=4)
    ch["off"][:, 0] += 0.012 * np.sin(2 * np.pi * tau / _u(rng, 2.5, 4.0) + ph[0])
    ch["spine"][:, 2] += 0.02 * np.sin(2 * np.pi * tau / _u(rng, 3.0, 5.0) + ph[1])
    ch["neck"][:, 1] += _u(rng, 0.05, 0.25) * np.sin(2 * np.pi * tau / _u(rng, 2.5, 4.5) + ph[2])
    ch["y_nom"] += 0.004 * np.sin(2 * np.pi * tau / 3.5 + ph[3])  # breathing-ish bob
    return {"channels": ch, "events": {}}


def sample_wave(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Wave: hand left/right, 1-4 waves."""
    return {"side": _choice(rng, ("left", "right")), "count": int(_choice(rng, (1, 2, 3, 4), (0.2, 0.35, 0.3, 0.15)))}


def build_wave(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Raise one hand beside the head, wave it side to side ``count`` whole cycles, lower it."""
    st = tl.style
    side = 0 if p["side"] == "left" else 1
    t_up = _u(rng, 0.45, 0.6) / st.tempo
    period = _beat(rng, WAVE_PERIOD_S)
    t_down = _u(rng, 0.45, 0.6) / st.tempo
    hold = _u(rng, 0.05, 0.15)
    n = _frames(t_up + p["count"] * period + hold + t_down + 0.1)
    f0 = _stand_still(tl, n)
    ch = st.rest_channels(n)
    t = np.arange(n, dtype=np.float64) / FPS
    ready = np.array([_u(rng, 0.14, 0.22), _u(rng, 0.26, 0.34), _u(rng, 0.05, 0.14)])
    amp = _u(rng, 0.1, 0.14)  # lateral swing either way (m)
    hang = st.hang_wrist()[0]
    # raise: straight-line to the ready pose (the elbow folds on the way up, as people do)
    up = minjerk(t / t_up)
    down = minjerk((t - (t_up + p["count"] * period + hold)) / t_down)
    raise_w = up * (1.0 - down)  # 0 hanging, 1 at the ready pose
    tw = np.clip(t - t_up, 0.0, p["count"] * period)
    osc = amp * np.sin(2 * np.pi * tw / period)  # lateral wave, whole cycles
    wrist = hang[None, :] + (ready - hang)[None, :] * raise_w[:, None]
    wrist[:, 0] += osc * raise_w
    pole = np.array([0.35, 0.0, -1.0])[None, :] * (1 - raise_w[:, None]) + np.array([1.0, -0.7, -0.1])[None, :] * raise_w[:, None]
    sgn = np.array([1.0, 1.0, 1.0]) if side == 0 else _MIRROR
    ch["wrist"][:, side] = wrist * sgn
    ch["pole"][:, side] = pole * sgn
    ch["shrug"][:, side] = 0.12 * raise_w
    ch["spine"][:, 2] += (0.04 if side == 1 else -0.04) * raise_w  # lean away a touch
    cycles = [int(f0 + round((t_up + (k + 0.5) * period) * FPS)) for k in range(p["count"])]
    return {"channels": ch, "events": {"wave_frames": cycles}}


def sample_raise_arm(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Raise arm(s): side left/right/both, raised forward or sideways."""
    return {"side": _choice(rng, ("left", "right", "both"), (0.35, 0.35, 0.3)), "plane": _choice(rng, ("forward", "sideways"))}


def build_raise_arm(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Raise the arm(s) straight overhead along an arc, hold, lower them."""
    st = tl.style
    t_up = _u(rng, 0.6, 0.9) / st.tempo
    hold = _u(rng, 0.4, 1.4)
    t_down = _u(rng, 0.6, 0.9) / st.tempo
    n = _frames(t_up + hold + t_down + 0.1)
    f0 = _stand_still(tl, n)
    ch = st.rest_channels(n)
    t = np.arange(n, dtype=np.float64) / FPS
    lift = minjerk(t / t_up) * (1.0 - minjerk((t - t_up - hold) / t_down))
    plane = np.array([0.0, 0.0, 1.0]) if p["plane"] == "forward" else np.array([1.0, 0.0, 0.0])
    top = math.radians(_u(rng, 165, 175))
    theta = st.arm_fwd * (1 - lift) + top * lift
    w = _polar_arm(theta, 0.505, plane, st.arm_out * (1 - lift) + 0.04 * lift)
    pole = np.array([1.0, 0.0, 0.0]) if p["plane"] == "forward" else np.array([0.0, 0.0, -1.0])
    sides = {"left": (0,), "right": (1,), "both": (0, 1)}[p["side"]]
    for s in sides:
        sgn = np.array([1.0, 1.0, 1.0]) if s == 0 else _MIRROR
        ch["wrist"][:, s] = w * sgn
        ch["pole"][:, s] = (st.hang_pole()[0] * (1 - lift[:, None]) + pole * lift[:, None]) * sgn
        ch["shrug"][:, s] = 0.3 * lift
    ch["neck"][:, 0] -= 0.12 * lift  # glance up a little
    return {"channels": ch, "events": {"top_frames": [int(f0 + round((t_up + hold / 2) * FPS))]}}


def sample_clap(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Clap: 1-5 claps."""
    return {"count": int(_choice(rng, CLAP_COUNTS, (0.08, 0.3, 0.3, 0.2, 0.12)))}


def build_clap(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Bring both hands in front of the chest and clap ``count`` times, then lower them."""
    st = tl.style
    t_up = _u(rng, 0.4, 0.55) / st.tempo
    period = _beat(rng, CLAP_PERIOD_S)
    t_down = _u(rng, 0.4, 0.55) / st.tempo
    n = _frames(t_up + p["count"] * period + t_down + 0.1)
    f0 = _stand_still(tl, n)
    ch = st.rest_channels(n)
    t = np.arange(n, dtype=np.float64) / FPS
    lift = minjerk(t / t_up) * (1.0 - minjerk((t - t_up - p["count"] * period) / t_down))
    open_sep = _u(rng, 0.3, 0.42)
    contact_sep = 0.07  # wrist joints of clapping hands (palms touch, wrists a few cm apart)
    tc = np.clip(t - t_up, 0.0, p["count"] * period)
    sep = contact_sep + (open_sep - contact_sep) * (0.5 + 0.5 * np.cos(2 * np.pi * tc / period))
    centre = np.array([0.0, _u(rng, -0.08, 0.02), _u(rng, 0.26, 0.32)])  # relative to spine3, chest frame
    hang = ch["wrist"].copy()
    for s, sgn in ((0, 1.0), (1, -1.0)):
        target = centre[None, :] + np.outer(sgn * sep / 2.0, [1.0, 0.0, 0.0]) - SHOULDER_IN_CHEST[s][None, :]
        ch["wrist"][:, s] = hang[:, s] + (target - hang[:, s]) * lift[:, None]
        pole = np.array([sgn * 1.0, -0.7, -0.3])
        ch["pole"][:, s] = ch["pole"][:, s] * (1 - lift[:, None]) + pole * lift[:, None]
    claps = [int(f0 + round((t_up + (k + 0.5) * period) * FPS)) for k in range(p["count"])]
    return {"channels": ch, "events": {"clap_frames": claps}}


def sample_squat(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Squat: 1-3 repetitions, 0.25-0.42 m deep."""
    return {"count": int(_choice(rng, (1, 2, 3), (0.5, 0.32, 0.18))), "depth_m": round(_u(rng, 0.25, 0.42), 3)}


def build_squat(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Squat with hips back, torso leaning over the feet, heels down (arms forward 65% of the time)."""
    st = tl.style
    t_down = _beat(rng, 0.72)
    t_hold = _beat(rng, 0.2)
    t_up = _beat(rng, 0.72)
    gap = _beat(rng, 0.25)
    rep = t_down + t_hold + t_up
    n = _frames(p["count"] * rep + (p["count"] - 1) * gap + 0.15)
    f0 = _stand_still(tl, n)
    ch = st.rest_channels(n)
    t = np.arange(n, dtype=np.float64) / FPS
    b = np.zeros(n)
    bottoms = []
    for k in range(p["count"]):
        s = k * (rep + gap)
        b += minjerk((t - s) / t_down) * (1.0 - minjerk((t - s - t_down - t_hold) / t_up))
        bottoms.append(int(f0 + round((s + t_down + t_hold / 2) * FPS)))
    d = p["depth_m"]
    ch["y_nom"] -= d * b
    ch["off"][:, 1] -= 0.85 * d * b  # hips go back (knees stay near above the toes)
    ch["tilt"][:, 0] += 0.9 * d * b  # pelvis tips forward (~20 degrees at 0.4 m)
    ch["spine"][:, 0] += 0.8 * d * b  # torso leans over the feet to balance
    ch["neck"][:, 0] -= 0.9 * d * b  # keep looking ahead
    if rng.uniform() < 0.65:  # arms forward for balance
        theta = st.arm_fwd + (math.radians(_u(rng, 70, 90)) - st.arm_fwd) * b
        w = _polar_arm(theta, 0.5, np.array([0.0, 0.0, 1.0]), st.arm_out)
        ch["wrist"] = _both(w)
        ch["pole"] = _both(np.tile([1.0, 0.0, -0.3], (n, 1)))
    return {"channels": ch, "events": {"bottom_frames": bottoms}}


def sample_kick(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Kick: leg left/right, 1-3 kicks, low (ankle 0.25-0.42 m) or high (0.6-0.8 m)."""
    band = _choice(rng, ("low", "high"))
    return {
        "side": _choice(rng, ("left", "right")),
        "count": int(_choice(rng, (1, 2, 3), (0.6, 0.28, 0.12))),
        "height_band": band,
        "height_m": round(_u(rng, *KICK_HEIGHT_SAMPLING[band]), 3),
    }


def build_kick(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Shift weight onto the other foot, chamber, kick forward to the apex height, retract, put down."""
    st = tl.style
    side = 0 if p["side"] == "left" else 1
    lat_sign = 1.0 if side == 0 else -1.0
    t_shift = _u(rng, 0.3, 0.45) / st.tempo
    t_lift, t_strike, t_hold, t_back, t_down = (
        _beat(rng, 0.26), _beat(rng, 0.18), 0.05, _beat(rng, 0.24), _beat(rng, 0.23),
    )
    t_ground = _beat(rng, 0.22)
    one = t_lift + t_strike + t_hold + t_back + t_down
    total = t_shift + p["count"] * one + (p["count"] - 1) * t_ground + t_shift
    n = _frames(total + 0.1)
    f0 = _stand_still(tl, n)
    ch = st.rest_channels(n)
    t = np.arange(n, dtype=np.float64) / FPS
    shift = _u(rng, 0.05, 0.075)
    t_end_kicks = t_shift + p["count"] * one + (p["count"] - 1) * t_ground
    w_shift = minjerk(t / t_shift) * (1.0 - minjerk((t - t_end_kicks) / t_shift))
    ch["off"][:, 0] += -lat_sign * shift * w_shift  # weight over the stance foot
    ch["wrist"][:, :, 0] += np.outer(w_shift, [0.1, -0.1])
    ch["wrist"][:, :, 1] += 0.05 * w_shift[:, None]

    x0, z0, psi = tl.pose
    c, s = math.cos(psi), math.sin(psi)
    foot = tl.feet[side]
    home = foot.current
    hip_lat = HIP_OFFSET[side][0] - lat_sign * shift  # kicking hip, heading frame
    y_hip = st.y_stand
    reach = 0.96 * LEG_REACH[side]
    h = p["height_m"]
    fwd_apex = math.sqrt(max(reach**2 - (y_hip - h) ** 2, 0.05))

    def world(lat: float, up: float, fwd: float) -> np.ndarray:
        return np.array([x0 + c * lat + s * fwd, up, z0 - s * lat + c * fwd])

    chamber = world(hip_lat, _u(rng, 0.3, 0.38), _u(rng, 0.05, 0.12))
    apex = world(hip_lat + lat_sign * 0.02, h, fwd_apex)
    apex_frames = []
    env = np.zeros(n)
    ts = t_shift
    for _ in range(p["count"]):
        start_f = f0 + ts * FPS
        end_f = f0 + (ts + one) * FPS
        a_lift, d_lift = foot_pose(home.x, home.z, home.yaw, math.radians(-15), side)
        a_land, d_land = foot_pose(home.x, home.z, home.yaw, 0.0, side)
        # Lift straight up off the floor first and come straight down at the end, so the foot
        # never glides while it is low.
        up_t, down_t = 0.3 * t_lift * FPS, 0.35 * t_down * FPS
        key_t = [start_f, start_f + up_t, start_f + t_lift * FPS, start_f + (t_lift + t_strike) * FPS,
                 start_f + (t_lift + t_strike + t_hold) * FPS, start_f + (t_lift + t_strike + t_hold + t_back) * FPS,
                 end_f - down_t, end_f]
        lifted = a_lift[0] + np.array([0.0, 0.06, 0.0])
        hover = a_land[0] + np.array([0.0, 0.05, 0.0])
        key_pos = [a_lift[0], lifted, chamber, apex, apex, chamber, hover, a_land[0]]
        key_phi = [math.radians(-15), math.radians(-15), math.radians(-25), math.radians(-40), math.radians(-40),
                   math.radians(-25), math.radians(-5), 0.0]
        yaw = home.yaw

        def custom(tt: np.ndarray, key_t=key_t, key_pos=key_pos, key_phi=key_phi, yaw=yaw) -> tuple[np.ndarray, np.ndarray]:
            pos = keyframes(tt, key_t, np.array(key_pos))
            phi = keyframes(tt, key_t, np.array(key_phi))
            _, fd = foot_pose(np.zeros_like(tt), np.zeros_like(tt), np.full_like(tt, yaw), phi, side)
            return pos, fd

        foot.step(start_f, end_f, Stance(t0=0.0, t1=math.inf, x=home.x, z=home.z, yaw=home.yaw, phi_in=0.0, n_in=0.0),
                  Swing(custom=custom, constraining=False), phi_out=math.radians(-15), n_out=2.0)
        home = foot.current
        apex_frames.append(int(round(start_f + (t_lift + t_strike + 0.5 * t_hold) * FPS)))
        env += np.clip(keyframes(t, [ts, ts + t_lift, ts + t_lift + t_strike, ts + t_lift + t_strike + t_hold, ts + one - t_down, ts + one],
                                 np.array([0.0, 0.4, 1.0, 1.0, 0.4, 0.0])), 0, 1) * ((t >= ts) & (t <= ts + one))
        ts += one + t_ground
    ch["spine"][:, 0] -= 0.12 * env  # lean back as the leg goes up
    ch["tilt"][:, 0] -= 0.08 * env
    return {"channels": ch, "events": {"apex_frames": apex_frames}}


def sample_jump(rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Jump: in place (1-3) or forward (1-2, 0.35-0.85 m each), low or high apex."""
    forward = bool(rng.uniform() < 0.4)
    count = int(_choice(rng, (1, 2), (0.75, 0.25))) if forward else int(_choice(rng, (1, 2, 3), (0.55, 0.3, 0.15)))
    band = _choice(rng, ("low", "high"))
    out = {
        "forward": forward,
        "count": count,
        "height_band": band,
        "apex_m": round(_u(rng, *JUMP_HEIGHT_SAMPLING[band]), 3),
    }
    if forward:
        out["distance_m"] = round(_u(rng, 0.35, 0.85) * count, 3)
    return out


def _max_pelvis(tl: Timeline, ankles: list[np.ndarray], px: float, pz: float, psi: float) -> float:
    """Highest pelvis keeping both (given) ankle positions within comfortable reach."""
    c, s = math.cos(psi), math.sin(psi)
    best = math.inf
    for side in (0, 1):
        hx = px + c * HIP_OFFSET[side][0]
        hz = pz - s * HIP_OFFSET[side][0]
        a = ankles[side]
        d2 = (hx - a[0]) ** 2 + (hz - a[2]) ** 2
        best = min(best, a[1] + math.sqrt(max((0.97 * LEG_REACH[side]) ** 2 - d2, 1e-4)))
    return best


def build_jump(tl: Timeline, p: dict, rng: np.random.Generator) -> dict:
    """Crouch with arms back, push off (heels rise), ballistic flight, toe-first landing with a dip."""
    st = tl.style
    h = p["apex_m"]
    t_crouch = _beat(rng, 0.36)
    t_push = 0.18
    t_flight = 2.0 * math.sqrt(2.0 * h / G)
    t_land = 0.2
    t_recover = _beat(rng, 0.38)
    t_gap = _beat(rng, 0.12)
    one = t_crouch + t_push + t_flight + t_land + t_recover
    n = _frames(p["count"] * one + (p["count"] - 1) * t_gap + 0.15)
    f0 = tl.t
    x0, z0, psi = tl.pose
    c, s = math.cos(psi), math.sin(psi)
    step_d = p.get("distance_m", 0.0) / p["count"]
    crouch = _u(rng, 0.1, 0.16) + 0.25 * h
    land_dip = _u(rng, 0.08, 0.14) + 0.2 * h
    v0 = math.sqrt(2 * G * h)
    t = np.arange(n, dtype=np.float64) / FPS
    y = np.full(n, st.y_stand)
    prog = np.zeros(n)  # forward progress of the base along the heading (m)
    arm = np.full(n, st.arm_fwd)  # arm elevation angle in the sagittal plane
    lean = np.zeros(n)
    events = {"takeoff_frames": [], "landing_frames": []}
    ts = 0.0
    done_d = 0.0
    for _ in range(p["count"]):
        t_to = ts + t_crouch + t_push  # take-off time
        t_ld = t_to + t_flight
        tf0, tlf = f0 + t_to * FPS, f0 + t_ld * FPS
        # Feet: heel rise during the push, flight, toe-first landing.
        vh = step_d / (t_push / 2 + t_flight + t_land / 2) if step_d > 0 else 0.0
        land_d = done_d + step_d
        ankles_to = []
        for side in (0, 1):
            cur = tl.feet[side].current
            a_to, _ = foot_pose(cur.x, cur.z, cur.yaw, math.radians(-40), side)
            ankles_to.append(a_to[0])
        px_to = x0 + s * (done_d + vh * t_push / 2)
        pz_to = z0 + c * (done_d + vh * t_push / 2)
        y_to = min(_max_pelvis(tl, ankles_to, px_to, pz_to, psi) - 0.02, st.y_stand + 0.06)
        for side in (0, 1):
            cur = tl.feet[side].current
            nx, nz = cur.x + s * step_d, cur.z + c * step_d
            a0, _ = foot_pose(cur.x, cur.z, cur.yaw, math.radians(-40), side)
            a1, _ = foot_pose(nx, nz, cur.yaw, math.radians(-25), side)
            tuck = _u(rng, 0.05, 0.12) + 0.3 * h

            def flight(tt: np.ndarray, a0=a0[0], a1=a1[0], yaw=cur.yaw, side=side, tuck=tuck, tf0=tf0, tlf=tlf, y_to=y_to) -> tuple[np.ndarray, np.ndarray]:
                u = np.clip((tt - tf0) / (tlf - tf0), 0.0, 1.0)
                tsec = (tt - tf0) / FPS
                rise = v0 * tsec - 0.5 * G * tsec**2  # pelvis height above take-off
                pos = a0 + (a1 - a0) * minjerk(u)[:, None]
                pos[:, 1] = a0[1] + (a1[1] - a0[1]) * u + np.maximum(rise, 0.0) + tuck * np.sin(np.pi * u)
                phi = math.radians(-40) + math.radians(15) * u
                _, fd = foot_pose(np.zeros_like(tt), np.zeros_like(tt), np.full_like(tt, yaw), phi, side)
                return pos, fd

            tl.feet[side].step(tf0, tlf, Stance(t0=0.0, t1=math.inf, x=nx, z=nz, yaw=cur.yaw, phi_in=math.radians(-25), n_in=2.5),
                               Swing(custom=flight, constraining=False), phi_out=math.radians(-40), n_out=t_push * FPS + 1)
        # Pelvis height: crouch, push (Hermite to the take-off speed), ballistic flight, landing dip.
        m = (t >= ts) & (t < ts + t_crouch)
        y[m] = st.y_stand - crouch * smoothstep((t[m] - ts) / t_crouch)
        m = (t >= ts + t_crouch) & (t < t_to)
        u = (t[m] - ts - t_crouch) / t_push
        y0, y1 = st.y_stand - crouch, y_to
        m1 = min(v0 * t_push, 2.5 * (y1 - y0))
        y[m] = (2 * u**3 - 3 * u**2 + 1) * y0 + (-2 * u**3 + 3 * u**2) * y1 + (u**3 - u**2) * m1
        m = (t >= t_to) & (t < t_ld)
        tsec = t[m] - t_to
        y[m] = y_to + v0 * tsec - 0.5 * G * tsec**2
        m = (t >= t_ld) & (t < t_ld + t_land)
        u = (t[m] - t_ld) / t_land
        y2 = st.y_stand - land_dip
        m2 = -min(v0 * t_land, 2.5 * (y_to - y2))
        y[m] = (2 * u**3 - 3 * u**2 + 1) * y_to + (-2 * u**3 + 3 * u**2) * y2 + (u**3 - 2 * u**2 + u) * m2
        m = (t >= t_ld + t_land) & (t < t_ld + t_land + t_recover)
        y[m] = y2 + (st.y_stand - y2) * smoothstep((t[m] - t_ld - t_land) / t_recover)
        # Base forward progress: accelerate in the push, constant in flight, brake on landing.
        if step_d > 0:
            m = (t >= ts + t_crouch) & (t < t_to)
            prog[m] = done_d + 0.5 * vh * (t[m] - ts - t_crouch) ** 2 / t_push
            m = (t >= t_to) & (t < t_ld)
            prog[m] = done_d + vh * t_push / 2 + vh * (t[m] - t_to)
            m = (t >= t_ld) & (t < t_ld + t_land)
            tt = t[m] - t_ld
            prog[m] = done_d + vh * (t_push / 2 + t_flight) + vh * (tt - 0.5 * tt**2 / t_land)
            m = t >= t_ld + t_land
            prog[m] = land_d
        # Arms: back in the crouch, up at take-off, forward on landing; torso leans in the crouch.
        # arms start forward before the push ends and peak early in the flight (smoother swing)
        keys_t = [ts, ts + 0.75 * t_crouch, t_to + 0.3 * t_flight, t_ld, t_ld + t_land, t_ld + t_land + t_recover]
        arm_hi = math.radians(60 + 150 * min(h, 0.4))
        seg = (t >= ts) & (t <= t_ld + t_land + t_recover)
        arm[seg] = keyframes(t[seg], keys_t, np.array([st.arm_fwd, math.radians(-45), arm_hi, math.radians(70), math.radians(40), st.arm_fwd]))
        lean_t = [ts, ts + t_crouch, t_to, t_ld, t_ld + t_land, t_ld + t_land + t_recover]
        lean[seg] = keyframes(t[seg], lean_t, np.array([0.0, 0.45, 0.1, 0.05, 0.3, 0.0])) * (crouch / 0.2)
        events["takeoff_frames"].append(int(math.ceil(tf0)))
        events["landing_frames"].append(int(math.ceil(tlf)))
        done_d = land_d
        ts = t_ld + t_land + t_recover + t_gap
    tl.append_base(x0 + s * prog, z0 + c * prog, np.full(n, psi))
    ch = st.rest_channels(n)
    ch["y_nom"] = y
    ch["spine"][:, 0] += 0.6 * lean
    ch["tilt"][:, 0] += 0.5 * lean
    ch["neck"][:, 0] -= 0.6 * lean
    w = _polar_arm(arm, 0.47, np.array([0.0, 0.0, 1.0]), st.arm_out)
    ch["wrist"] = _both(w)
    events["y_to"] = y_to
    return {"channels": ch, "events": events}


# ============================================================================ registry


@dataclass(frozen=True)
class Family:
    """One action family: its name, whether it moves the feet, and its sampler/builder."""

    name: str
    """Family name (as in labels and meta.json)."""
    locomotion: bool
    """True when the body travels or turns by stepping."""
    sample: Callable[[np.random.Generator, Style, float], dict]
    """``(rng, style, budget_s) -> params``."""
    build: Callable[[Timeline, dict, np.random.Generator], dict]
    """``(timeline, params, rng) -> {"channels", "events"}``; appends the segment."""


FAMILY_SPECS: dict[str, Family] = {
    "walk": Family("walk", True, sample_walk, build_walk),
    "run": Family("run", True, sample_run, build_run),
    "walk_backward": Family("walk_backward", True, sample_walk_backward, build_walk_backward),
    "sidestep": Family("sidestep", True, sample_sidestep, build_sidestep),
    "turn": Family("turn", True, sample_turn, build_turn),
    "spin": Family("spin", True, sample_spin, build_spin),
    "jump": Family("jump", False, sample_jump, build_jump),
    "squat": Family("squat", False, sample_squat, build_squat),
    "kick": Family("kick", False, sample_kick, build_kick),
    "wave": Family("wave", False, sample_wave, build_wave),
    "raise_arm": Family("raise_arm", False, sample_raise_arm, build_raise_arm),
    "clap": Family("clap", False, sample_clap, build_clap),
    "idle": Family("idle", False, sample_idle, build_idle),
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_SPECS)
LOCOMOTION: tuple[str, ...] = tuple(f for f, spec in FAMILY_SPECS.items() if spec.locomotion)


def sample_params(family: str, rng: np.random.Generator, style: Style, budget_s: float) -> dict:
    """Draw the parameters of one segment of ``family`` (budget_s caps open-ended durations)."""
    return FAMILY_SPECS[family].sample(rng, style, budget_s)


def build_segment(tl: Timeline, family: str, params: dict, rng: np.random.Generator) -> None:
    """Append one labelled segment of ``family`` to the timeline."""
    f0 = tl.t
    out = FAMILY_SPECS[family].build(tl, params, rng)
    tl.add_part(family, params, f0, out["channels"], out["events"])


def build_pad(tl: Timeline, seconds: float, rng: np.random.Generator) -> None:
    """Append unlabelled relaxed standing (clip lead-in / lead-out)."""
    n = _frames(seconds)
    f0 = tl.t
    out = build_idle(tl, {"duration_s": n / FPS}, rng)
    tl.add_part("pad", {}, f0, out["channels"], {})
