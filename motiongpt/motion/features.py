"""The HumanML3D motion representation: joint positions <-> 263-d per-frame features.

This reproduces the published HumanML3D pipeline (``motion_representation.ipynb`` of the
dataset, documented step by step in ``humanml3d-representation.md``), quirks included:

* frame 0 of every clip gets the identity root rotation (so feature row 0 carries a large
  "angular velocity" jump),
* the IK facing direction uses ``(j1 - j2) + (j17 - j16)`` (the hip term has the opposite sign to
  the face-z+ step), normalized before the Gaussian smoothing of ``forward``,
* every chain's rotation accumulation starts from the root quaternion, also for the two arm
  chains that start at joint 9.

Layout of a 263-d row (``J = 22``; KIT-ML has ``J = 21`` and 251 dims)::

    [0:1] root half-yaw velocity   [1:3] root x,z velocity (facing frame)   [3:4] root height
    [4:67] ric positions of joints 1..J-1   [67:193] 6D local rotations of joints 1..J-1
    [193:259] local velocities of joints 0..J-1   [259:263] foot contacts (l ankle, l foot,
    r ankle, r foot)

Implementation notes (why it is fast):

* Everything runs on a "structure of arrays" layout ``(component, joint, frame)``, so every
  numpy op is a contiguous elementwise pass and per-joint slices are contiguous rows.
* Many clips are concatenated along the frame axis; per-frame steps run once over the whole
  batch; per-clip steps (frame-0 scale/floor/origin/facing, the Gaussian smoothing, frame
  differences, dropping each clip's last frame) use clip offsets, never Python loops over frames.
  The Gaussian smoothing runs on an edge-padded concatenation (pad = kernel radius), which gives
  bit-identical results to ``gaussian_filter1d(mode='nearest')`` clip by clip.
* The reference's uniform-skeleton step (IK, then FK with the target offsets) collapses in closed
  form: in the IK each bone's accumulated rotation is ``R = R * inv(R) * between(u, v) =
  between(u, v)``, and FK rotates the offset ``len * u`` by exactly that rotation, giving
  ``len * v / |v|``. So the retargeted skeleton is ``child = parent + target_len * unit(src bone)``
  with the root scaled; :func:`motiongpt.motion.ik.uniform_skeleton` keeps the literal IK + FK
  version and a test checks both agree.
* The same cancellation gives the smoothed IK's local rotations without a loop over bones:
  ``local_j = inv(G_p) * G_j`` with ``G_j = between(raw_j, unit bone_j)`` and ``G_p`` the
  parent's ``G`` (the root quaternion for the first bone of each chain).
* The root quaternion is a pure yaw (``forward`` has y = 0 by construction), so every rotation
  by it is a 2-D rotation of x, z.

All public functions take numpy arrays (float32 or float64), compute in float64 and return
float32. They raise ``ValueError`` naming the problem (and the clip, via ``name=``/``names=``)
for wrong shapes, non-finite values, too few frames, or degenerate poses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from motiongpt.motion.quaternion import qbetween, quat_to_matrix
from motiongpt.motion.skeleton import (
    FACE_JOINTS,
    FOOT_LEFT,
    FOOT_RIGHT,
    KINEMATIC_CHAIN,
    MIRROR_PERM,
    PARENTS,
    RAW_OFFSETS,
    TARGET_BONE_LENGTHS,
    TARGET_OFFSETS,
)

__all__ = [
    "HML_JOINTS",
    "HML_FEATURE_DIM",
    "KIT_JOINTS",
    "KIT_FEATURE_DIM",
    "FOOT_CONTACT_THRESHOLD",
    "SMOOTH_SIGMA",
    "feature_dim",
    "n_joints_from_dim",
    "feature_blocks",
    "canonicalize_joints",
    "features_to_joints",
    "features_to_joints_batch",
    "joints_to_features",
    "joints_to_features_batch",
    "mirror_joints",
]

HML_JOINTS = 22
HML_FEATURE_DIM = 263
KIT_JOINTS = 21
KIT_FEATURE_DIM = 251
FOOT_CONTACT_THRESHOLD = 0.002  # squared displacement per frame (m^2)
SMOOTH_SIGMA = 20.0  # Gaussian sigma (frames) of the IK's forward-direction smoothing
_SMOOTH_RADIUS = int(4.0 * SMOOTH_SIGMA + 0.5)  # scipy's kernel radius (truncate=4.0)
_LEG_BONES = (5, 8)  # lower-leg joints whose offsets define the leg length for the scale

# Clips are processed in groups of about this many frames: large enough to amortize numpy's
# per-call overhead, small enough that the working set stays in cache (see bench/).
_CHUNK_FRAMES = 8192
_F2J_BLOCK = 2048  # rows per block of features_to_joints' per-joint rotation
_F2J_CHUNK_FRAMES = 8192  # rows per group of clips in features_to_joints_batch


# ----------------------------------------------------------------------------- layout helpers


def feature_dim(n_joints: int) -> int:
    """Feature size for a skeleton of ``n_joints``: ``4 + (J-1)*3 + (J-1)*6 + J*3 + 4 = 12J - 1``."""
    return 12 * n_joints - 1


def n_joints_from_dim(dim: int, *, name: str | None = None) -> int:
    """Joint count ``J`` of a feature size ``D = 12J - 1`` (263 -> 22, 251 -> 21)."""
    return _n_joints(dim, _where(name))


def _n_joints(dim: int, where: str) -> int:
    if dim < feature_dim(2) or (dim + 1) % 12 != 0:
        raise ValueError(
            f"{where}feature size {dim} is not 12*J - 1 for a joint count J >= 2 "
            f"(expected {HML_FEATURE_DIM} for HumanML3D or {KIT_FEATURE_DIM} for KIT-ML)"
        )
    return (dim + 1) // 12


def feature_blocks(n_joints: int = HML_JOINTS) -> dict[str, slice]:
    """Named slices of a feature row (the blocks the normalization statistics average over)."""
    j = n_joints
    ric, rot, vel = 4 + (j - 1) * 3, 4 + (j - 1) * 9, 4 + (j - 1) * 9 + j * 3
    return {
        "root_angular_velocity": slice(0, 1),
        "root_linear_velocity": slice(1, 3),
        "root_height": slice(3, 4),
        "ric": slice(4, ric),
        "rotations": slice(ric, rot),
        "local_velocities": slice(rot, vel),
        "foot_contacts": slice(vel, vel + 4),
    }


# ----------------------------------------------------------------------------- validation


def _where(name: str | None, index: int | None = None, names: Sequence[str] | None = None) -> str:
    """Message prefix naming the offending clip: ``"name: item 3 (012314): "``."""
    parts = []
    if name is not None:
        parts.append(str(name))
    if index is not None:
        item = f"item {index}"
        if names is not None and index < len(names):
            item += f" ({names[index]})"
        parts.append(item)
    return ": ".join(parts) + ": " if parts else ""


def _as_real_array(x: object, what: str, where: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{where}expected {what} as a real-valued numeric array, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, what: str, where: str) -> None:
    if not np.isfinite(arr).all():
        flat = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        first = int(np.argmax(flat))
        raise ValueError(f"{where}{what} contain NaN or inf values (first at frame {first})")


def _check_joints(x: object, where: str, *, allow_batch: bool = False) -> np.ndarray:
    """Validate ``[T, 22, 3]`` joints (``[B, T, 22, 3]`` too if ``allow_batch``)."""
    arr = _as_real_array(x, "joints", where)
    ok_rank = arr.ndim == 3 or (allow_batch and arr.ndim == 4)
    if not ok_rank or arr.shape[-2:] != (HML_JOINTS, 3):
        raise ValueError(
            f"{where}expected joints of shape [T, {HML_JOINTS}, 3]"
            + (f" or [B, T, {HML_JOINTS}, 3]" if allow_batch else "")
            + f", got {tuple(arr.shape)}"
        )
    if arr.ndim == 4 and arr.shape[0] == 0:
        raise ValueError(f"{where}expected at least 1 clip in the [B, T, {HML_JOINTS}, 3] batch, got 0")
    if arr.shape[-3] < 2:
        raise ValueError(
            f"{where}expected at least 2 frames of joints (features need a next frame), "
            f"got {arr.shape[-3]}"
        )
    _check_finite(arr.reshape((-1,) + arr.shape[-2:]), "joints", where)
    return arr


def _check_features(x: object, where: str, *, allow_batch: bool = False) -> tuple[np.ndarray, int]:
    """Validate ``[T, D]`` features (``[B, T, D]`` too if ``allow_batch``); return them and J."""
    arr = _as_real_array(x, "features", where)
    if not (arr.ndim == 2 or (allow_batch and arr.ndim == 3)):
        raise ValueError(
            f"{where}expected features of shape [T, D]"
            + (" or [B, T, D]" if allow_batch else "")
            + f" (D = {HML_FEATURE_DIM} or {KIT_FEATURE_DIM}), got {tuple(arr.shape)}"
        )
    n_joints = _n_joints(arr.shape[-1], where)
    if arr.ndim == 3 and arr.shape[0] == 0:
        raise ValueError(f"{where}expected at least 1 clip in the [B, T, D] batch, got 0")
    if arr.shape[-2] < 1:
        raise ValueError(f"{where}expected at least 1 frame of features, got 0")
    _check_finite(arr.reshape(-1, arr.shape[-1]), "features", where)
    return arr, n_joints


def _check_names(names: Sequence[str] | None, n: int, where: str) -> None:
    if names is not None and len(names) != n:
        raise ValueError(f"{where}got {len(names)} names for {n} items")


class _DegenerateFrame(Exception):
    """Raised inside the pipeline at the first frame (index in the concatenation) it cannot handle."""

    def __init__(self, frame: int, reason: str) -> None:
        super().__init__(reason)
        self.frame = frame
        self.reason = reason


def _raise_if_any(bad: np.ndarray, frames: np.ndarray | None, reason: str) -> None:
    """Raise :class:`_DegenerateFrame` for the first frame flagged in ``bad`` (``(..., N)``)."""
    flat = bad.reshape(-1, bad.shape[-1]).any(axis=0)
    if flat.any():
        first = int(np.argmax(flat))
        raise _DegenerateFrame(int(frames[first]) if frames is not None else first, reason)


def _clip_offsets(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end frame of every clip in the concatenation."""
    ends = np.cumsum(lengths)
    return ends - lengths, ends


