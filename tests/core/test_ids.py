"""Time-ordered uuids for bulk writes (gridgov.core.ids)."""

from __future__ import annotations

import os
import time
import uuid

from gridgov.core.ids import random_bytes, uuid7


def test_a_uuid7_is_a_valid_version_7_uuid_with_the_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_uuid7s_made_one_after_another_only_ever_grow() -> None:
    values = [uuid7() for _ in range(20_000)]  # several thousand land in one millisecond
    assert values == sorted(values)
    assert len(set(values)) == len(values)


def test_a_uuid7_carries_the_time_it_was_made_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= int.from_bytes(value.bytes[:6], "big") <= after + 5


def test_uuid7s_differ_in_their_random_tail() -> None:
    tails = {uuid7().bytes[8:] for _ in range(1000)}
    assert len(tails) == 1000


def test_a_forked_process_draws_other_random_bytes_than_its_parent() -> None:
    """The ledger reader and gunicorn's workers are forks: inherited bytes would be the same
    AES-GCM nonces (and uuid tails) in two processes."""
    random_bytes(8)  # the pool holds bytes the child would otherwise inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send what it draws, leave at once
        try:
            os.write(write, random_bytes(32))
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child != random_bytes(32)
