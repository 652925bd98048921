"""motiongpt: fine-tune LLMs to generate human motion.

Library code only; the top-level scripts (``finetune_motion.py``, ``generate_motion.py``,
``eval.py``, ``scripts/``) are thin wrappers around this package.
"""

__version__ = "0.1.0"


def _drop_optional_kernel_notice() -> None:
    """``import peft`` imports bitsandbytes when it is installed, and on CPUs with AVX512-BF16
    bitsandbytes then tries to fetch an optional 4-bit CPU kernel from the Hugging Face hub and
    logs a warning when it cannot ("Failed to load CPU gemm_4bit_forward from kernels-community"),
    on every command, although nothing here is quantized and nothing is fetched by design
    (bitsandbytes falls back to its own kernel). Only that one record is dropped; the logger's
    other messages pass."""
    import logging

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward from kernels-community")

    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_Filter())


_drop_optional_kernel_notice()
