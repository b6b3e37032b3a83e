"""glibc malloc tuning: it takes on glibc, and the trim runs only after large work."""

import platform

import pytest

from rechroma.memory import TRIM_AFTER_PIXELS, release_memory, tune_malloc

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_thresholds_take_on_glibc() -> None:
    assert tune_malloc() is True


@glibc
def test_trim_only_after_large_photos() -> None:
    assert release_memory(TRIM_AFTER_PIXELS - 1) is False
    assert release_memory(12_000_000) is True