def _chunks(lengths: Sequence[int], max_frames: int) -> list[tuple[int, int]]:
    """Split consecutive clips into groups ``[a, b)`` of about ``max_frames`` frames."""
    groups, a, total = [], 0, 0
    for i, n in enumerate(lengths):
        if total and total + n > max_frames:
            groups.append((a, i))
            a, total = i, 0
        total += n
    groups.append((a, len(lengths)))
    return groups


# ----------------------------------------------------------------------------- features -> joints


def _segmented_cumsum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Inclusive cumsum along the last axis restarted at every clip: ``(k, N) -> (k, N)``.

    Bit-identical to ``np.cumsum`` clip by clip (sequential sums on a zero-padded
    ``(k, C, Tmax)`` grid), which keeps batch results equal to per-clip results.
    """
    n_clips = len(lengths)
    if n_clips == 1:
        return np.cumsum(values, axis=-1)
    t_max = int(lengths.max())
    if int(lengths.min()) == t_max:  # equal lengths (e.g. a [B, T, D] batch): no scatter needed
        k = values.shape[0]
        return np.cumsum(values.reshape(k, n_clips, t_max), axis=-1).reshape(values.shape)
    starts, _ = _clip_offsets(lengths)
    frame = np.arange(values.shape[-1])
    flat = frame + np.repeat(np.arange(n_clips) * t_max - starts, lengths)  # (N,) grid index
    grid = np.zeros((values.shape[0], n_clips * t_max))
    grid[:, flat] = values
    grid = np.cumsum(grid.reshape(-1, n_clips, t_max), axis=-1).reshape(values.shape[0], -1)
    return grid[:, flat]


def _features_to_joints_core(feats: np.ndarray, lengths: np.ndarray, n_joints: int) -> np.ndarray:
    """Concatenated features ``(N, D)`` of clips with ``lengths`` -> joints ``(N, J, 3)`` float32."""
    n = feats.shape[0]
    starts, _ = _clip_offsets(lengths)
    # Per-clip "previous frame" of columns 0..2; zero at clip starts (exclusive cumsums).
    prev = np.empty((3, n))  # (3, N): half-yaw velocity, vx, vz of frame t-1
    prev[:, 1:] = feats[:-1, 0:3].T
    prev[:, starts] = 0.0
    half_yaw = _segmented_cumsum(prev[0:1], lengths)[0]  # (N,) a[t]
    # Rotating by inverse((cos a, 0, sin a, 0)) is the 2-D rotation by angle 2a on (x, z):
    # x' = cos2a x - sin2a z, z' = sin2a x + cos2a z.
    c2 = np.cos(2.0 * half_yaw)  # (N,)
    s2 = np.sin(2.0 * half_yaw)  # (N,)
    steps = np.empty((2, n))  # (2, N) root x,z steps in the world frame
    steps[0] = c2 * prev[1] - s2 * prev[2]
    steps[1] = s2 * prev[1] + c2 * prev[2]
    root_xz = _segmented_cumsum(steps, lengths)  # (2, N)

    out = np.empty((n, n_joints, 3), dtype=np.float32)  # (N, J, 3)
    out[:, 0, 0] = root_xz[0]
    out[:, 0, 1] = feats[:, 3]
    out[:, 0, 2] = root_xz[1]
    end = 4 + (n_joints - 1) * 3
    # Joints 1..J-1, in row blocks so the float64 temporaries stay in cache (elementwise, so
    # the blocking does not change any value).
    for a in range(0, n, _F2J_BLOCK):
        b = min(a + _F2J_BLOCK, n)
        rx = feats[a:b, 4:end:3]  # (B, J-1) strided views of the ric block
        rz = feats[a:b, 6:end:3]
        c2c, s2c = c2[a:b, None], s2[a:b, None]  # (B, 1)
        out[a:b, 1:, 0] = c2c * rx - s2c * rz + root_xz[0, a:b, None]
        out[a:b, 1:, 1] = feats[a:b, 5:end:3]
        out[a:b, 1:, 2] = s2c * rx + c2c * rz + root_xz[1, a:b, None]
    return out


def features_to_joints(features: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Recover global joint positions from features (the reference ``recover_from_ric``).

    Args:
        features: ``[T, D]`` (or ``[B, T, D]``) with ``D = 12J - 1``: 263 (HumanML3D, 22 joints)
            or 251 (KIT-ML, 21 joints). float32 or float64.
        name: clip id or path, quoted in error messages.

    Returns:
        float32 ``[T, J, 3]`` (or ``[B, T, J, 3]``) joint positions, y up, metres.
    """
    where = _where(name)
    arr, n_joints = _check_features(features, where, allow_batch=True)
    if arr.ndim == 2:
        return _features_to_joints_core(arr, np.array([arr.shape[0]]), n_joints)
    b, t, d = arr.shape
    joints = _features_to_joints_core(arr.reshape(b * t, d), np.full(b, t), n_joints)
    return joints.reshape(b, t, n_joints, 3)


