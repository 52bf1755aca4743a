"""Opening ledger files: kinds by content, encodings, delimiters, headers, streaming, refusals.

Every file is made here in ``tmp_path`` except the .xls (tests/registry/data/ledger.xls, written
by data/make_ledger_xls.py with xlwt, which the project does not depend on).
"""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import openpyxl
import pytest
import xlsxwriter
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from gridgov.registry.ledger import readers
from gridgov.registry.ledger.columns import suggest_mapping
from gridgov.registry.ledger.readers import LedgerFileError, open_ledger, sniff_kind

pytestmark = pytest.mark.usefixtures("english")

DATA = Path(__file__).parent / "data"


def read_all(path: Path | io.BytesIO, **kwargs: Any) -> tuple[Any, list[tuple[int, list[str]]]]:
    with open_ledger(path, **kwargs) as ledger:
        return ledger, list(ledger.rows())


def write_csv(path: Path, rows: list[list[str]], *, encoding: str, delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def refused(path: Path | io.BytesIO, **kwargs: Any) -> str:
    with pytest.raises(LedgerFileError) as caught:
        open_ledger(path, **kwargs)
    return caught.value.message


# --------------------------------------------------------------------------- CSV


def test_it_reads_a_dirty_gbk_csv_with_renamed_columns(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "台账.csv",
        [
            ["幸福社区实有人口登记表", "", "", "", "", "", ""],
            ["填报单位：幸福社区", "", "", "", "填报日期：2026年11月23日", "", ""],
            ["序号", "户主姓名", "姓名", "证件号码", "手机号", "户籍类型", "与户主的关系"],
            ["1", "张三", " 张三 ", "'11010519491231002X", "138 1234 5678", "户籍人口", "本人"],
            ["", "", "", "", "", "", ""],
            ["2", "张三", "李四", '="110105194912310021"', "13812345679", "流动人口", "妻"],
            ["序号", "户主姓名", "姓名", "证件号码", "手机号", "户籍类型", "与户主的关系"],
            ["3", "张三", "张小三", "110105201001010012", "", "户籍人口", "子"],
        ],
        encoding="gbk",
    )
    ledger, rows = read_all(path)
    assert (ledger.kind, ledger.encoding, ledger.header_row) == ("csv", "gb18030", 2)
    assert ledger.file_name == "台账.csv"
    assert ledger.headers == [
        "序号",
        "户主姓名",
        "姓名",
        "证件号码",
        "手机号",
        "户籍类型",
        "与户主的关系",
    ]
    assert suggest_mapping(ledger.headers) == {
        "序号": None,
        "户主姓名": None,
        "姓名": "name",
        "证件号码": "id_number",
        "手机号": "phone",
        "户籍类型": "person_type",
        "与户主的关系": "relation",
    }
    assert rows == [
        (4, ["1", "张三", "张三", "11010519491231002X", "138 1234 5678", "户籍人口", "本人"]),
        (6, ["2", "张三", "李四", "110105194912310021", "13812345679", "流动人口", "妻"]),
        (8, ["3", "张三", "张小三", "110105201001010012", "", "户籍人口", "子"]),
    ]


def test_it_reads_a_utf8_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff姓名,身份证号\n王五,11010519491231002X\n".encode())
    ledger, rows = read_all(path)
    assert ledger.encoding == "utf-8-sig"
    assert ledger.headers == ["姓名", "身份证号"]
    assert rows == [(2, ["王五", "11010519491231002X"])]


def test_it_reads_a_plain_utf8_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", [["姓名", "性别"], ["赵六", "男"]], encoding="utf-8")
    ledger, rows = read_all(path)
    assert ledger.encoding == "utf-8"
    assert rows == [(2, ["赵六", "男"])]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_it_finds_the_delimiter(tmp_path: Path, delimiter: str) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        [["姓名", "地址", "电话"], ["孙七", "幸福路1号,2栋", "13812345678"], ["周八", "x", "1"]],
        encoding="utf-8",
        delimiter=delimiter,
    )
    ledger, rows = read_all(path)
    assert ledger.headers == ["姓名", "地址", "电话"]
    assert rows[0] == (2, ["孙七", "幸福路1号,2栋", "13812345678"])


