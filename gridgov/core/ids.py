"""Time-ordered public ids for rows written in bulk.

A random (version 4) uuid lands anywhere in its unique index, so a million of them written at
once touch the whole index again and again; a version 7 uuid (RFC 9562: 48-bit Unix time in
milliseconds, then random bits) grows with time, so bulk writes append to the index instead.
Within one millisecond a 12-bit counter keeps the ids of this process increasing (method 1 of
RFC 9562, section 6.2); 62 random bits keep them unguessable.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = [0, 0]  # milliseconds, counter
_pool = [b"", 0]


def _forget_after_fork() -> None:
    """A forked process (a gunicorn worker, the ledger reader) must not hand out the bytes its
    parent will hand out too: the same AES-GCM nonces, the same ids."""
    _pool[0], _pool[1] = b"", 0


os.register_at_fork(after_in_child=_forget_after_fork)


def random_bytes(size: int) -> bytes:
    """``os.urandom`` bytes drawn 64 KiB at a time (one system call for thousands of ids)."""
    pool, at = _pool
    assert isinstance(pool, bytes) and isinstance(at, int)
    if at + size > len(pool):
        pool, at = os.urandom(65536), 0
    _pool[0], _pool[1] = pool, at + size
    return pool[at : at + size]


def uuid7_bytes() -> bytes:
    """The 16 bytes of a new version 7 uuid, increasing within this process."""
    with _lock:
        ms = time.time_ns() // 1_000_000
        last, counter = _last
        if ms <= last:
            ms, counter = last, counter + 1
            if counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                ms, counter = last + 1, 0
        else:
            counter = 0
        _last[0], _last[1] = ms, counter
        tail = bytearray(random_bytes(8))
    tail[0] = (tail[0] & 0x3F) | 0x80  # the RFC 4122/9562 variant
    return ms.to_bytes(6, "big") + (0x7000 | counter).to_bytes(2, "big") + bytes(tail)


def uuid7() -> uuid.UUID:
    """A new version 7 uuid."""
    return uuid.UUID(bytes=uuid7_bytes())
