"""Deterministic generated footage, so tests and benchmarks know every byte and hash.

The content of recording ``index`` of recorder ``serial`` is a seeded pseudo-random
stream produced in fixed 1 MiB blocks; the same (serial, index, size) always gives
the same bytes on any machine, and ``expected_sha256`` recomputes the capture hash
without the emulator.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator

BLOCK = 1 << 20


def footage_blocks(serial: str, index: int, size: int) -> Iterator[bytes]:
    rng = random.Random(f"bwc-footage/{serial}/{index}")
    remaining = size
    while remaining > 0:
        block = rng.randbytes(BLOCK)
        yield block[:remaining] if remaining < BLOCK else block
        remaining -= BLOCK


def expected_sha256(serial: str, index: int, size: int) -> bytes:
    h = hashlib.sha256()
    for block in footage_blocks(serial, index, size):
        h.update(block)
    return h.digest()


def write_footage(path: str, serial: str, index: int, size: int) -> bytes:
    """Write the recording to ``path`` (fsynced) and return its SHA-256."""
    h = hashlib.sha256()
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        for block in footage_blocks(serial, index, size):
            h.update(block)
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return h.digest()
