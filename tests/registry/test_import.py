"""Ledger import: a dry run that checks every row, then an all-or-nothing commit.

Personas (tests/world.py): the grid worker of grid A imports her grid's household ledger; the
grid worker of grid B works next door; the administrator sees everything.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.core.files.storage import default_storage
from django.db import connection

from gridgov.core.errors import Conflict, DomainError, PermissionDenied
from gridgov.privacy import crypto
from gridgov.registry.ledger import importer
from gridgov.registry.ledger.importer import (
    import_progress,
    imports_visible_to,
    ledger_check,
    ledger_commit,
    ledger_preview,
    ledger_recheck,
)
from gridgov.registry.ledger.readers import LedgerFileError
from gridgov.registry.models import (
    Building,
    Household,
    ImportStatus,
    LedgerImport,
    LedgerTemplate,
    Person,
    PersonTag,
    RecordChange,
    Room,
    TagType,
)
from gridgov.registry.selectors import record_history
from tests.registry import factories
from tests.registry.data.ledgers import (
    GRID_A,
    GRID_B,
    HEADERS,
    csv_bytes,
    household_rows,
    person,
    write_csv,
    write_xlsx,
)
from tests.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.VAR_DIR = tmp_path / "var"


def stored_files(settings: Any) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "ledger"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def home_in_grid_b(world: World) -> Household:
    """A household in grid B, in an estate the ledgers here do not name."""
    where = factories.building(world.grid_worker_b, where=factories.IN_GRID_B, estate="燕园")
    return factories.household(world.grid_worker_b, factories.room(world.grid_worker_b, where))


def check(actor: Any, path: Path, **kwargs: Any) -> LedgerImport:
    return ledger_check(actor=actor, file=path, file_name=path.name, **kwargs)


def sheet_rows(li: LedgerImport) -> list[tuple[Any, ...]]:
    with li.error_sheet.open("rb") as fh:
        book = openpyxl.load_workbook(io.BytesIO(fh.read()), read_only=True)
        return [tuple(r) for r in book.worksheets[0].iter_rows(values_only=True)]


# --- the happy path ---------------------------------------------------------------------------


def test_a_grid_worker_imports_her_households_ledger_from_xlsx(
    world: World, tmp_path: Path
) -> None:
    path = write_xlsx(tmp_path / "和畅园实有人口.xlsx", household_rows(3))
    li = check(world.grid_worker_a, path)
    assert li.status == ImportStatus.CHECKED, li.message
    assert (li.rows_total, li.rows_ok, li.rows_bad) == (6, 6, 0)
    assert (li.created, li.updated) == (6, 0)
    assert li.region_code == GRID_A and li.file_name == "和畅园实有人口.xlsx"
    assert li.mapping["公民身份号码"] == "id_number" and li.mapping["序号"] is None
    assert not Person.objects.exists(), "a check writes no base data"

    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.IMPORTED, li.message
    assert (li.created, li.updated, li.progress) == (6, 0, 6)
    assert Person.objects.count() == 6
    assert Household.objects.count() == 3 and Room.objects.count() == 3
    building = Building.objects.get()
    assert (building.estate, building.number, building.region_code) == ("和畅园", "1栋", GRID_A)
    assert building.grid == world.grid_a and building.community_code == GRID_A[:12]
    assert (building.lon, building.lat) == (world.grid_a.label_lon, world.grid_a.label_lat)
    for household in Household.objects.select_related("head", "room"):
        members = list(household.members.order_by("import_row"))
        assert household.head == members[0] and members[0].relation == "head"
        assert members[1].relation == "spouse" and household.region_code == GRID_A


def test_imported_people_are_encrypted_hashed_and_masked_and_remember_their_row(
    world: World, tmp_path: Path
) -> None:
    rows = household_rows(1)
    path = write_csv(tmp_path / "ledger.csv", rows)
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=check(world.grid_worker_a, path))
    head = Person.objects.get(import_row=2)
    assert head.id_number == rows[0][3] and head.phone == rows[0][4]
    assert head.id_number_hash == crypto.lookup_hash(crypto.ID_NUMBER, rows[0][3])
    assert head.phone_hash == crypto.lookup_hash(crypto.PHONE, rows[0][4])
    assert head.id_number_mask == rows[0][3][:4] + "*" * 10 + rows[0][3][-4:]
    assert head.phone_mask == rows[0][4][:3] + "****" + rows[0][4][-4:]
    assert head.birth_date == date(1970, 1, 1) and head.sex == "male"
    assert (head.person_type, head.ethnicity, head.import_batch) == ("registered", "汉族", li)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, phone FROM registry_person WHERE id = %s", [head.pk])
        raw_id, raw_phone = cursor.fetchone()
    assert raw_id.startswith("g1$") and rows[0][3] not in raw_id
    assert raw_phone.startswith("g1$") and rows[0][4] not in raw_phone
    assert not RecordChange.objects.filter(record_type="person").exists()
    first = record_history(world.grid_worker_a, head)[0]
    assert first.action == "create" and first.import_batch == li and first.import_row == 2


def test_the_same_ledger_imports_alike_from_utf8_csv(world: World, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ledger.csv", household_rows(2))
    li = check(world.grid_worker_a, path)
    assert li.status == ImportStatus.CHECKED and li.encoding == "utf-8"
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.created == 4 and Household.objects.count() == 2


def test_a_dirty_gbk_csv_with_renamed_columns_imports(world: World, tmp_path: Path) -> None:
    headers = (
        "序号",
        " 姓 名 ",
        "性别",
        "公民身份号码",
        "手机号码",
        "人口类型",
        "与户主关系",
        "所在小区",
        "楼栋",
        "单元",
        "房号",
        "网格",
    )
    ids = [factories.id_number(date(1961, 3, 9)), factories.id_number(date(1990, 12, 1))]
    spaced = f"{ids[0][:6]} {ids[0][6:14]} {ids[0][14:]}"
    place = ["和畅园", "2 栋", "1单元", "302", "和畅第001网格"]
    rows = [
        ["1", " 王  秀英 ", "女 ", spaced, "+86 139-0000-1234", "户籍", "户主", *place],
        [],
        ["2", "王磊", "男", ids[1], "13900005678", "流动人口", "儿子", *place],
        ["", "", "", "", "", "", "", "", "", "", "", ""],
    ]
    rows[0][2] = ("男" if int(ids[0][16]) % 2 else "女") + " "
    data = csv_bytes(rows, headers=headers, encoding="gbk", title="和畅社区实有人口台账（2026年）")
    path = tmp_path / "台账.csv"
    path.write_bytes(data)

    li = check(world.grid_worker_a, path)
    assert li.status == ImportStatus.CHECKED, (li.message, li.error_summary)
    assert li.encoding == "gb18030" and li.rows_total == 2
    mapped = {field for field in li.mapping.values() if field}
    assert {"name", "id_number", "phone", "person_type", "estate", "building", "room"} <= mapped
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.IMPORTED, li.message
    mother = Person.objects.get(id_number_hash=crypto.lookup_hash(crypto.ID_NUMBER, ids[0]))
    assert mother.name == "王 秀英" and mother.phone == "13900001234"
    son = Person.objects.get(name="王磊")
    assert son.person_type == "floating" and son.relation == "child"
    assert mother.household is not None and son.household == mother.household
    assert mother.household.head == mother
    room = Room.objects.get()
    assert (room.unit, room.number, room.building.number) == ("1单元", "302", "2 栋")


# --- problems ---------------------------------------------------------------------------------


def test_the_same_id_number_twice_in_a_file_is_an_error_naming_both_rows(
    world: World, tmp_path: Path
) -> None:
    rows = household_rows(2)
    rows[3][3] = rows[0][3]  # row 5 repeats row 2's id number
    rows[3][2] = rows[0][2]
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK
    assert (li.rows_total, li.rows_bad, li.rows_ok) == (4, 1, 3)
    problem = li.error_summary[0]
    assert problem["row"] == 5 and problem["column"] == "公民身份号码"
    assert "2" in problem["message"] and "5" in problem["message"]
    assert problem["value"] == rows[0][3][:4] + "*" * 10 + rows[0][3][-4:]
    with pytest.raises(Conflict):
        ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert not Person.objects.exists()


def test_a_file_with_one_invalid_id_number_imports_nothing_and_its_error_sheet_names_it(
    world: World, tmp_path: Path, english: None
) -> None:
    rows = household_rows(3)
    good = rows[2][3]
    rows[2][3] = good[:17] + ("0" if good[17] != "0" else "1")  # a wrong check character
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK
    assert (li.rows_bad, li.rows_ok) == (1, 5)
    assert "1 of 6 rows" in li.message

    sheet = sheet_rows(li)
    assert sheet[0] == ("Row", "Column", "Value", "Problem")
    row, column, value, message = sheet[1]
    assert row == 4  # the header is row 1 of the file
    assert column == "公民身份号码 (D)"
    assert value == rows[2][3][:4] + "*" * 10 + rows[2][3][-4:] and good not in value
    assert "check character" in message
    assert len(sheet) == 2

    with pytest.raises(Conflict):
        ledger_commit(actor=world.grid_worker_a, ledger_import=LedgerImport.objects.get())
    assert not Person.objects.exists() and not Building.objects.exists()


def test_each_bad_cell_is_named_with_its_problem(
    world: World, tmp_path: Path, english: None
) -> None:
    rows = [
        person(1, phone="12345"),
        person(2, sex="女", birth=date(1980, 1, 1)),
        person(3, person_type="火星人", relation="邻居", room="201"),
    ]
    rows[0][1] = ""
    rows[1][2] = "男"  # the sex disagrees with the id number
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    found = {(p["row"], p["column"]) for p in li.error_summary}
    assert {(2, "姓名"), (2, "联系电话"), (3, "性别"), (4, "人口类型"), (4, "与户主关系")} <= found
    assert li.rows_bad == 3


def test_an_id_number_already_registered_updates_that_person(world: World, tmp_path: Path) -> None:
    known = factories.person(
        world.grid_worker_a,
        name="李四",
        id_number=factories.id_number(date(1970, 1, 1), serial=501),
        phone="13911112222",
    )
    rows = household_rows(1)
    rows[0][3] = known.id_number
    rows[0][1] = "李四"
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.CHECKED, li.error_summary
    assert (li.created, li.updated) == (1, 1)

    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert (li.created, li.updated) == (1, 1)
    known.refresh_from_db()
    assert known.phone == rows[0][4] and known.version == 2
    assert known.import_batch is None, "an updated person keeps their origin"
    change = RecordChange.objects.get(record_uuid=known.uuid, action="update")
    assert change.import_batch == li and change.actor == world.grid_worker_a
    assert change.changes["phone"] == ["139****2222", rows[0][4][:3] + "****" + rows[0][4][-4:]]
    assert "household" in change.changes
    assert Person.objects.count() == 2


def test_importing_the_same_ledger_again_changes_nothing_but_counts_updates(
    world: World, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "ledger.csv", household_rows(2))
    ledger_commit(actor=world.grid_worker_a, ledger_import=check(world.grid_worker_a, path))
    again = check(world.grid_worker_a, path)
    assert (again.created, again.updated) == (0, 4)
    again = ledger_commit(actor=world.grid_worker_a, ledger_import=again)
    assert again.status == ImportStatus.IMPORTED
    assert Person.objects.count() == 4 and Household.objects.count() == 2
    assert Building.objects.count() == 1 and Room.objects.count() == 2
    assert not RecordChange.objects.filter(action="update", record_type="person").exists()


def test_an_existing_building_is_found_by_its_address(world: World, tmp_path: Path) -> None:
    home = factories.building(world.grid_worker_a, estate="和畅园", number="1 栋")
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", household_rows(1)))
    ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert Building.objects.get() == home
    assert Room.objects.get().building == home


def test_a_household_has_one_head(world: World, tmp_path: Path) -> None:
    rows = [person(1, room="101"), person(2, room="101", sex="女")]
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK
    assert li.error_summary[0]["row"] == 3 and li.error_summary[0]["column"] == "与户主关系"


def test_a_grid_worker_may_not_import_rows_of_another_grid(world: World, tmp_path: Path) -> None:
    rows = household_rows(1) + household_rows(1, start=10, grid=GRID_B, estate="燕园")
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK and li.rows_bad == 2
    assert {p["row"] for p in li.error_summary} == {4, 5}
    assert all(p["column"] == "网格编码" and GRID_B in p["message"] for p in li.error_summary)

    leader = check(world.grid_leader, write_csv(tmp_path / "ledger.csv", rows))
    assert leader.status == ImportStatus.CHECKED and leader.region_code == GRID_A[:12]


def test_a_grid_that_does_not_exist_is_an_error(world: World, tmp_path: Path) -> None:
    rows = household_rows(1, grid="320113003001099")
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK and li.error_summary[0]["column"] == "网格编码"


def test_a_person_registered_elsewhere_is_not_taken_over(world: World, tmp_path: Path) -> None:
    elsewhere = factories.person(
        world.grid_worker_b,
        household=home_in_grid_b(world),
        id_number=factories.id_number(date(1970, 1, 1), serial=501),
    )
    rows = household_rows(1)
    rows[0][3] = elsewhere.id_number
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert li.status == ImportStatus.FAILED_CHECK
    assert li.error_summary[0]["column"] == "公民身份号码"


def test_rows_without_a_grid_column_go_to_the_grid_of_a_grid_worker(
    world: World, tmp_path: Path, english: None
) -> None:
    headers = HEADERS[:-1]
    rows = [r[:-1] for r in household_rows(1)]
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows, headers=headers))
    assert li.status == ImportStatus.CHECKED, li.message
    ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert set(Person.objects.values_list("region_code", flat=True)) == {GRID_A}

    nowhere = check(world.admin, write_csv(tmp_path / "ledger.csv", rows, headers=headers))
    assert nowhere.status == ImportStatus.FAILED_CHECK and "grid" in nowhere.message.lower()


def test_a_ledger_without_a_name_column_fails_the_check_with_a_message(
    world: World, tmp_path: Path
) -> None:
    headers = ("编号", "证件", "电话")
    rows = [["1", household_rows(1)[0][3], "13900000001"]]
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows, headers=headers))
    assert li.status == ImportStatus.FAILED_CHECK and li.message
    assert li.file, "the upload is kept for the mapping step"


def test_care_tags_are_imported_and_sensitive_ones_need_clearance(
    world: World, tmp_path: Path
) -> None:
    TagType.objects.create(code="secret", name_zh="机密对象", sensitivity=2)
    headers = (*HEADERS, "标签")
    rows = household_rows(1)
    rows[0] = [*rows[0], "独居老人、低保"]
    rows[1] = [*rows[1], "机密对象"]
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows, headers=headers))
    assert li.status == ImportStatus.FAILED_CHECK
    assert li.error_summary[0]["row"] == 3 and li.error_summary[0]["column"] == "标签"
    rows[1][-1] = "残疾人"
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows, headers=headers))
    ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    codes = set(PersonTag.objects.values_list("tag_type__code", flat=True))
    assert codes == {"elderly_alone", "low_income", "disabled"}


# --- broken files -----------------------------------------------------------------------------


def test_a_web_page_named_xlsx_is_refused_and_nothing_is_stored(
    world: World, tmp_path: Path, settings: Any, english: None
) -> None:
    path = tmp_path / "台账.xlsx"
    path.write_text("<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table>", "utf-8")
    with pytest.raises(LedgerFileError, match="web page"):
        check(world.grid_worker_a, path)
    assert not LedgerImport.objects.exists() and not stored_files(settings)


def test_a_zip_bomb_is_refused_and_nothing_is_stored(
    world: World, tmp_path: Path, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_MAX_UNPACKED_MB = 1
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types><Override ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/></Types>',
        )
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 2**20))
    with pytest.raises(LedgerFileError):
        check(world.grid_worker_a, path)
    assert not LedgerImport.objects.exists() and not stored_files(settings)


def test_an_oversized_ledger_is_refused_with_413(
    world: World, tmp_path: Path, settings: Any
) -> None:
    settings.GRIDGOV_LEDGER_MAX_MB = 0.0001
    path = write_csv(tmp_path / "ledger.csv", household_rows(5))
    with pytest.raises(DomainError) as refused:
        check(world.grid_worker_a, path)
    assert refused.value.status == 413
    assert not LedgerImport.objects.exists() and not stored_files(settings)


def test_who_may_not_write_base_data_may_not_import(world: World, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ledger.csv", household_rows(1))
    for persona in ("supervisor", "dispatcher", "unit_handler", "resident", "nobody"):
        with pytest.raises(PermissionDenied):
            check(getattr(world, persona), path)
    with pytest.raises(PermissionDenied):
        check(world.grid_worker_a, path, region=GRID_B)


# --- mapping, templates, progress -------------------------------------------------------------


def test_the_mapping_is_remembered_for_the_next_ledger_with_the_same_headers(
    world: World, tmp_path: Path
) -> None:
    headers = ("名字", "身份", "住在", "几栋", "门牌", "片区")
    rows = [[r[1], r[3], r[8], r[9], r[11], r[12]] for r in household_rows(1)]
    for row in rows:
        row[4] = "101"
    mapping = {
        "名字": "name",
        "身份": "id_number",
        "住在": "estate",
        "几栋": "building",
        "门牌": "room",
        "片区": "grid_code",
    }
    path = write_csv(tmp_path / "first.csv", rows, headers=headers)
    first = check(world.grid_worker_a, path, mapping=mapping)
    assert first.status == ImportStatus.CHECKED, first.error_summary
    template = LedgerTemplate.objects.get()
    assert template.mapping == mapping and first.template == template
    assert template.name == "first"

    second = check(world.grid_worker_a, write_csv(tmp_path / "second.csv", rows, headers=headers))
    assert second.template == template and second.mapping == mapping
    assert second.status == ImportStatus.CHECKED
    by_name = check(world.grid_worker_a, path, template="first")
    assert by_name.status == ImportStatus.CHECKED and by_name.mapping == mapping


def test_a_check_can_be_repeated_with_another_mapping(world: World, tmp_path: Path) -> None:
    headers = ("居民", "号码", "片区")
    rows = [["张三", household_rows(1)[0][3], GRID_A]]
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows, headers=headers))
    assert li.status == ImportStatus.FAILED_CHECK  # nothing says where the names are
    preview = ledger_preview(actor=world.grid_worker_a, ledger_import=li)
    assert preview["headers"] == list(headers)
    assert preview["rows"][0]["cells"][1] == rows[0][1][:4] + "*" * 10 + rows[0][1][-4:]
    li = ledger_recheck(
        actor=world.grid_worker_a,
        ledger_import=li,
        mapping={"居民": "name", "号码": "id_number", "片区": "grid_code"},
    )
    assert li.status == ImportStatus.CHECKED, li.error_summary
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert Person.objects.get().household is None
    with pytest.raises(Conflict):
        ledger_recheck(actor=world.grid_worker_a, ledger_import=li)


def test_progress_is_visible_while_a_ledger_is_checked_and_committed(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(importer, "BATCH", 2)
    path = write_csv(tmp_path / "ledger.csv", household_rows(4))
    seen: list[tuple[str, int, int]] = []

    def watch(li: LedgerImport) -> None:
        stored = LedgerImport.objects.get(pk=li.pk)
        seen.append((stored.status, stored.progress, import_progress(stored)))

    li = ledger_check(actor=world.grid_worker_a, file=path, file_name="l.csv", on_progress=watch)
    checking = [done for status, done, _shown in seen if status == ImportStatus.CHECKING]
    assert checking == [2, 4, 6, 8], "the check writes its progress as it goes"
    seen.clear()
    ledger_commit(actor=world.grid_worker_a, ledger_import=li, on_progress=watch)
    importing = [shown for status, _done, shown in seen if status == ImportStatus.IMPORTING]
    assert importing == [2, 4, 6, 8], "the commit's progress is readable while it runs"
    assert seen[-1][0] == ImportStatus.IMPORTED and seen[-1][2] == 8


# --- commit -----------------------------------------------------------------------------------


def test_a_commit_is_all_or_nothing_when_the_registry_changed_since_the_check(
    world: World, tmp_path: Path
) -> None:
    rows = household_rows(3)
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    factories.person(
        world.grid_worker_b,
        household=home_in_grid_b(world),
        id_number=rows[4][3],
    )
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.FAILED
    assert "6" in li.message and "公民身份号码" in li.message
    assert Person.objects.count() == 1 and Building.objects.count() == 1
    with pytest.raises(Conflict):
        ledger_commit(actor=world.grid_worker_a, ledger_import=li)


def test_an_import_is_committed_once(world: World, tmp_path: Path) -> None:
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", household_rows(1)))
    ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    with pytest.raises(Conflict):
        ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert Person.objects.count() == 2


def test_imports_are_seen_by_their_author_and_the_region_s_editors(
    world: World, tmp_path: Path
) -> None:
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", household_rows(1)))
    assert list(imports_visible_to(world.grid_worker_a)) == [li]
    assert list(imports_visible_to(world.grid_leader)) == [li]
    assert list(imports_visible_to(world.admin)) == [li]
    assert not imports_visible_to(world.grid_worker_b).exists()
    assert not imports_visible_to(world.resident).exists()
    with pytest.raises(PermissionDenied):
        ledger_commit(actor=world.grid_worker_b, ledger_import=li)


def test_the_error_sheet_is_stored_under_ledger(world: World, tmp_path: Path) -> None:
    rows = household_rows(1)
    rows[0][3] = "123"
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert str(li.error_sheet.name).startswith("ledger/errors/")
    assert str(li.file.name).startswith("ledger/") and default_storage.exists(str(li.file.name))


def test_a_long_ledger_finds_registered_people_among_the_loaded_hashes(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 2)
    monkeypatch.setattr(importer, "KNOWN_AFTER_BATCHES", 1)
    rows = household_rows(4)
    known = factories.person(world.grid_worker_a, name="老住户", grid=GRID_A, id_number=rows[6][3])
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    assert (li.created, li.updated) == (7, 1), li.error_summary
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert (li.created, li.updated) == (7, 1)
    known.refresh_from_db()
    assert known.name == rows[6][1] and Person.objects.count() == 8


def test_a_write_that_fails_rolls_the_whole_import_back(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, english: None
) -> None:
    rows = household_rows(2)
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    factories.person(world.grid_worker_a, name="抢先登记", grid=GRID_A, id_number=rows[3][3])
    # the look-up misses the person registered meanwhile: the database's unique index refuses
    monkeypatch.setattr(importer._Known, "candidates", lambda self, hashes: [])
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.FAILED and "registry changed" in li.message
    assert Person.objects.count() == 1 and not Household.objects.exists()


def test_an_old_xls_workbook_is_checked_too(world: World, english: None) -> None:
    path = Path(__file__).parent / "data" / "ledger.xls"  # a title row above the header
    li = check(world.grid_worker_a, path)
    assert li.rows_total == 2 and li.encoding == ""
    assert li.mapping["公民身份号码"] == "id_number" and li.mapping["出生日期"] == "birth_date"
    problems = [(p["row"], p["column"], p["message"]) for p in li.error_summary]
    assert problems == [
        (3, "性别", "The sex does not match the id number, which says female."),
        (4, "公民身份号码", "The check character of the id number is wrong (expected X)."),
    ]
    assert not Person.objects.exists()


@pytest.mark.parametrize("threaded", [True, False], ids=["writer thread", "one thread"])
def test_a_commit_writes_the_same_on_a_second_thread_or_on_one(
    world: World,
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    threaded: bool,
) -> None:
    settings.GRIDGOV_LEDGER_WRITER_THREAD = threaded
    monkeypatch.setattr(importer, "BATCH", 2)
    rows = household_rows(3)
    li = check(world.grid_worker_a, write_csv(tmp_path / "ledger.csv", rows))
    li = ledger_commit(actor=world.grid_worker_a, ledger_import=li)
    assert li.status == ImportStatus.IMPORTED and Person.objects.count() == 6
    assert all(h.head is not None for h in Household.objects.select_related("head"))

    more = household_rows(2, start=20, estate="燕园")
    again = check(world.grid_worker_a, write_csv(tmp_path / "more.csv", more))
    factories.person(world.grid_worker_a, name="抢先登记", grid=GRID_A, id_number=more[3][3])
    monkeypatch.setattr(importer._Known, "candidates", lambda self, hashes: [])
    again = ledger_commit(actor=world.grid_worker_a, ledger_import=again)
    assert again.status == ImportStatus.FAILED, again.message
    assert Person.objects.count() == 7
