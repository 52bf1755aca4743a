"""Requests made on threads of their own, as concurrent clients make them (PostgreSQL tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def answer_in_thread(request: Callable[[], Any], results: list[Any]) -> threading.Thread:
    """Start ``request()`` on a new thread; its answer is appended to ``results`` and the
    thread's database connections are closed when it ends."""

    def run() -> None:
        try:
            results.append(request())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread
