"""A long ledger is read and checked in a second process (``ledger.feed``) while the importer
places and writes it: the outcome is the same as in one process, to the row and the message.

Personas (tests/world.py): the grid worker of grid A imports her grid's household ledger.
Here "long" is shrunk: batches of two rows, the second process taking over after two rows.
"""

from __future__ import annotations

import multiprocessing
import signal
from pathlib import Path
from typing import Any

import pytest

from gridgov.core.masking import mask_id_number
from gridgov.registry.ledger import feed, importer
from gridgov.registry.ledger.importer import ledger_check, ledger_commit
from gridgov.registry.ledger.readers import LedgerFileError
from gridgov.registry.models import (
    Building,
    Household,
    ImportStatus,
    LedgerImport,
    Person,
    PersonTag,
    Room,
)
from tests.registry import factories
from tests.registry.data.ledgers import GRID_A, household_rows, write_csv, write_xlsx
from tests.world import World

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not feed.available(), reason="no fork on this platform"),
]


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[feed.Feed]:
    """Small batches, the second process after two rows; the feeds started, to look at."""
    monkeypatch.setattr(importer, "BATCH", 2)
    monkeypatch.setattr(importer, "FEED_AFTER_ROWS", 2)
    started: list[feed.Feed] = []
    real_init = feed.Feed.__init__

    def init(self: feed.Feed, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(feed.Feed, "__init__", init)
    return started


def check(actor: Any, path: Path) -> LedgerImport:
    return ledger_check(actor=actor, file=path, file_name=path.name)


def ledger_and_known(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """Seven households of two with phones, as CSV or xlsx, and the id number of one person
    the registry already holds (registered by ``register_known``)."""
    rows = household_rows(7)
    if kind == "xlsx":
        return write_xlsx(tmp_path / "ledger.xlsx", rows), rows[9][3]
    return write_csv(tmp_path / "ledger.csv", rows), rows[9][3]


def register_known(world: World, id_text: str) -> None:
    factories.person(world.grid_worker_a, name="老住户", grid=GRID_A, id_number=id_text)


def start_afresh() -> None:
    Household.objects.update(head=None)
    Person.objects.all().delete()
    Household.objects.all().delete()
    Room.objects.all().delete()
    Building.objects.all().delete()


def registry_state() -> list[tuple[Any, ...]]:
    people = Person.objects.select_related("household__room__building").order_by("name")
    return [
        (
            p.name,
            p.sex,
            p.birth_date,
            p.id_number,
            p.id_number_hash,
            p.id_number_mask,
            p.phone,
            p.phone_hash,
            p.phone_mask,
            p.region_code,
            p.relation,
            p.household.room.building.estate if p.household and p.household.room else None,
            p.household.room.number if p.household and p.household.room else None,
            p.household.head.name if p.household and p.household.head else None,
            sorted(PersonTag.objects.filter(person=p).values_list("tag_type__code", flat=True)),
        )
        for p in people
    ]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_long_ledger_imports_the_same_with_a_second_process_as_with_one(
    world: World, tmp_path: Path, settings: Any, forks: list[feed.Feed], kind: str
) -> None:
    path, known = ledger_and_known(tmp_path, kind)
    register_known(world, known)
    settings.GRIDGOV_LEDGER_SECOND_PROCESS = False
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=check(world.grid_worker_a, path))
    assert li.status == ImportStatus.IMPORTED, li.message
    assert forks == []
    in_one = registry_state()
    counts = (li.rows_total, li.created, li.updated)

    start_afresh()
    register_known(world, known)
    settings.GRIDGOV_LEDGER_SECOND_PROCESS = True
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=check(world.grid_worker_a, path))
    assert li.status == ImportStatus.IMPORTED, li.message
    assert len(forks) == 1  # the commit read the rest in a second process
    assert (li.rows_total, li.created, li.updated) == counts == (14, 13, 1)
    assert registry_state() == in_one
    assert all(not f.process.is_alive() for f in forks)


