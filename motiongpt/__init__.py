"""motiongpt: fine-tune LLMs to generate human motion.

Library code only; the top-level scripts (``finetune_motion.py``, ``generate_motion.py``,
``eval.py``, ``scripts/``) are thin wrappers around this package.
"""

__version__ = "0.1.0"
