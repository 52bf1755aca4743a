"""The rest of a long ledger read and checked in a second process while this one writes it.

A commit of a million rows is CPU-bound in one process: reading the cells, checking them and
encrypting id and phone numbers take about as long as placing the rows and writing them, and
threads cannot share that work (the GIL). ``Feed`` forks the process once the importer has seen
enough rows to know the ledger is long: the child inherits the open reader, the row checker and
the key ring as they are, goes on reading and checking batch after batch, and hands the results
back through a queue (a few batches ahead), while the parent places the rows, de-duplicates them
against the registry and writes them in its one transaction.

The child never touches the database: everything it needs was loaded before the fork, and it
leaves through ``os._exit`` without closing the inherited connections. It resets the signal
handlers it inherited (the worker's SIGTERM handler would otherwise keep it alive), ignores
SIGINT (the parent handles an interrupt and stops the child), and ends itself when its parent is
gone. An error in the child (a broken file half-way) is raised in the parent at the same point
of the ledger.

Only on platforms with ``fork`` (Linux, the BSDs); elsewhere, or with
``GRIDGOV_LEDGER_SECOND_PROCESS=0``, the importer does everything in one process.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings

#: batches the child may prepare ahead of the parent
AHEAD = 4
#: seconds between checks that the other process is still there
POLL_S = 2.0


def available() -> bool:
    """Whether ledgers may be read in a second process here."""
    if not bool(getattr(settings, "GRIDGOV_LEDGER_SECOND_PROCESS", True)):
        return False
    return "fork" in multiprocessing.get_all_start_methods()


class FeedStopped(RuntimeError):
    """The second process ended without finishing the ledger."""


class Feed:
    """Batches of ``items`` (an iterator this process stops using) turned by ``prepare`` into
    picklable lists in a forked child; iterating yields them, each passed through ``unpack``.

    Use as a context manager: leaving it stops the child whatever happened."""

    def __init__(
        self,
        items: Iterator[Any],
        prepare: Callable[[list[Any]], list[Any]],
        unpack: Callable[[list[Any]], list[Any]],
        *,
        size: int,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self.unpack = unpack
        self.queue: Any = context.Queue(maxsize=AHEAD)
        self.process = context.Process(
            target=_child,
            args=(items, prepare, size, self.queue, os.getpid()),
            name="ledger-reader",
        )
        self.process.start()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[list[Any]]:
        while True:
            try:
                kind, payload = self.queue.get(timeout=POLL_S)
            except queue.Empty:
                if not self.process.is_alive():
                    raise FeedStopped(
                        f"the process reading the ledger stopped (exit code "
                        f"{self.process.exitcode})"
                    ) from None
                continue
            if kind == "rows":
                yield self.unpack(payload)
            elif kind == "end":
                return
            else:
                raise payload

    def close(self) -> None:
        """Stop the child (at once if it is still reading) and release the queue."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10)
        self.queue.close()
        self.queue.cancel_join_thread()


def _child(
    items: Iterator[Any],
    prepare: Callable[[list[Any]], list[Any]],
    size: int,
    out: Any,
    parent: int,
) -> None:
    # rows are freed by reference counting; the collector would only walk the inherited heap
    gc.disable()
    for number in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError, TypeError):
            if callable(signal.getsignal(number)):
                signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def put(item: tuple[str, Any]) -> None:
        while True:
            try:
                out.put(item, timeout=POLL_S)
                return
            except queue.Full:
                if os.getppid() != parent:  # the parent is gone: nobody will read
                    os._exit(1)

    try:
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                put(("rows", prepare(batch)))
                batch = []
        if batch:
            put(("rows", prepare(batch)))
        put(("end", None))
    except BaseException as exc:
        error: BaseException = exc
        try:
            pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, just made
        except Exception:
            error = FeedStopped(f"{type(exc).__name__}: {exc}")
        put(("error", error))
    finally:
        out.close()
        out.join_thread()
