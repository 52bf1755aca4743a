"""The error sheet of a ledger check: one line per problem, to download, fix the ledger, retry.

Columns: row (as numbered in the user's file), column (the ledger's header with its column
letter), value (id numbers and phones masked: the sheet travels by e-mail and chat), problem.
Written by xlsxwriter in ``constant_memory`` mode (one row in memory at a time), every text
cell through ``gridgov.formats.cells.safe_text`` so that nothing the ledger contained runs as a
formula when the sheet is opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO

import xlsxwriter
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from xlsxwriter.utility import xl_col_to_name

from gridgov.core.masking import mask_id_number, mask_phone
from gridgov.formats.cells import safe_text

#: Fields whose values the sheet shows masked.
MASKED_FIELDS = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "contact_phone": mask_phone,
}
#: Excel's last row is 1,048,576; the header takes one and a final line says what was left out.
MAX_PROBLEMS = 1_048_574


@dataclass(frozen=True)
class Problem:
    """One problem of one cell: ``row`` as the user sees it, ``column`` the ledger's header."""

    row: int
    column: str
    value: str
    message: str


def write_error_sheet(
    problems: Iterable[Problem],
    path: str | os.PathLike[str] | IO[bytes],
    *,
    headers: Mapping[str, str | None],
) -> int:
    """Write the problems to an xlsx at ``path``; return how many were written.

    ``headers`` is the ledger's column mapping in file order ({header: target field or None}):
    it gives each column its letter and says which values to mask. A problem whose ``column``
    is a target field name rather than a header (a whole-row problem such as a duplicate id
    number) is masked by that name.
    """
    letters = {header: xl_col_to_name(i) for i, header in enumerate(headers)}
    workbook = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    try:
        sheet = workbook.add_worksheet(_("Problems")[:31])
        bold = workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        top = workbook.add_format({"valign": "top"})
        sheet.set_column(0, 0, 8, top)
        sheet.set_column(1, 1, 22, top)
        sheet.set_column(2, 2, 26, top)
        sheet.set_column(3, 3, 60, wrap)
        titles = (_("Row"), _("Column"), _("Value"), _("Problem"))
        for col, title in enumerate(titles):
            sheet.write_string(0, col, title, bold)
        sheet.freeze_panes(1, 0)

        written = 0
        left_out = 0
        for problem in problems:
            if written >= MAX_PROBLEMS:
                left_out += 1
                continue
            line = written + 1
            field = headers.get(problem.column) or problem.column
            mask = MASKED_FIELDS.get(field)
            value = mask(problem.value) if mask else problem.value
            column = problem.column
            if problem.column in letters:
                column = f"{problem.column} ({letters[problem.column]})"
            sheet.write_number(line, 0, problem.row)
            sheet.write_string(line, 1, safe_text(column))
            sheet.write_string(line, 2, safe_text(value or ""))
            sheet.write_string(line, 3, safe_text(problem.message))
            written += 1
        if left_out:
            sheet.write_string(
                written + 1,
                3,
                ngettext(
                    "%(count)d more problem is not listed.",
                    "%(count)d more problems are not listed.",
                    left_out,
                )
                % {"count": left_out},
            )
        if written:
            sheet.autofilter(0, 0, written, 3)
    finally:
        workbook.close()
    return written
