"""Writes tests/registry/data/ledger.xls (BIFF8) with xlwt 1.3.0, run outside the project venv."""

import datetime
import xlwt

wb = xlwt.Workbook(encoding="utf-8")
notes = wb.add_sheet("说明")
notes.write(0, 0, "本表为测试用台账")
ws = wb.add_sheet("实有人口")
date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
ws.write_merge(0, 0, 0, 6, "幸福社区实有人口台账")
for col, title in enumerate(
    ["序号", "姓名", "性别", "公民身份号码", "联系电话", "出生日期", "人员类型"]
):
    ws.write(1, col, title)
rows = [
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
for r, row in enumerate(rows, start=2):
    for c, value in enumerate(row):
        if isinstance(value, datetime.date):
            ws.write(r, c, value, date_style)
        else:
            ws.write(r, c, value)
wb.save("/work/main/tests/registry/data/ledger.xls")
