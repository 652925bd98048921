"""The package drops bitsandbytes' optional-kernel notice (printed on every command on AVX512-BF16
CPUs), and only that record."""

from __future__ import annotations

import logging

import motiongpt  # noqa: F401  (installs the filter)


def test_optional_kernel_notice_dropped_other_records_kept(caplog):
    log = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        log.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure ...", "offline")
        log.warning("another bitsandbytes warning")
    assert [r.getMessage() for r in caplog.records] == ["another bitsandbytes warning"]