def features_to_joints_batch(
    features_list: Sequence[np.ndarray],
    *,
    names: Sequence[str] | None = None,
    name: str | None = None,
) -> list[np.ndarray]:
    """:func:`features_to_joints` for many clips of any lengths, in one vectorized pass.

    All clips must have the same feature size. Returns a list of float32 ``[T_i, J, 3]`` arrays,
    equal to the per-clip results.
    """
    where = _where(name)
    _check_names(names, len(features_list), where)
    if len(features_list) == 0:
        return []
    arrays, n_joints = [], None
    for i, f in enumerate(features_list):
        arr, j = _check_features(f, _where(name, i, names))
        if n_joints is not None and j != n_joints:
            raise ValueError(
                f"{_where(name, i, names)}feature size {arr.shape[1]} differs from item 0's "
                f"({feature_dim(n_joints)}); a batch must use one skeleton"
            )
        n_joints = j
        arrays.append(arr)
    lengths = np.array([a.shape[0] for a in arrays])
    used = 4 + (n_joints - 1) * 3  # only the root and ric columns enter the positions
    out: list[np.ndarray] = []
    # Cache-sized groups of clips: the concatenated copy and the temporaries stay in cache.
    for a, b in _chunks(lengths.tolist(), _F2J_CHUNK_FRAMES):
        joints = _features_to_joints_core(
            np.concatenate([arr[:, :used] for arr in arrays[a:b]], axis=0), lengths[a:b], n_joints
        )
        starts, ends = _clip_offsets(lengths[a:b])
        out.extend(joints[s:e] for s, e in zip(starts, ends))
    return out


