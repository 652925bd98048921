"""Vectorized numpy quaternion and 6D-rotation helpers.

Conventions follow the HumanML3D reference code: quaternions are ``(w, x, y, z)``, products are
Hamilton products, and every function broadcasts over leading dimensions (``(..., 4)``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "qmul",
    "qrot",
    "qinv",
    "qnormalize",
    "qbetween",
    "qfrom_axis_angle",
    "quat_to_matrix",
    "matrix_to_quat",
    "quat_to_cont6d",
    "cont6d_to_matrix",
]


def qnormalize(q: np.ndarray) -> np.ndarray:
    """Unit-normalize quaternions ``(..., 4)``."""
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of unit quaternions (the conjugate): ``(w, -x, -y, -z)``."""
    out = np.array(q, copy=True)
    out[..., 1:] *= -1
    return out


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product ``q * r`` of ``(..., 4)`` arrays (broadcasting)."""
    q, r = np.broadcast_arrays(q, r)
    w1, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    w2, x2, y2, z2 = r[..., 0], r[..., 1], r[..., 2], r[..., 3]
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v (..., 3)`` by unit quaternions ``q (..., 4)`` (broadcasting)."""
    q, _ = np.broadcast_arrays(q, np.empty(v.shape[:-1] + (4,), dtype=q.dtype))
    qvec = q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction ``u`` to ``v`` (both ``(..., 3)``).

    ``normalize([sqrt(|u|^2 |v|^2) + u.v, u x v])`` exactly as the reference computes it
    (the inputs need not be unit vectors).
    """
    u, v = np.broadcast_arrays(u, v)
    w = np.sqrt((u**2).sum(-1) * (v**2).sum(-1)) + (u * v).sum(-1)
    return qnormalize(np.concatenate([w[..., None], np.cross(u, v)], axis=-1))


def qfrom_axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Quaternions from rotation axes ``(..., 3)`` (normalized here) and angles in radians ``(...)``."""
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * angle[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` -> rotation matrices ``(..., 3, 3)``."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = np.stack(
        [
            1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` with ``w >= 0``.

    Uses the numerically stable branch per element (largest diagonal term).
    """
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # Candidate 4*component^2 values; pick the largest per row for stability.
    cand = np.stack(
        [1 + tr, 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
         1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]],
        axis=-1,
    )
    best = cand.argmax(-1)
    s = np.sqrt(np.maximum(cand[np.arange(len(m)), best], 1e-12)) * 2  # = 4 * |component|
    q = np.empty((len(m), 4))
    r21, r12 = m[:, 2, 1], m[:, 1, 2]
    r02, r20 = m[:, 0, 2], m[:, 2, 0]
    r10, r01 = m[:, 1, 0], m[:, 0, 1]
    rows = [
        np.stack([s / 4, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s], -1),
        np.stack([(r21 - r12) / s, s / 4, (r01 + r10) / s, (r02 + r20) / s], -1),
        np.stack([(r02 - r20) / s, (r01 + r10) / s, s / 4, (r12 + r21) / s], -1),
        np.stack([(r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, s / 4], -1),
    ]
    for k in range(4):
        sel = best == k
        q[sel] = rows[k][sel]
    q = np.where(q[:, :1] < 0, -q, q)
    return qnormalize(q).reshape(shape + (4,))


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)`` -> 6D rotations ``(..., 6)``: matrix column 0 then column 1."""
    m = quat_to_matrix(q)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def cont6d_to_matrix(c: np.ndarray) -> np.ndarray:
    """6D rotations ``(..., 6)`` -> rotation matrices ``(..., 3, 3)`` by Gram-Schmidt.

    x = normalize(c0), z = normalize(x cross c1), y = z cross x; columns ``[x, y, z]``.
    """
    x = c[..., 0:3] / np.linalg.norm(c[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, c[..., 3:6])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)
