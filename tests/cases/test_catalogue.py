"""The category catalogue: the standard seed, the import's checks, JSON and xlsx round trips."""

from __future__ import annotations

import copy
import io
import zipfile
from typing import Any

import openpyxl
import pytest

from gridgov.cases import catalogue
from gridgov.cases.catalogue import (
    catalogue_export,
    catalogue_from_json,
    catalogue_from_xlsx,
    catalogue_import,
    catalogue_load_standard,
    catalogue_read,
    catalogue_to_json,
    catalogue_to_xlsx,
)
from gridgov.cases.deadlines import parse_limit
from gridgov.cases.models import Category, CategoryAttribute
from gridgov.core.errors import DomainError

#: The examples STANDARDS.md names, per scheme and class (events as people write them).
LEGACY_COMPONENTS = {
    "0101": "上水井盖",
    "0102": "污水井盖",
    "0113": "消防栓",
    "0118": "路灯",
    "0301": "公共厕所",
    "0305": "废物箱",
    "0401": "古树名木",
}
LEGACY_EVENTS = {
    "0102": "暴露垃圾",
    "0201": "非法小广告",
    "0301": "施工扰民",
    "0401": "路面塌陷",
    "0501": "无照经营游商",
}
SOCIAL_KINDS = ["矛盾纠纷", "安全隐患", "消防隐患", "治安问题", "民生诉求", "疫情防控"]


def get(scheme: str, code: str) -> Category:
    return Category.objects.select_related("parent").get(scheme=scheme, code=code)


def new_row(code: str = "0199", **fields: Any) -> dict[str, Any]:
    """A new legacy component minor under the standard major 01."""
    return {
        "scheme": "legacy",
        "code": code,
        "parent": "01",
        "class": "component",
        "name_zh": "测试设施",
        "name_en": "Test facility",
        **fields,
    }


# --- the standard catalogue ----------------------------------------------------------------------


def test_the_standard_catalogue_holds_every_example_code_of_the_standards(
    standard_categories: Any,
) -> None:
    for code, name in LEGACY_COMPONENTS.items():
        found = get("legacy", code)
        assert (found.name_zh, found.klass) == (name, "component"), code
        assert found.parent is not None and found.parent.code == code[:2]
    for code, name in LEGACY_EVENTS.items():
        found = get("legacy", "E" + code)
        assert (found.name_zh, found.klass) == (name, "event"), code
        assert catalogue.display_code(found) == code
        assert found.parent is not None and found.parent.code == "E" + code[:2]
    sewage = get("gbt47678", "01002")
    assert (sewage.name_zh, sewage.klass, sewage.parent.code) == ("污水井盖", "component", "01")


def test_every_major_of_both_standard_schemes_is_there(standard_categories: Any) -> None:
    def majors(scheme: str, klass: str) -> list[str]:
        return sorted(
            Category.objects.filter(scheme=scheme, klass=klass, parent=None).values_list(
                "code", flat=True
            )
        )

    assert majors("legacy", "component") == ["01", "02", "03", "04", "05", "06"]
    assert majors("legacy", "event") == ["E01", "E02", "E03", "E04", "E05", "E06"]
    assert majors("gbt47678", "component") == ["01", "02", "03", "04", "05"]
    assert majors("gbt47678", "event") == [f"E{n:02d}" for n in range(1, 11)]
    assert get("legacy", "E04").name_zh == "突发事件"
    assert get("gbt47678", "E01").name_zh == "市政公用设施异常"
    assert get("gbt47678", "E09").name_en == "Street order"


def test_all_three_schemes_come_with_a_realistic_number_of_minors(
    standard_categories: Any,
) -> None:
    def minors(scheme: str, klass: str) -> int:
        return Category.objects.filter(scheme=scheme, klass=klass, parent__isnull=False).count()

    assert minors("legacy", "component") >= 40
    assert minors("legacy", "event") >= 25
    assert minors("gbt47678", "component") >= 30
    assert minors("gbt47678", "event") >= 25
    assert minors("social", "event") >= 18


def test_each_social_governance_kind_has_three_to_six_subcategories(
    standard_categories: Any,
) -> None:
    majors = Category.objects.filter(scheme="social", parent=None).order_by("order")
    assert [m.name_zh for m in majors] == SOCIAL_KINDS
    for major in majors:
        names = [c.name_zh for c in major.children.all()]
        assert 3 <= len(names) <= 6, major.name_zh
    disputes = majors[0].children.values_list("name_zh", flat=True)
    assert {"邻里纠纷", "婚姻家庭纠纷", "物业纠纷", "劳动争议"} <= set(disputes)


def test_every_standard_category_is_complete_and_its_limits_parse(
    standard_categories: Any,
) -> None:
    for c in Category.objects.select_related("parent"):
        assert c.name_zh and c.name_en, c.code
        assert c.urgency_levels and set(c.urgency_levels) <= {"normal", "urgent", "critical"}
        for step in ("register", "urgent_register", "sign", "handle", "check"):
            limit = c.limit(step)
            assert limit, (c.scheme, c.code, step)  # own or the major's
            parse_limit(limit)
        if c.parent is not None:
            assert c.closing_criteria, (c.scheme, c.code)
            assert c.default_unit_kind


def test_the_standard_limits_follow_the_published_practice(standard_categories: Any) -> None:
    assert get("legacy", "0102").limit("handle") == "2h"  # missing sewage manhole cover
    assert get("gbt47678", "01002").limit("handle") == "2h"
    assert get("legacy", "E0102").limit("handle") == "4h"  # exposed garbage
    assert get("legacy", "0118").limit("handle") == "1d"  # street lamps
    assert get("legacy", "0404").limit("handle") == "5d"  # green space, from its major
    building = get("legacy", "E0101")  # unauthorised structure: stop 4 h … demolish 20 d
    assert (building.limit("sign"), building.limit("handle")) == ("4h", "20d")
    assert "7个工作日" in building.closing_criteria
    assert get("legacy", "01").limit("register") == "30m"
    assert get("legacy", "01").limit("urgent_register") == "10m"
    assert get("legacy", "0102").limit("sign") == "30m"
    assert "井盖" in get("legacy", "0102").closing_criteria


def test_suitable_standard_categories_carry_open311_attributes(standard_categories: Any) -> None:
    damage = CategoryAttribute.objects.get(category__scheme="legacy", category__code="0102")
    assert (damage.code, damage.datatype, damage.required) == ("damage", "singlevaluelist", True)
    assert {"missing", "broken", "sunken"} <= set(damage.value_keys())
    lamps = CategoryAttribute.objects.get(
        category__scheme="legacy", category__code="0118", code="lamps_out"
    )
    assert lamps.datatype == "number"
    dispute = {
        a.code: a
        for a in CategoryAttribute.objects.filter(category__scheme="social", category__code="S0101")
    }
    assert dispute["parties"].datatype == "number"
    assert (
        dispute["issues"].datatype == "multivaluelist" and "noise" in dispute["issues"].value_keys()
    )
    noise = CategoryAttribute.objects.get(category__scheme="legacy", category__code="E0301")
    assert (noise.datatype, noise.required) == ("datetime", True)


def test_loading_the_standard_twice_changes_nothing(standard_categories: Any) -> None:
    again = catalogue_load_standard()
    assert (again.created, again.changed, again.kept) == (0, 0, 0)
    assert again.unchanged == standard_categories.created


def test_loading_the_standard_keeps_an_administrators_change_unless_told_to_overwrite(
    standard_categories: Any,
) -> None:
    Category.objects.filter(scheme="legacy", code="0102").update(handle_limit="3h")
    kept = catalogue_load_standard()
    assert (kept.created, kept.changed, kept.kept) == (0, 0, 1)
    assert get("legacy", "0102").handle_limit == "3h"
    reset = catalogue_load_standard(overwrite=True)
    assert (reset.changed, reset.kept) == (1, 0)
    assert reset.changes[[c.code for c in reset.changes].index("0102")].fields == ["handle_limit"]
    assert get("legacy", "0102").handle_limit == "2h"


