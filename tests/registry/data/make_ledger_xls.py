"""Writes ledger.xls (Excel 97, BIFF8) beside this file, for test_ledger_readers.py.

The project reads .xls but never writes it, so xlwt is no dependency: run this with any Python
that has xlwt 1.3 (``python -m venv /tmp/xls && /tmp/xls/bin/pip install xlwt``).
"""

import datetime
from pathlib import Path

import xlwt

TITLES = ["序号", "姓名", "性别", "公民身份号码", "联系电话", "出生日期", "人员类型"]
ROWS = [
    (1, "张三", "男", "11010519491231002X", 13812345678, datetime.date(1949, 12, 31), "户籍人口"),
    (
        2,
        "李四",
        "女",
        "110105194912310021",
        "025-85551234",
        datetime.date(1949, 12, 31),
        "流动人口",
    ),
]


def main() -> None:
    workbook = xlwt.Workbook(encoding="utf-8")
    notes = workbook.add_sheet("说明")
    notes.write(0, 0, "本表为测试用台账")
    sheet = workbook.add_sheet("实有人口")
    day = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    sheet.write_merge(0, 0, 0, len(TITLES) - 1, "幸福社区实有人口台账")
    for column, title in enumerate(TITLES):
        sheet.write(1, column, title)
    for row, values in enumerate(ROWS, start=2):
        for column, value in enumerate(values):
            if isinstance(value, datetime.date):
                sheet.write(row, column, value, day)
            else:
                sheet.write(row, column, value)
    workbook.save(str(Path(__file__).with_name("ledger.xls")))


if __name__ == "__main__":
    main()
