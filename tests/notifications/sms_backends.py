"""A text-message backend for tests: it records instead of sending."""

from __future__ import annotations


class RecordingSmsBackend:
    sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        RecordingSmsBackend.sent.append((phone, text))


class BrokenSmsBackend:
    """A gateway that refuses, naming the number in its error as real gateways do."""

    def send(self, phone: str, text: str) -> None:
        raise ConnectionError(f"gateway refused {phone}")