# --- round trips ---------------------------------------------------------------------------------


def test_an_exported_catalogue_imported_again_changes_nothing(standard_categories: Any) -> None:
    rows = catalogue_from_json(catalogue_to_json(catalogue_export()))
    assert len(rows) == Category.objects.count()
    report = catalogue_import(rows)
    assert report.ok
    assert (report.created, report.changed, report.unchanged) == (0, 0, len(rows))
    assert not report.written


def test_the_export_of_one_scheme_holds_that_scheme_only(standard_categories: Any) -> None:
    rows = catalogue_export(scheme="social")
    assert {r["scheme"] for r in rows} == {"social"}
    with pytest.raises(DomainError):
        catalogue_export(scheme="nonsense")


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        row["parent"] = row.get("parent") or ""
        row["attributes"] = [
            {k: v for k, v in a.items() if not k.startswith("_")} for a in row["attributes"]
        ]
        out.append(row)
    return sorted(out, key=lambda r: (r["scheme"], r["code"]))


def test_an_xlsx_export_reads_back_as_the_same_rows_and_imports_as_no_change(
    standard_categories: Any,
) -> None:
    exported = catalogue_export()
    data = catalogue_to_xlsx(exported)
    rows = catalogue_read(data, "categories.xlsx")
    assert _comparable(rows) == _comparable(exported)
    report = catalogue_import(rows)
    assert report.ok, report.text()
    assert (report.created, report.changed) == (0, 0)


def test_an_xlsx_edited_by_hand_updates_the_category(standard_categories: Any) -> None:
    data = catalogue_to_xlsx(catalogue_export(scheme="legacy"))
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["categories"]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[header.index("code")].value == "0102":
            row[header.index("handle_limit")].value = "3H"
            row[header.index("urgency_levels")].value = "normal, urgent"
    out = io.BytesIO()
    book.save(out)
    report = catalogue_import(catalogue_from_xlsx(out.getvalue()))
    assert report.ok, report.text()
    assert report.changed == 1
    changed = get("legacy", "0102")
    assert (changed.handle_limit, changed.urgency_levels) == ("3h", ["normal", "urgent"])


def test_a_code_excel_turned_into_a_number_gets_its_leading_zeros_back(
    standard_categories: Any,
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "categories"
    sheet.append(["scheme", "code", "parent", "class", "name_zh"])
    sheet.append(["legacy", 199, 1, "component", "测试设施"])
    sheet.append([])  # empty rows are ignored
    sheet.append(["gbt47678", 1099, 1, "component", "测试设施"])
    out = io.BytesIO()
    book.save(out)
    rows = catalogue_from_xlsx(out.getvalue())
    assert [(r["code"], r["parent"]) for r in rows] == [("0199", "01"), ("01099", "01")]
    assert catalogue_import(rows).created == 2


# --- what an import checks -----------------------------------------------------------------------


def test_a_file_with_one_bad_row_imports_nothing_and_names_the_row_and_the_field(
    standard_categories: Any, english: None
) -> None:
    before = Category.objects.count()
    rows = [new_row("0197"), new_row("0198"), new_row("0199", handle_limit="two weeks")]
    report = catalogue_import(rows)
    assert not report.ok and not report.written
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert (problem.row, problem.field, problem.code) == (3, "handle_limit", "legacy:0199")
    assert "two weeks" in problem.message
    assert "row 3 (legacy:0199) handle_limit: 'two weeks' is not a time limit" in report.text()
    assert Category.objects.count() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"scheme": "cjt"}, "scheme"),
        ({"code": "199"}, "code"),
        ({"code": "01999"}, "code"),
        ({"code": "E0199"}, "code"),  # an event code on a component row
        ({"parent": "02"}, "parent"),
        ({"parent": "07", "code": "0799"}, "parent"),  # no such major
        ({"class": "thing"}, "class"),
        ({"name_zh": ""}, "name_zh"),
        ({"name_en": "x" * 121}, "name_en"),
        ({"default_unit_kind": "police"}, "default_unit_kind"),
        ({"sign_limit": "0h"}, "sign_limit"),
        ({"check_limit": "400d"}, "check_limit"),
        ({"check_limit": "99999999999h"}, "check_limit"),
        ({"handle_limit": "9" * 400 + "d"}, "handle_limit"),
        ({"order": 10**400}, "order"),
        ({"urgency_levels": ["normal", "panic"]}, "urgency_levels"),
        ({"urgency_levels": []}, "urgency_levels"),
        ({"duplicate_radius_m": -1}, "duplicate_radius_m"),
        ({"duplicate_window_hours": "soon"}, "duplicate_window_hours"),
        ({"is_active": "maybe"}, "is_active"),
        ({"colour": "red"}, "colour"),
        ({"attributes": "damage"}, "attributes"),
    ],
)
def test_the_import_names_the_field_of_each_problem(
    standard_categories: Any, change: dict[str, Any], field: str
) -> None:
    report = catalogue_import([new_row(**{"code": "0199", **change})])
    assert [p.field for p in report.problems] == [field], report.text()
    assert not Category.objects.filter(code__in=["0199", "0799", "01999"]).exists()


