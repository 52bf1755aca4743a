from __future__ import annotations

from typing import Any

import pytest

from tests.fuzz.report import summary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each operation's test its own node id, ``…::test_name[GET /api/v1/…]``.

    Schemathesis names every item after its operation, but under pytest 9 an item it makes
    without a ``parametrize`` mark keeps the bare function's node id: all of them would share
    one id, and ``--lf``, ``--deselect`` and the failure list could not tell them apart."""
    for item in items:
        if getattr(item, "operation_label", None) and "[" not in item.nodeid and item.parent:
            wanted = f"{item.parent.nodeid}::{item.name}"
            node_id = getattr(item, "_id", None)
            if node_id is not None and hasattr(node_id, "parse"):  # pytest 9: a structured id
                item._id = type(node_id).parse(wanted)
            else:
                item._nodeid = wanted


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = summary()
    if lines:
        terminalreporter.section("API fuzz")
        for line in lines:
            terminalreporter.write_line(line)
