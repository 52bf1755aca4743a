"""Importing the division tree from CSV: gridgov's layout and china-division's."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gridgov.core.errors import DomainError
from gridgov.geo.actions import regions_import_divisions
from gridgov.geo.models import Region
from tests.geo.factories import make_region

QIXIA_CSV = Path("/work/shared/data/divisions-320113-qixia.csv")
HEADER = "code,name,level,parent_code\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.django_db
def test_importing_the_qixia_divisions_adds_the_district_its_streets_and_communities(
    english: None,
) -> None:
    report = regions_import_divisions(path=QIXIA_CSV)
    assert report.ok, report.text()
    assert (report.added, report.changed, report.unchanged) == (164, 0, 0)
    assert Region.objects.filter(level="district").count() == 1
    assert Region.objects.filter(level="street").count() == 21
    assert Region.objects.filter(level="community").count() == 142
    community = Region.objects.get(code="320113001001")
    assert community.parent is not None and community.parent.code == "320113001"
    # the district's parent is the city 3201, which is not imported
    assert Region.objects.get(code="320113").parent is None
    assert "164 added, 0 changed, 0 unchanged" in report.text()


@pytest.mark.django_db
def test_importing_the_same_divisions_twice_changes_nothing() -> None:
    regions_import_divisions(path=QIXIA_CSV)
    again = regions_import_divisions(path=QIXIA_CSV)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 164)


@pytest.mark.django_db
def test_a_renamed_community_is_reported_as_changed_by_code(tmp_path: Path) -> None:
    regions_import_divisions(path=QIXIA_CSV)
    text = QIXIA_CSV.read_text(encoding="utf-8").replace("尧化社区居委会", "尧化社区")
    report = regions_import_divisions(path=write(tmp_path / "renamed.csv", text))
    assert (report.added, report.changed) == (0, 1)
    assert report.changed_codes == ["320113001001"]
    assert Region.objects.get(code="320113001001").name == "尧化社区"


@pytest.mark.django_db
def test_a_gbk_file_and_a_utf8_file_with_bom_are_read(tmp_path: Path) -> None:
    text = HEADER + "320113,栖霞区,district,3201\n320113001,尧化街道,street,320113\n"
    report = regions_import_divisions(path=write(tmp_path / "gbk.csv", text, "gbk"))
    assert report.ok and report.encodings == ["GBK"]
    assert Region.objects.get(code="320113001").name == "尧化街道"
    bom = regions_import_divisions(path=write(tmp_path / "bom.csv", text, "utf-8-sig"))
    assert bom.encodings == ["UTF-8 with BOM"] and bom.unchanged == 2


@pytest.mark.django_db
def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_written(
    tmp_path: Path, english: None
) -> None:
    text = (
        HEADER
        + "320113,栖霞区,district,3201\n"
        + "32011300,坏代码,street,320113\n"  # line 3: 8 digits
        + "320113001,尧化街道,community,320113\n"  # line 4: level mismatch
        + "320113009001,无主社区,community,320113009\n"  # line 5: unknown parent
        + "320113002,,street,320113\n"  # line 6: no name
        + "320113003,迈皋桥街道,street,320114\n"  # line 7: wrong parent
    )
    report = regions_import_divisions(path=write(tmp_path / "bad.csv", text))
    assert not report.ok
    by_line = {e.line: e.message for e in report.errors}
    assert set(by_line) == {3, 4, 5, 6, 7}
    assert "8 digits" in by_line[3]
    assert "does not match the code" in by_line[4]
    assert "unknown parent 320113009" in by_line[5]
    assert "name is empty" in by_line[6]
    assert "its parent is 320113" in by_line[7]
    assert "bad.csv:3" in report.text() and "nothing was written" in report.text()
    assert not Region.objects.exists()


@pytest.mark.django_db
def test_the_same_code_with_two_names_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = HEADER + "320113,栖霞区,district,3201\n320113,栖霞,district,3201\n"
    report = regions_import_divisions(path=write(tmp_path / "dup.csv", text))
    assert not report.ok
    assert "dup.csv:2" in report.errors[0].message and report.errors[0].line == 3


@pytest.mark.django_db
def test_district_keeps_only_its_subtree(tmp_path: Path) -> None:
    text = (
        HEADER
        + "320113,栖霞区,district,3201\n320113001,尧化街道,street,320113\n"
        + "320114,雨花台区,district,3201\n320114001,雨花街道,street,320114\n"
    )
    report = regions_import_divisions(path=write(tmp_path / "two.csv", text), district="320113")
    assert report.added == 2 and report.skipped == 2
    assert sorted(Region.objects.values_list("code", flat=True)) == ["320113", "320113001"]
    with pytest.raises(DomainError, match="district"):
        regions_import_divisions(path=tmp_path / "two.csv", district="3201")


def china_division(tmp_path: Path) -> tuple[Path, Path, Path]:
    areas = write(
        tmp_path / "areas.csv",
        "code,name,cityCode,provinceCode\n320113,栖霞区,3201,32\n320114,雨花台区,3201,32\n",
    )
    streets = write(
        tmp_path / "streets.csv",
        "code,name,provinceCode,cityCode,areaCode\n"
        "320113001,尧化街道,32,3201,320113\n320113002,马群街道,32,3201,320113\n"
        "320114001,雨花街道,32,3201,320114\n",
    )
    villages = write(
        tmp_path / "villages.csv",
        "code,name,provinceCode,cityCode,areaCode,streetCode\n"
        "320113001001,尧化社区居委会,32,3201,320113,320113001\n"
        "320113002001,马群社区居委会,32,3201,320113,320113002\n"
        "320114001001,雨花社区居委会,32,3201,320114,320114001\n",
    )
    return areas, streets, villages


@pytest.mark.django_db
def test_the_china_division_areas_streets_and_villages_files_import_together(
    tmp_path: Path,
) -> None:
    areas, streets, villages = china_division(tmp_path)
    report = regions_import_divisions(path=[areas, streets, villages], district="320113")
    assert report.ok, report.text()
    assert report.layouts == [
        "china-division areas",
        "china-division streets",
        "china-division villages",
    ]
    assert report.added == 5 and report.skipped == 3
    assert Region.objects.get(code="320113002001").parent.code == "320113002"  # type: ignore[union-attr]


@pytest.mark.django_db
def test_china_division_streets_without_their_district_are_refused_with_a_hint(
    tmp_path: Path,
    english: None,
) -> None:
    _, streets, _ = china_division(tmp_path)
    report = regions_import_divisions(path=streets, district="320113")
    assert not report.ok
    assert "unknown parent 320113" in report.errors[0].message
    assert "areas.csv" in report.errors[0].message
    assert not Region.objects.exists()


@pytest.mark.django_db
def test_china_division_villages_attach_to_streets_already_in_the_database(tmp_path: Path) -> None:
    make_region("320113001", "尧化街道")
    make_region("320113002", "马群街道")
    _, _, villages = china_division(tmp_path)
    report = regions_import_divisions(path=villages, district="320113")
    assert report.ok and report.added == 2


@pytest.mark.django_db
def test_a_file_with_an_unknown_header_is_refused(tmp_path: Path, english: None) -> None:
    with pytest.raises(DomainError, match="unknown header"):
        regions_import_divisions(path=write(tmp_path / "x.csv", "id,title\n1,a\n"))


@pytest.mark.django_db
def test_the_command_imports_and_exits_with_status_1_on_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], english: None
) -> None:
    call_command("regions", "import-divisions", str(QIXIA_CSV))
    assert "164 added" in capsys.readouterr().out
    bad = write(tmp_path / "bad.csv", HEADER + "320199001,无主街道,street,320199\n")
    with pytest.raises(CommandError) as info:
        call_command("regions", "import-divisions", str(bad))
    assert info.value.returncode == 1
    assert "bad.csv:2" in capsys.readouterr().out