@pytest.mark.parametrize(
    ("attribute", "field"),
    [
        ({"code": "bad code!", "datatype": "string", "description": "q"}, "code"),
        ({"code": "a", "datatype": "picture", "description": "q"}, "datatype"),
        ({"code": "a", "datatype": "string", "description": ""}, "description"),
        ({"code": "a", "datatype": "singlevaluelist", "description": "q"}, "values"),
        (
            {
                "code": "a",
                "datatype": "multivaluelist",
                "description": "q",
                "values": [{"key": "x", "name": "X"}, {"key": "x", "name": "Y"}],
            },
            "values",
        ),
        ({"code": "a", "datatype": "number", "description": "q", "values": ["x=X"]}, "values"),
        ({"code": "a", "datatype": "number", "description": "q", "required": "often"}, "required"),
        ({"code": "a", "datatype": "number", "description": "q", "hint": "x"}, "hint"),
    ],
)
def test_attributes_are_checked_like_open311_definitions(
    standard_categories: Any, attribute: dict[str, Any], field: str
) -> None:
    report = catalogue_import([new_row(attributes=[attribute])])
    assert len(report.problems) == 1, report.text()
    assert report.problems[0].field.endswith("." + field)
    assert report.problems[0].field.startswith("attributes[")


def test_two_attributes_with_the_same_code_are_refused(standard_categories: Any) -> None:
    twice = {"code": "count", "datatype": "number", "description": "多少？"}
    report = catalogue_import([new_row(attributes=[twice, {**twice, "order": 2}])])
    assert [p.field for p in report.problems] == ["attributes[count].code"]


def test_a_code_twice_in_the_file_is_refused_naming_both_rows(
    standard_categories: Any, english: None
) -> None:
    report = catalogue_import([new_row(), new_row()])
    assert [(p.row, p.field) for p in report.problems] == [(2, "code")]
    assert "row 1" in report.problems[0].message


def test_a_minor_cannot_hang_under_a_minor_nor_differ_in_class_from_its_major(
    standard_categories: Any,
) -> None:
    social = {"scheme": "social", "class": "event", "name_zh": "测试"}
    report = catalogue_import([{**social, "code": "S0199", "parent": "S0101"}])
    assert [p.field for p in report.problems] == ["parent"]
    report = catalogue_import([{**social, "code": "S0199", "parent": "S01", "class": "component"}])
    assert [p.field for p in report.problems] == ["class"]


