"""Motion representation: skeleton, rotations, HumanML3D features, BVH.

The HumanML3D feature conversions (numpy in, float32 out):

* :func:`joints_to_features` / :func:`joints_to_features_batch`: ``[T, 22, 3]`` global joint
  positions -> ``[T - 1, 263]`` features (the reference pipeline, batched for dataset prep).
* :func:`features_to_joints` / :func:`features_to_joints_batch`: ``[T, 263]`` (or 251-d KIT-ML)
  -> ``[T, J, 3]`` positions.
* :func:`compute_mean_std`: the published Mean/Std recipe. :func:`mirror_joints`: left/right
  mirror augmentation. :func:`canonicalize_joints`: the positions the features describe.

BVH (:mod:`motiongpt.motion.bvh`): :func:`write_bvh` exports ``[T, 22, 3]`` joints as an
SMPL-named BVH; :func:`read_bvh` / :func:`bvh_to_joints` / :func:`bvh_to_features` import any
BVH (SMPL, CMU, Mixamo names or a joint map). :func:`fix_foot_skating`
(:mod:`motiongpt.motion.foot`) pins feet during detected contacts.
"""

from motiongpt.motion.features import (
    FOOT_CONTACT_THRESHOLD,
    HML_FEATURE_DIM,
    HML_JOINTS,
    KIT_FEATURE_DIM,
    KIT_JOINTS,
    canonicalize_joints,
    feature_blocks,
    feature_dim,
    features_to_joints,
    features_to_joints_batch,
    joints_to_features,
    joints_to_features_batch,
    mirror_joints,
    n_joints_from_dim,
)
from motiongpt.motion.ik import inverse_kinematics, random_motion, uniform_skeleton
from motiongpt.motion.stats import compute_mean_std
from motiongpt.motion.bvh import BVH, BVHError, bvh_to_features, bvh_to_joints, read_bvh, write_bvh
from motiongpt.motion.foot import detect_foot_contacts, fix_foot_skating

__all__ = [
    "FOOT_CONTACT_THRESHOLD",
    "HML_FEATURE_DIM",
    "HML_JOINTS",
    "KIT_FEATURE_DIM",
    "KIT_JOINTS",
    "canonicalize_joints",
    "compute_mean_std",
    "feature_blocks",
    "feature_dim",
    "features_to_joints",
    "features_to_joints_batch",
    "inverse_kinematics",
    "joints_to_features",
    "joints_to_features_batch",
    "mirror_joints",
    "n_joints_from_dim",
    "random_motion",
    "uniform_skeleton",
    "BVH",
    "BVHError",
    "bvh_to_features",
    "bvh_to_joints",
    "read_bvh",
    "write_bvh",
    "detect_foot_contacts",
    "fix_foot_skating",
]
