"""Time-ordered uuids for bulk writes (gridgov.core.ids)."""

from __future__ import annotations

import time
import uuid

from gridgov.core.ids import uuid7


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