def test_a_major_with_minors_cannot_become_a_minor(standard_categories: Any) -> None:
    report = catalogue_import([{"scheme": "social", "code": "S02", "parent": "S01"}])
    assert [p.field for p in report.problems] == ["parent"]
    assert "S0201" in report.problems[0].message


def test_an_event_code_is_stored_with_its_prefix_and_shown_without(
    standard_categories: Any,
) -> None:
    row = {"scheme": "legacy", "code": "0699", "parent": "06", "class": "event", "name_zh": "测试"}
    report = catalogue_import([row])
    assert report.ok and report.created == 1, report.text()
    found = get("legacy", "E0699")
    assert (found.parent.code, found.klass, catalogue.display_code(found)) == (
        "E06",
        "event",
        "0699",
    )
    assert catalogue_import([row]).unchanged == 1


def test_new_majors_and_minors_may_come_in_any_order(db: None) -> None:
    rows = [
        {"scheme": "social", "code": "X0101", "parent": "X01", "class": "event", "name_zh": "子类"},
        {
            "scheme": "social",
            "code": "X01",
            "class": "event",
            "name_zh": "大类",
            "handle_limit": "2d",
        },
    ]
    report = catalogue_import(rows)
    assert report.ok and report.created == 2, report.text()
    assert get("social", "X0101").limit("handle") == "2d"


def test_a_dry_run_reports_the_changes_and_writes_nothing(standard_categories: Any) -> None:
    report = catalogue_import(
        [new_row(), {"scheme": "legacy", "code": "0102", "handle_limit": "1h"}], dry_run=True
    )
    assert report.ok and report.dry_run and not report.written
    assert (report.created, report.changed) == (1, 1)
    assert [c.fields for c in report.changes if c.status == "changed"] == [["handle_limit"]]
    assert not Category.objects.filter(scheme="legacy", code="0199").exists()
    assert get("legacy", "0102").handle_limit == "2h"


def test_a_row_without_attributes_keeps_them_and_a_row_with_attributes_replaces_them(
    standard_categories: Any,
) -> None:
    report = catalogue_import([{"scheme": "legacy", "code": "0102", "name_en": "Sewer cover"}])
    assert report.changed == 1
    assert (
        CategoryAttribute.objects.filter(category__code="0102", category__scheme="legacy").count()
        == 1
    )
    report = catalogue_import(
        [
            {
                "scheme": "legacy",
                "code": "0102",
                "attributes": [
                    {"code": "width_cm", "datatype": "number", "description": "井盖直径（厘米）"}
                ],
            }
        ]
    )
    assert report.changed == 1 and report.changes[0].fields == ["attributes"]
    codes = list(
        CategoryAttribute.objects.filter(
            category__scheme="legacy", category__code="0102"
        ).values_list("code", "order")
    )
    assert codes == [("width_cm", 1)]


def test_retiring_a_category_is_an_import_of_is_active_false(standard_categories: Any) -> None:
    report = catalogue_import([{"scheme": "legacy", "code": "0116", "is_active": "FALSE"}])
    assert report.changed == 1
    assert get("legacy", "0116").is_active is False


def test_more_rows_than_the_limit_are_refused_before_any_check(db: None) -> None:
    rows = [new_row(f"{n:04d}") for n in range(catalogue.MAX_ROWS + 1)]
    report = catalogue_import(rows)
    assert not report.ok and report.problems[0].row == 0


# --- files ---------------------------------------------------------------------------------------


def test_formula_injection_is_neutralised_in_the_xlsx_export(standard_categories: Any) -> None:
    hostile = {
        "name_en": '=HYPERLINK("http://evil.example","click")',
        "closing_criteria": "@SUM(1+1)",
    }
    catalogue_import(
        [
            new_row(
                **hostile,
                attributes=[
                    {
                        "code": "q",
                        "datatype": "string",
                        "description": "+1+2",
                        "datatype_description": "-3",
                    }
                ],
            )
        ]
    )
    data = catalogue_to_xlsx(catalogue_export(scheme="legacy"))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name), name  # no formula anywhere
    book = openpyxl.load_workbook(io.BytesIO(data))
    cells = {
        str(c.value): c
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for c in row
        if c.value is not None
    }
    for text in [*hostile.values(), "+1+2", "-3"]:
        cell = cells[text]
        assert cell.data_type == "s", text
        assert cell.quotePrefix, text  # Excel's apostrophe: stays text when edited
    rows = catalogue_from_xlsx(data)
    back = next(r for r in rows if r["code"] == "0199")
    assert back["name_en"] == hostile["name_en"]  # the text itself is kept as it was