def test_a_dry_run_stays_in_one_process(
    world: World, tmp_path: Path, forks: list[feed.Feed], english: None
) -> None:
    """Its own share of the work is too small to be worth the rows' journey."""
    rows = household_rows(5)
    rows[7][3] = rows[2][3]  # the same id number twice
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK and li.rows_total == 10
    assert {p["row"] for p in li.error_summary} == {9}
    assert any("row 4" in p["message"] for p in li.error_summary), li.error_summary
    assert forks == []


def test_a_bad_row_after_the_fork_imports_nothing_and_stops_the_second_process(
    world: World, tmp_path: Path, forks: list[feed.Feed], english: None
) -> None:
    rows = household_rows(5)
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    factories.person(world.grid_worker_a, name="抢先登记", grid=GRID_A, id_number=rows[8][3])
    # a second head claimed between the check and the commit: the row is refused late
    Person.objects.filter(name="抢先登记").update(closed_at="2026-01-01T00:00:00Z")
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.FAILED
    assert "Row 10, 公民身份号码" in li.message and "closed record" in li.message
    assert mask_id_number(rows[8][3]) in li.message and rows[8][3] not in li.message
    assert Person.objects.count() == 1 and not Household.objects.exists()
    assert forks and all(not f.process.is_alive() for f in forks)
    assert multiprocessing.active_children() == []


def breaking_at_row(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """Checking row 9 raises ``error`` (patched before the fork, so the child inherits it)."""
    check_row = importer._RowParser.check

    def breaks(self: Any, number: int, values: list[str]) -> Any:
        if number == 9:
            raise error
        return check_row(self, number, values)

    monkeypatch.setattr(importer._RowParser, "check", breaks)


def test_a_ledger_that_breaks_half_way_imports_nothing_and_says_why(
    world: World,
    tmp_path: Path,
    forks: list[feed.Feed],
    monkeypatch: pytest.MonkeyPatch,
    english: None,
) -> None:
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", household_rows(6)))
    breaking_at_row(
        monkeypatch, LedgerFileError("Row 9 cannot be read: the file ends inside a quoted cell.")
    )
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.FAILED
    assert li.message == (
        "Nothing was imported. Row 9 cannot be read: the file ends inside a quoted cell."
    )
    assert len(forks) == 1 and not forks[0].process.is_alive()
    assert not Person.objects.exists() and not Household.objects.exists()


def test_an_error_that_cannot_travel_still_reaches_the_importer(
    world: World,
    tmp_path: Path,
    forks: list[feed.Feed],
    monkeypatch: pytest.MonkeyPatch,
    english: None,
) -> None:
    class Unpicklable(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}/{b}")

    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", household_rows(6)))
    breaking_at_row(monkeypatch, Unpicklable(1, 2))
    with pytest.raises(feed.FeedStopped, match="Unpicklable: 1/2"):
        ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    li.refresh_from_db()
    assert li.status == ImportStatus.FAILED and "FeedStopped" in li.message
    assert not Person.objects.exists()


def test_the_second_process_ignores_the_worker_s_signal_handlers(
    world: World, tmp_path: Path, forks: list[feed.Feed], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gridgov worker`` catches SIGTERM to stop gracefully; its child must still be stoppable
    and must not keep a half-read ledger alive."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: caught.append(signum))
    try:
        rows = household_rows(6)
        li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
        assert li.status == ImportStatus.CHECKED
        factories.person(world.grid_worker_a, name="抢先登记", grid=GRID_A, id_number=rows[6][3])
        Person.objects.filter(name="抢先登记").update(closed_at="2026-01-01T00:00:00Z")
        li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
        assert li.status == ImportStatus.FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert caught == []
    assert all(f.process.exitcode is not None for f in forks)


def test_without_fork_or_when_switched_off_one_process_does_it_all(
    world: World, tmp_path: Path, settings: Any, forks: list[feed.Feed]
) -> None:
    settings.GRIDGOV_LEDGER_SECOND_PROCESS = False
    assert not feed.available()
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", household_rows(4)))
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.IMPORTED and Person.objects.count() == 8
    assert forks == []
