"""Generic helpers shared by the training and data stages.

* :mod:`motiongpt.utils.atomic`: crash-safe writes of files and whole directories, file hashes.
* :mod:`motiongpt.utils.files`: JSON inputs read with errors that name the file.
* :mod:`motiongpt.utils.metrics`: a JSONL + TensorBoard scalar logger that survives resume.
* :mod:`motiongpt.utils.train_state`: pickle-free optimizer / scheduler / RNG state for exact resume.
"""