def test_it_reads_excel_unicode_text_in_utf16(tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes("姓名\t民族\r\n吴九\t汉族\r\n".encode("utf-16"))
    ledger, rows = read_all(path)
    assert ledger.encoding == "utf-16"
    assert rows == [(2, ["吴九", "汉族"])]


def test_it_keeps_line_breaks_inside_quoted_cells_on_one_row(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('姓名,备注\n郑十,"第一行\n第二行"\n钱一,无\n', encoding="utf-8")
    _ledger, rows = read_all(path)
    assert rows == [(2, ["郑十", "第一行\n第二行"]), (3, ["钱一", "无"])]


def test_it_reads_a_csv_whose_lines_end_with_a_carriage_return_alone(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes("姓名;性别\r卫二;女\r".encode("gbk"))
    ledger, rows = read_all(path)
    assert ledger.headers == ["姓名", "性别"]
    assert rows == [(2, ["卫二", "女"])]


def test_it_refuses_text_that_is_neither_utf8_nor_gbk(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name,city\n\x80\x80,\xff\xfe\xff\n")
    assert "neither UTF-8 nor GBK" in refused(path)


def test_it_names_the_row_where_a_utf8_file_stops_being_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    body = "姓名,备注\n".encode() + b"a,b\n" * 30_000 + "错,误\n".encode("gbk")
    path.write_bytes(body)
    with open_ledger(path) as ledger, pytest.raises(LedgerFileError) as caught:
        list(ledger.rows())
    assert caught.value.message.startswith("Row 30002 of mixed.csv is not utf-8 text")


def test_it_decides_by_content_not_by_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "really.xlsx", [["姓名", "性别"], ["冯二", "女"]], encoding="gbk")
    ledger, rows = read_all(path)
    assert ledger.kind == "csv"
    assert rows == [(2, ["冯二", "女"])]


def test_it_reads_a_file_object_and_a_stream_that_cannot_seek(tmp_path: Path) -> None:
    content = "姓名,性别\n陈三,男\n".encode("gbk")
    ledger, rows = read_all(io.BytesIO(content), file_name="upload.csv")
    assert ledger.file_name == "upload.csv"
    assert rows == [(2, ["陈三", "男"])]

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = io.BytesIO(content)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    _ledger, rows = read_all(io.BufferedReader(Pipe()), file_name="pipe.csv")  # type: ignore[arg-type]
    assert rows == [(2, ["陈三", "男"])]


def test_it_reads_the_rows_again_from_the_start_each_time(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "twice.csv", [["姓名", "性别"], ["褚四", "男"]], encoding="utf-8")
    with open_ledger(path) as ledger:
        assert list(ledger.rows()) == list(ledger.rows()) == [(2, ["褚四", "男"])]


# --------------------------------------------------------------------------- xlsx


def test_it_joins_a_merged_two_row_header_under_a_merged_title(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "实有人口"
    sheet.append(["幸福社区实有人口台账"])
    sheet.merge_cells("A1:I1")
    sheet.append(
        ["序号", "姓名", "公民身份号码", "居住地址", None, None, "联系电话", "出生日期", "备注"]
    )
    sheet.append([None, None, None, "小区", "楼栋", "房号", None, None, None])
    sheet.merge_cells("D2:F2")
    for column in "ABCGHI":
        sheet.merge_cells(f"{column}2:{column}3")
    sheet.append(
        [
            1,
            "张三",
            "'11010519491231002X",
            "幸福小区",
            "1栋",
            101,
            13812345678,
            datetime(1949, 12, 31),
            None,
        ]
    )
    sheet.append([])
    sheet.append(
        [2.0, "李四", 110105194912310021, "幸福小区", "1栋", "102", None, date(1949, 12, 31), 1.5]
    )
    sheet["H6"].number_format = 'yyyy"年"m"月"d"日"'
    path = tmp_path / "merged.xlsx"
    workbook.save(path)

    ledger, rows = read_all(path)
    assert (ledger.kind, ledger.encoding, ledger.sheet_name) == ("xlsx", "", "实有人口")
    assert ledger.header_row == 1
    assert ledger.first_data_row == 4
    assert ledger.headers == [
        "序号",
        "姓名",
        "公民身份号码",
        "居住地址/小区",
        "居住地址/楼栋",
        "居住地址/房号",
        "联系电话",
        "出生日期",
        "备注",
    ]
    assert suggest_mapping(ledger.headers)["居住地址/楼栋"] == "building"
    assert rows == [
        (
            4,
            [
                "1",
                "张三",
                "11010519491231002X",
                "幸福小区",
                "1栋",
                "101",
                "13812345678",
                "1949-12-31",
                "",
            ],
        ),
        # An id number typed as a number keeps Excel's 15 significant digits, never 1.1E+17.
        (6, ["2", "李四", "110105194912310000", "幸福小区", "1栋", "102", "", "1949-12-31", "1.5"]),
    ]


def test_it_joins_group_titles_written_above_the_header(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["基本信息", None, None, "居住信息", None])
    sheet.append(["姓名", "性别", "身份证号", "小区", "房号"])
    sheet.append(["蒋五", "男", "11010519491231002X", "幸福小区", "101"])
    path = tmp_path / "groups.xlsx"
    workbook.save(path)
    ledger, rows = read_all(path)
    assert ledger.header_row == 1
    assert ledger.headers == [
        "基本信息/姓名",
        "基本信息/性别",
        "基本信息/身份证号",
        "居住信息/小区",
        "居住信息/房号",
    ]
    assert suggest_mapping(ledger.headers) == dict(
        zip(ledger.headers, ["name", "sex", "id_number", "estate", "room"], strict=True)
    )
    assert rows == [(3, ["蒋五", "男", "11010519491231002X", "幸福小区", "101"])]


def test_it_names_blank_and_repeated_headers_and_shows_values_as_excel_does(
    tmp_path: Path,
) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["姓名", None, "备注", "备注", "登记时间", "是否党员", "面积"])
    sheet.append(["沈六", "x", "a", "b", datetime(2026, 11, 23, 8, 30), True, 0.1 + 0.2])
    path = tmp_path / "values.xlsx"
    workbook.save(path)
    ledger, rows = read_all(path)
    assert ledger.headers == ["姓名", "列2", "备注", "备注 (2)", "登记时间", "是否党员", "面积"]
    assert rows == [(2, ["沈六", "x", "a", "b", "2026-11-23 08:30:00", "TRUE", "0.3"])]


def test_it_reads_dates_of_a_workbook_in_the_1904_date_system(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["姓名", "出生日期"])
    sheet.append(["韩七", date(1990, 5, 17)])
    path = tmp_path / "mac.xlsx"
    workbook.save(path)
    assert read_all(path)[1] == [(2, ["韩七", "1990-05-17"])]


def test_it_takes_the_first_visible_sheet_with_a_header_unless_told(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "填表说明"
    notes.append(["请按模板填写"])
    hidden = workbook.create_sheet("旧表")
    hidden.append(["姓名", "性别"])
    hidden.sheet_state = "hidden"
    people = workbook.create_sheet("人口")
    people.append(["姓名", "性别"])
    people.append(["杨八", "女"])
    path = tmp_path / "sheets.xlsx"
    workbook.save(path)

    ledger, rows = read_all(path)
    assert ledger.sheet_names == ["填表说明", "旧表", "人口"]
    assert (ledger.sheet_name, rows) == ("人口", [(2, ["杨八", "女"])])
    ledger, rows = read_all(path, sheet="旧表")
    assert (ledger.sheet_name, rows) == ("旧表", [])
    assert "no sheet called “其他”" in refused(path, sheet="其他")


def test_it_uses_the_header_row_a_template_remembers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        [["说明", "见附件"], ["姓名", "性别"], ["朱九", "男"]],
        encoding="utf-8",
    )
    ledger, rows = read_all(path, header_row=1)
    assert (ledger.header_row, ledger.headers, rows) == (1, ["姓名", "性别"], [(3, ["朱九", "男"])])


# --------------------------------------------------------------------------- xls


def test_it_reads_an_old_excel_97_workbook() -> None:
    ledger, rows = read_all(DATA / "ledger.xls")
    assert (ledger.kind, ledger.sheet_names, ledger.sheet_name) == (
        "xls",
        ["说明", "实有人口"],
        "实有人口",
    )
    assert ledger.header_row == 1
    assert ledger.headers == [
        "序号",
        "姓名",
        "性别",
        "公民身份号码",
        "联系电话",
        "出生日期",
        "人员类型",
    ]
    assert rows == [
        (3, ["1", "张三", "男", "11010519491231002X", "13812345678", "1949-12-31", "户籍人口"]),
        (4, ["2", "李四", "女", "110105194912310021", "025-85551234", "1949-12-31", "流动人口"]),
    ]


# --------------------------------------------------------------------------- refusals


def test_it_refuses_an_xlsx_zip_bomb_without_unpacking_it(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            zeros = b"\0" * 2**20
            for _ in range(readers.UNPACKED_FLOOR_MB + 1):
                member.write(zeros)
    assert path.stat().st_size < 2**20
    message = refused(path)
    assert "zip bomb" in message
    assert "bomb.xlsx would unpack to 101 MB" in message


def test_it_keeps_unpacked_sizes_under_the_configured_limit(tmp_path: Path, settings: Any) -> None:
    settings.GRIDGOV_LEDGER_MAX_UNPACKED_MB = 1
    path = tmp_path / "big.xlsx"
    write_xlsx(path, ([f"姓名{n}", f"{n}" * 20] for n in range(40_000)))
    assert "zip bomb" in refused(path)
    assert readers.unpacked_limit(10 * 2**20) == 2**20


def test_it_refuses_a_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "photos.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert "a zip archive but not an Excel workbook" in refused(path)
    docx = tmp_path / "letter.xlsx"
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<Types><Override ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
    assert "not an Excel workbook" in refused(docx)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table>", "a web page (HTML)"),
        (b"\xef\xbb\xbf  <table><tr><td>\xe5\xa7\x93\xe5\x90\x8d</td></tr></table>", "a web page"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG image"),
        (
            b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">',
            "an Excel 2003 XML spreadsheet",
        ),
        (b"%PDF-1.7\n", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file"),
    ],
)
def test_it_refuses_what_is_not_a_spreadsheet_whatever_its_name(
    tmp_path: Path, content: bytes, what: str
) -> None:
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(content)
    message = refused(path)
    assert message.startswith(f"ledger.xlsx is {what}")
    assert "save it as an Excel workbook (.xlsx)" in message


def test_it_says_when_a_workbook_is_protected_by_a_password(tmp_path: Path) -> None:
    path = tmp_path / "secret.xlsx"
    path.write_bytes(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600 + "EncryptedPackage".encode("utf-16-le")
    )
    assert refused(path) == "secret.xlsx is encrypted; remove the password and upload it again."
    broken = tmp_path / "broken.xls"
    broken.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\1" * 600)
    assert refused(broken).startswith("broken.xls cannot be read as an Excel workbook")


def test_it_refuses_xml_entities_in_a_workbook(tmp_path: Path) -> None:
    laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    path = tmp_path / "laughs.xlsx"
    write_xlsx(
        path,
        [["姓名", "备注"], ["甲", "乙"]],
        edit=lambda xml: laughs + xml.replace("<v>3</v>", "<v>&lol2;</v>"),
    )
    assert refused(path).startswith("laughs.xlsx cannot be read as an Excel workbook")


def test_it_refuses_an_empty_file_and_a_file_without_a_header(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert refused(empty) == "empty.csv is empty."
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("1,2,3\n4,5,6\n", encoding="utf-8")
    assert refused(numbers).startswith("No header row was found in numbers.csv")
    one_column = tmp_path / "names.csv"
    one_column.write_text("姓名\n张三\n", encoding="utf-8")
    assert refused(one_column).startswith("No header row was found")


def test_it_refuses_a_damaged_workbook(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    write_xlsx(path, [["姓名", "性别"]])
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    assert "damaged" in refused(path) or "cannot be read" in refused(path)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PK\x03\x04rest", "xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "xls"),
        ("姓名,性别".encode("gbk"), "csv"),
        ("\ufeff姓名".encode(), "csv"),
        ("姓名".encode("utf-16"), "csv"),
    ],
)
def test_it_tells_the_kind_from_the_first_bytes(head: bytes, kind: str) -> None:
    assert sniff_kind(head, "x.bin") == kind


def test_it_reads_a_large_shared_string_table_from_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "SHARED_STRINGS_IN_MEMORY", 3)
    path = tmp_path / "strings.xlsx"
    people = [[f"居民{n}", f"R&D <{n}>", ""] for n in range(10)]
    write_xlsx(path, [["姓名", "备注", "空"], *people])
    ledger, rows = read_all(path)
    assert ledger.headers == ["姓名", "备注", "空"]
    assert rows == [(n + 2, [f"居民{n}", f"R&D <{n}>", ""]) for n in range(10)]


def test_it_reads_unusual_xml_with_a_full_parser_from_where_it_stopped(tmp_path: Path) -> None:
    rows = [["姓名", "编号"]] + [[f"居民{n}", n] for n in range(3000)]
    commented = tmp_path / "commented.xlsx"
    write_xlsx(
        commented, rows, edit=lambda xml: xml.replace('<row r="2500">', '<!-- x --><row r="2500">')
    )
    prefixed = tmp_path / "prefixed.xlsx"
    write_xlsx(
        prefixed,
        rows,
        edit=lambda xml: (
            re.sub(r"<(/?)(worksheet|sheetData|row|c|v|sst|si|t)\b", r"<\1x:\2", xml)
            .replace("<x:worksheet xmlns=", "<x:worksheet xmlns:x=")
            .replace("<x:sst xmlns=", "<x:sst xmlns:x=")
        ),
    )
    expected = [(n + 2, [f"居民{n}", str(n)]) for n in range(3000)]
    for path in (commented, prefixed):
        ledger, got = read_all(path)
        assert ledger.headers == ["姓名", "编号"]
        assert got == expected


def test_it_shows_the_cells_xlsxwriter_writes_as_excel_would(tmp_path: Path) -> None:
    path = tmp_path / "writer.xlsx"
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("台账")
    day = workbook.add_format({"num_format": "yyyy/m/d"})
    clock = workbook.add_format({"num_format": "hh:mm"})
    sheet.write_row(0, 0, ["姓名", "出生日期", "时间", "党员", "公式", "错误", "编号"])
    sheet.write_string(1, 0, " 秦十 ")
    sheet.write_datetime(1, 1, datetime(1990, 5, 17), day)
    sheet.write_datetime(1, 2, datetime(1899, 12, 31, 8, 30), clock)
    sheet.write_boolean(1, 3, True)
    sheet.write_formula(1, 4, '="A"&"B"', None, "AB")
    sheet.write_formula(1, 5, "=1/0", None, "#DIV/0!")
    sheet.write_number(1, 6, 320113199001011234)
    workbook.close()
    _ledger, rows = read_all(path)
    assert rows == [
        (2, ["秦十", "1990-05-17", "08:30:00", "TRUE", "AB", "#DIV/0!", "320113199001011000"])
    ]


# --------------------------------------------------------------------------- streaming

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    "</Types>"
)


def write_xlsx(path: Path, rows: Any, *, edit: Callable[[str], str] = lambda xml: xml) -> None:
    """A minimal workbook as Excel writes it (shared strings), fast enough for 200,000 rows.

    ``edit`` changes the XML of the sheet and of the shared strings before they are written.
    """
    strings: dict[str, int] = {}
    lines = []
    for number, row in enumerate(rows, 1):
        cells = []
        for column, value in enumerate(row):
            ref = f"{chr(65 + column)}{number}"
            if isinstance(value, int):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            else:
                index = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
        lines.append(f'<row r="{number}">{"".join(cells)}</row>')
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook {ns} xmlns:r="{rel}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rel}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            edit(f"<worksheet {ns}><sheetData>{''.join(lines)}</sheetData></worksheet>"),
        )
        archive.writestr(
            "xl/sharedStrings.xml",
            edit(
                f'<sst {ns} count="{len(strings)}">'
                + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
                + "</sst>"
            ),
        )


BIG = 200_000


def big_rows() -> Any:
    yield ["姓名", "公民身份号码"]
    for n in range(BIG):
        yield [f"居民{n}", f"3201131990{n:08d}"]


def stream_peak(path: Path) -> tuple[int, int]:
    """(rows read, peak of Python memory while reading them)."""
    tracemalloc.start()
    try:
        count = 0
        with open_ledger(path) as ledger:
            for _number, _values in ledger.rows():
                count += 1
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_it_streams_a_200000_row_csv_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="gb18030", newline="") as out:
        csv.writer(out).writerows(big_rows())
    count, peak = stream_peak(path)
    assert count == BIG
    # A few buffers, whatever the length of the file.
    assert peak < min(2 * 2**20, path.stat().st_size / 3)


def test_it_streams_a_200000_row_xlsx_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    write_xlsx(path, [["序号", "性别"], *([n, "男女"[n % 2]] for n in range(1, BIG + 1))])
    count, peak = stream_peak(path)
    assert count == BIG
    # The sheet is read piece by piece: well under a megabyte whatever its length. (A large
    # shared-string table moves to a memory-mapped file: see the test with SHARED_STRINGS.)
    assert peak < min(2**20, path.stat().st_size / 2)