def test_bytes_that_are_neither_xlsx_nor_json_are_refused_naming_what_they_look_like(
    db: None, english: None
) -> None:
    with pytest.raises(DomainError) as caught:
        catalogue_read(b"scheme,code,name\nlegacy,0102,x\n", "categories.csv")
    assert caught.value.status == 422
    assert "categories.csv is neither an xlsx workbook nor a JSON file" in caught.value.message
    assert "CSV" in caught.value.message
    with pytest.raises(DomainError) as caught:
        catalogue_from_xlsx(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert caught.value.status == 422 and ".xls" in caught.value.message


def test_a_zip_that_is_not_a_workbook_is_refused(db: None, english: None) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hello")
    with pytest.raises(DomainError) as caught:
        catalogue_from_xlsx(out.getvalue())
    assert caught.value.status == 422 and "xl/workbook.xml" in caught.value.message
    with pytest.raises(DomainError) as caught:
        catalogue_from_xlsx(b"PK\x03\x04 but not really a zip file")
    assert caught.value.status == 422


def test_a_zip_bomb_is_refused_before_it_is_unpacked(db: None) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (catalogue.MAX_XLSX_UNPACKED + 1))
    assert len(out.getvalue()) < 200_000
    with pytest.raises(DomainError) as caught:
        catalogue_from_xlsx(out.getvalue())
    assert caught.value.status == 413


def test_a_file_over_the_upload_limit_is_refused(db: None, settings: Any) -> None:
    settings.GRIDGOV_UPLOAD_MAX_BYTES = 1000
    with pytest.raises(DomainError) as caught:
        catalogue_read(b"[" + b" " * 2000 + b"]")
    assert caught.value.status == 413


def test_broken_json_is_refused_naming_the_line(db: None, english: None) -> None:
    with pytest.raises(DomainError) as caught:
        catalogue_from_json(b'{"categories": [\n  {"scheme": "legacy",,}\n]}')
    assert caught.value.status == 422 and "line 2" in caught.value.message
    with pytest.raises(DomainError):
        catalogue_from_json(b'{"rows": []}')
    with pytest.raises(DomainError) as caught:
        catalogue_from_json(b"[" * 5000 + b"]" * 5000)
    assert caught.value.status == 422
    with pytest.raises(DomainError) as caught:
        catalogue_from_json(b'[{"scheme": "legacy", "order": ' + b"9" * 5000 + b"}]")
    assert caught.value.status == 422


def test_an_unknown_column_in_the_workbook_is_refused(db: None) -> None:
    book = openpyxl.Workbook()
    book.active.title = "categories"
    book.active.append(["scheme", "code", "colour"])
    book.active.append(["legacy", "0199", "red"])
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(DomainError) as caught:
        catalogue_from_xlsx(out.getvalue())
    assert "colour" in caught.value.message


def test_a_problem_of_an_attribute_row_names_the_attribute_sheet_row(
    standard_categories: Any,
) -> None:
    rows = catalogue_export(scheme="legacy")
    target = next(r for r in rows if r["code"] == "0102")
    target["attributes"][0]["datatype"] = "colour"
    report = catalogue_import(catalogue_from_xlsx(catalogue_to_xlsx(copy.deepcopy(rows))))
    assert len(report.problems) == 1
    problem = report.problems[0]
    assert problem.sheet == "attributes" and problem.field == "attributes[damage].datatype"
    assert problem.row >= 2