# ----------------------------------------------------------------------------- joints -> features

_BONE_PARENT = PARENTS[1:].copy()  # (21,)
# The rotation a bone's local rotation is relative to: its parent bone's, except that every chain
# starts from the root quaternion (also the arm chains starting at joint 9: a reference quirk).
_CHAIN_PARENT = _BONE_PARENT.copy()
for _chain in KINEMATIC_CHAIN:
    _CHAIN_PARENT[_chain[1] - 1] = 0
# Bones in an order where every parent comes before its children (chain by chain, as FK walks).
_FK_ORDER = tuple((p, c) for ch in KINEMATIC_CHAIN for p, c in zip(ch[:-1], ch[1:]))
_U = RAW_OFFSETS[1:].T[:, :, None].copy()  # (3, 21, 1) raw unit bone directions
_TARGET_LEN = TARGET_BONE_LENGTHS[1:, None].copy()  # (21, 1)
_TARGET_LEG = float(sum(np.abs(TARGET_OFFSETS[j]).max() for j in _LEG_BONES))
_FEET = np.array(FOOT_LEFT + FOOT_RIGHT)  # (4,) l ankle, l foot, r ankle, r foot
_R_HIP, _L_HIP, _R_SDR, _L_SDR = FACE_JOINTS


def _smooth_forward(fwd: np.ndarray, lengths: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``gaussian_filter1d(sigma=20, mode='nearest')`` along frames, clip by clip: ``(k, N)``.

    Each clip is padded by the kernel radius with its edge values and the padded clips are
    filtered in one call; the padded values are exactly what 'nearest' mode reads, so the result
    is bit-identical to filtering every clip on its own.
    """
    r = _SMOOTH_RADIUS
    plen = lengths + 2 * r
    pstarts, _ = _clip_offsets(plen)
    m = int(plen.sum())
    ends = starts + lengths - 1
    # Source frame of every padded sample: s - r .. e + r, clamped into the clip.
    src = np.arange(m) + np.repeat(starts - r - pstarts, plen)
    np.clip(src, np.repeat(starts, plen), np.repeat(ends, plen), out=src)
    smoothed = gaussian_filter1d(fwd[:, src], SMOOTH_SIGMA, axis=-1, mode="nearest")
    return smoothed[:, np.arange(fwd.shape[1]) + np.repeat(pstarts + r - starts, lengths)]


def _canonicalize_core(src: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Steps 1-4 of the reference pipeline on concatenated clips.

    Retarget to the uniform skeleton, put on the floor, move frame 0's root to x = z = 0, and
    rotate so frame 0 faces z+.

    Args:
        src: ``(3, 22, N)`` float64 joint positions (component, joint, frame).
        lengths: ``(C,)`` frames per clip, summing to N.

    Returns:
        ``(3, 22, N)`` float64 canonical ("global") positions.
    """
    starts, _ = _clip_offsets(lengths)
    per_frame = np.repeat(np.arange(len(lengths)), lengths)  # (N,) clip of every frame
    # 1. Uniform skeleton: root scaled, every bone = target length x unit source bone direction.
    bones = src[:, 1:] - np.take(src, _BONE_PARENT, axis=1)  # (3, 21, N)
    blen = np.sqrt(bones[0] ** 2 + bones[1] ** 2 + bones[2] ** 2)  # (21, N)
    _raise_if_any(blen == 0.0, None, "zero-length bone (a joint coincides with its parent)")
    # Leg length = max|offset| of the lower-leg joints = their bone lengths (raw dirs are unit axes).
    src_leg = blen[_LEG_BONES[0] - 1, starts] + blen[_LEG_BONES[1] - 1, starts]  # (C,)
    scale = _TARGET_LEG / src_leg  # (C,)
    bones *= _TARGET_LEN / blen  # (3, 21, N) target-skeleton bone vectors
    pos = np.empty_like(src)  # (3, 22, N)
    pos[:, 0] = src[:, 0] * scale[per_frame]
    for parent, child in _FK_ORDER:
        np.add(pos[:, parent], bones[:, child - 1], out=pos[:, child])

    # 2-3. Floor (min y over the clip) to y = 0; frame 0's root to x = z = 0.
    floor = np.minimum.reduceat(pos[1].min(axis=0), starts)  # (C,)
    x0, z0 = pos[0, 0, starts], pos[2, 0, starts]  # (C,)

    # 4. Face z+ at frame 0: between(forward, z) is a pure yaw since forward.y == 0.
    f0 = pos[:, :, starts]  # (3, 22, C)
    across = (f0[:, _R_HIP] - f0[:, _L_HIP]) + (f0[:, _R_SDR] - f0[:, _L_SDR])  # (3, C)
    across = across / np.sqrt((across**2).sum(axis=0))
    forward = np.stack([across[2], np.zeros_like(across[0]), -across[0]], axis=-1)  # (C, 3) y x across
    _raise_if_any(
        ~(np.abs(forward).sum(axis=-1) > 0.0), starts,
        "undefined facing direction at the clip's first frame (hip + shoulder vectors cancel "
        "or point straight up)",
    )
    forward /= np.sqrt((forward**2).sum(axis=-1, keepdims=True))
    face_q = qbetween(forward, np.array([0.0, 0.0, 1.0]))  # (C, 4)
    # forward == -z exactly: between() is 0/0 there; the rotation it stands for is 180 deg yaw.
    flipped = (forward[:, 2] == -1.0) & (forward[:, 0] == 0.0)
    face_q[flipped] = (0.0, 0.0, 1.0, 0.0)
    face_m = quat_to_matrix(face_q)  # (C, 3, 3)
    m00, m02 = face_m[:, 0, 0][per_frame], face_m[:, 0, 2][per_frame]  # (N,)
    m20, m22 = face_m[:, 2, 0][per_frame], face_m[:, 2, 2][per_frame]
    px = pos[0] - x0[per_frame]  # (22, N)
    pz = pos[2] - z0[per_frame]
    glob = np.empty_like(pos)  # (3, 22, N) the "global" positions
    glob[0] = m00 * px + m02 * pz
    glob[1] = pos[1] - floor[per_frame]
    glob[2] = m20 * px + m22 * pz
    return glob


def _features_from_global(glob: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Steps 5-9 of the reference pipeline on concatenated canonical clips.

    Args:
        glob: ``(3, 22, N)`` float64 canonical positions from :func:`_canonicalize_core`.
        lengths: ``(C,)`` frames per clip (each >= 2), summing to N.

    Returns:
        ``(N - C, 263)`` float32 features (each clip's last frame dropped), clips in order.
    """
    n = glob.shape[2]
    starts, ends = _clip_offsets(lengths)

    # Frame pairs (t, t+1) that stay inside a clip = output rows; the last frame of each clip
    # has no successor (differences below run over the whole concatenation, N - 1 of them).
    keep = np.delete(np.arange(n - 1), ends[:-1] - 1)  # (N - C,)
    dglob = glob[:, :, 1:] - glob[:, :, :-1]  # (3, 22, N - 1)

    # 5. Foot contacts: squared displacement to the next frame below the threshold.
    dfeet = dglob[:, _FEET]  # (3, 4, N - 1)
    contacts = (dfeet[0] ** 2 + dfeet[1] ** 2 + dfeet[2] ** 2) < FOOT_CONTACT_THRESHOLD  # (4, N-1)

    # 6. IK with smoothing. Root: across (quirk: hip term j1 - j2) normalized, forward = y x across,
    # smoothed per clip, normalized, root = between(forward, z) = (|f| + f.z, 0, -f.x, 0) normalized.
    ax = (glob[0, _L_HIP] - glob[0, _R_HIP]) + (glob[0, _R_SDR] - glob[0, _L_SDR])  # (N,)
    ay = (glob[1, _L_HIP] - glob[1, _R_HIP]) + (glob[1, _R_SDR] - glob[1, _L_SDR])
    az = (glob[2, _L_HIP] - glob[2, _R_HIP]) + (glob[2, _R_SDR] - glob[2, _L_SDR])
    an = np.sqrt(ax * ax + ay * ay + az * az)
    _raise_if_any(
        ~((np.abs(az) + np.abs(ax)) > 0.0), None,
        "undefined IK facing direction ((j1 - j2) + (j17 - j16) is zero or vertical)",
    )
    fwd = np.stack([az / an, -ax / an])  # (2, N) forward x, z (forward y is 0)
    fwd = _smooth_forward(fwd, lengths, starts)
    fn = np.sqrt(fwd[0] ** 2 + fwd[1] ** 2)
    _raise_if_any(fn == 0.0, None, "smoothed IK facing direction cancels to zero")
    fx, fz = fwd[0] / fn, fwd[1] / fn  # (N,)
    rw = np.sqrt(fx * fx + fz * fz) + fz  # (N,) root quaternion (rw, 0, ry, 0)
    ry = -fx
    rn = np.sqrt(rw * rw + ry * ry)
    flipped = rn == 0.0  # forward == -z exactly: 180 deg yaw (see above)
    rn[flipped] = 1.0
    ry[flipped] = 1.0
    rw /= rn
    ry /= rn
    rw[starts] = 1.0  # frame 0 of every clip: identity root rotation (reference quirk)
    ry[starts] = 0.0

    # Bone rotations G_j = between(raw_j, unit bone_j), then local_j = inv(G_parent) * G_j.
    v = glob[:, 1:] - np.take(glob, _BONE_PARENT, axis=1)  # (3, 21, N)
    v /= np.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    ux, uy, uz = _U  # (21, 1) each
    quat = np.empty((4, HML_JOINTS, n))  # (4, 22, N) joint 0 = root, joints 1.. = G_j
    quat[0, 0], quat[1, 0], quat[2, 0], quat[3, 0] = rw, 0.0, ry, 0.0
    g = quat[:, 1:]  # (4, 21, N) view
    # |u| = 1 and |v| = 1, so sqrt(|u|^2 |v|^2) = 1 (to rounding).
    np.add(1.0, ux * v[0] + uy * v[1] + uz * v[2], out=g[0])
    np.subtract(uy * v[2], uz * v[1], out=g[1])  # u x v
    np.subtract(uz * v[0], ux * v[2], out=g[2])
    np.subtract(ux * v[1], uy * v[0], out=g[3])
    gn = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2 + g[3] ** 2)  # (21, N)
    _raise_if_any(
        gn == 0.0, None,
        "a bone points exactly opposite its rest direction, so between() is undefined (0/0)",
    )
    g /= gn
    gw, gx, gy, gz = g
    pw, px_, py_, pz_ = np.take(quat, _CHAIN_PARENT, axis=1)  # (21, N) each
    lw = pw * gw + px_ * gx + py_ * gy + pz_ * gz  # (21, N) conj(P) * G
    lx = pw * gx - px_ * gw - py_ * gz + pz_ * gy
    ly = pw * gy + px_ * gz - py_ * gw - pz_ * gx
    lz = pw * gz - px_ * gy + py_ * gx - pz_ * gw
    del pw, px_, py_, pz_, v, g, gw, gx, gy, gz, quat
    # Features are written feature-major, ``fm[d, t]``, so every write below is a contiguous row
    # pass; one transposing copy at the end gives the frame-major float32 rows. Columns of the
    # frame-difference features at each clip's last frame are never kept (see ``keep``).
    fm = np.empty((HML_FEATURE_DIM, n))  # (263, N)
    blocks = feature_blocks(HML_JOINTS)
    ric = fm[blocks["ric"]].reshape(HML_JOINTS - 1, 3, n)  # (21, 3, N) views
    rot = fm[blocks["rotations"]].reshape(HML_JOINTS - 1, 6, n)  # (21, 6, N)
    vel = fm[blocks["local_velocities"]].reshape(HML_JOINTS, 3, n)[:, :, :-1]  # (22, 3, N - 1)

    # 6D = rotation-matrix columns 0 and 1.
    xx, yy, zz = lx * lx, ly * ly, lz * lz
    xy, xz, yz = lx * ly, lx * lz, ly * lz
    wx, wy, wz = lw * lx, lw * ly, lw * lz
    np.subtract(1.0, 2.0 * (yy + zz), out=rot[:, 0])
    np.multiply(2.0, xy + wz, out=rot[:, 1])
    np.multiply(2.0, xz - wy, out=rot[:, 2])
    np.multiply(2.0, xy - wz, out=rot[:, 3])
    np.subtract(1.0, 2.0 * (xx + zz), out=rot[:, 4])
    np.multiply(2.0, yz + wx, out=rot[:, 5])
    del xx, yy, zz, xy, xz, yz, wx, wy, wz, lw, lx, ly, lz

    # Rotating by the root quaternion (w, 0, y, 0): x' = c x + s z, z' = -s x + c z.
    c = 1.0 - 2.0 * ry * ry  # (N,)
    s = 2.0 * rw * ry

    # Root: angular velocity asin(y of r[t+1] inv(r[t])); velocity r[t+1] (root[t+1] - root[t]).
    c1, s1 = c[1:], s[1:]  # (N - 1,)
    np.arcsin(ry[1:] * rw[:-1] - rw[1:] * ry[:-1], out=fm[0, :-1])
    np.add(c1 * dglob[0, 0], s1 * dglob[2, 0], out=fm[1, :-1])
    np.subtract(c1 * dglob[2, 0], s1 * dglob[0, 0], out=fm[2, :-1])
    fm[3] = glob[1, 0]  # root height

    # 7. Rotation-invariant positions: root x,z removed, rotated by r[t]; joints 1..21.
    rel_x = glob[0, 1:] - glob[0, 0]  # (21, N)
    rel_z = glob[2, 1:] - glob[2, 0]
    np.add(c * rel_x, s * rel_z, out=ric[:, 0])
    ric[:, 1] = glob[1, 1:]
    np.subtract(c * rel_z, s * rel_x, out=ric[:, 2])
    del rel_x, rel_z

    # 8. Local velocities: r[t] applied to global[t+1] - global[t], all joints.
    c0, s0 = c[:-1], s[:-1]  # (N - 1,)
    np.add(c0 * dglob[0], s0 * dglob[2], out=vel[:, 0])
    vel[:, 1] = dglob[1]
    np.subtract(c0 * dglob[2], s0 * dglob[0], out=vel[:, 2])
    fm[blocks["foot_contacts"], :-1] = contacts

    # 9. The kept frames, frame-major float32 (N - C, 263).
    return np.take(fm, keep, axis=1).T.astype(np.float32, order="C")


def _run_pipeline(
    arrays: Sequence[np.ndarray], where_of: Callable[[int], str], *, canonical_only: bool = False
) -> list[np.ndarray]:
    """Run the pipeline on validated ``[T_i, 22, 3]`` arrays in cache-sized groups of clips.

    Returns per clip float32 ``[T_i - 1, 263]`` features, or with ``canonical_only`` the
    ``[T_i, 22, 3]`` canonical positions (steps 1-4 only).
    """
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    results: list[np.ndarray] = []
    for a, b in _chunks(lengths.tolist(), _CHUNK_FRAMES):
        lens = lengths[a:b]
        starts, ends = _clip_offsets(lens)
        src = np.empty((3, HML_JOINTS, int(ends[-1])))  # (3, 22, N) float64
        for arr, s, e in zip(arrays[a:b], starts, ends):
            src[:, :, s:e] = arr.transpose(2, 1, 0)
        # Degenerate poses (zero-length bones, undefined facing) are detected inside and raised
        # as _DegenerateFrame; 0/0 warnings on the way there are expected, hence the errstate.
        try:
            with np.errstate(invalid="ignore", divide="ignore"):
                glob = _canonicalize_core(src, lens)  # (3, 22, N)
                if canonical_only:
                    out = glob.transpose(2, 1, 0).astype(np.float32)  # (N, 22, 3)
                    out_lens = lens
                else:
                    out = _features_from_global(glob, lens)  # (N - C, 263)
                    out_lens = lens - 1
        except _DegenerateFrame as err:
            clip = int(np.searchsorted(ends, err.frame, side="right"))
            raise ValueError(
                f"{where_of(a + clip)}degenerate pose at frame {err.frame - int(starts[clip])}: "
                f"{err.reason}"
            ) from None
        out_ends = np.cumsum(out_lens)
        bad_rows = ~np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            clip = int(np.searchsorted(out_ends, row, side="right"))
            frame = row - int(out_ends[clip] - out_lens[clip])
            what = "canonical joints" if canonical_only else "features"
            # A backstop: the checks inside should have named the problem already.
            raise ValueError(
                f"{where_of(a + clip)}the HumanML3D pipeline produced non-finite {what} (first at "
                f"frame {frame}): degenerate pose"
            )
        results.extend(np.split(out, out_ends[:-1]))
    return results


def canonicalize_joints(joints: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Steps 1-4 of :func:`joints_to_features`: the positions the features describe.

    Retargets ``[T, 22, 3]`` joints to the uniform skeleton (bone lengths
    ``TARGET_BONE_LENGTHS``, root scaled by the leg-length ratio), puts the clip on the floor,
    moves frame 0's root to x = z = 0 and rotates it to face z+. Returns float32 ``[T, 22, 3]``;
    ``features_to_joints(joints_to_features(j))`` reproduces its first ``T - 1`` frames.
    """
    where = _where(name)
    arr = _check_joints(joints, where)
    return _run_pipeline([arr], lambda i: where, canonical_only=True)[0]


def joints_to_features(joints: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """HumanML3D features of one clip of global joint positions (the reference ``process_file``).

    Retargets to the uniform skeleton, puts the clip on the floor at the origin facing z+, and
    computes the 263-d features with foot-contact threshold 0.002 and IK smoothing sigma 20.

    Args:
        joints: ``[T, 22, 3]`` (T >= 2) global positions, y up, metres; or ``[B, T, 22, 3]``.
        name: clip id or path, quoted in error messages.

    Returns:
        float32 ``[T - 1, 263]`` (or ``[B, T - 1, 263]``).
    """
    where = _where(name)
    arr = _check_joints(joints, where, allow_batch=True)
    if arr.ndim == 3:
        return _run_pipeline([arr], lambda i: where)[0]
    feats = _run_pipeline(list(arr), lambda i: _where(name, i))
    return np.stack(feats)


def joints_to_features_batch(
    joints_list: Sequence[np.ndarray],
    *,
    names: Sequence[str] | None = None,
    name: str | None = None,
) -> list[np.ndarray]:
    """:func:`joints_to_features` for many clips of any lengths (the dataset-preparation path).

    Clips are concatenated along the frame axis and every per-frame step runs once on the whole
    group; the result for each clip equals :func:`joints_to_features` on that clip.

    Args:
        joints_list: ``[T_i, 22, 3]`` arrays (T_i >= 2).
        names: optional clip ids, quoted (with the list index) in error messages.
        name: optional label of the whole batch, quoted in error messages.

    Returns:
        list of float32 ``[T_i - 1, 263]`` arrays.
    """
    where = _where(name)
    _check_names(names, len(joints_list), where)
    arrays = [_check_joints(j, _where(name, i, names)) for i, j in enumerate(joints_list)]
    if not arrays:
        return []
    return _run_pipeline(arrays, lambda i: _where(name, i, names))


# ----------------------------------------------------------------------------- augmentation


def mirror_joints(joints: np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Mirror joint positions left <-> right: swap left/right joints and negate x.

    Args:
        joints: ``[..., 22, 3]`` positions.
        name: clip id or path, quoted in error messages.

    Returns:
        float32 ``[..., 22, 3]``; mirroring twice gives the input back.
    """
    where = _where(name)
    arr = _as_real_array(joints, "joints", where)
    if arr.ndim < 2 or arr.shape[-2:] != (HML_JOINTS, 3):
        raise ValueError(f"{where}expected joints of shape [..., {HML_JOINTS}, 3], got {tuple(arr.shape)}")
    if arr.size:
        _check_finite(arr.reshape((-1,) + arr.shape[-2:]), "joints", where)
    out = arr[..., MIRROR_PERM, :].astype(np.float32)  # (..., 22, 3) fancy index = copy
    out[..., 0] *= -1.0
    return out
