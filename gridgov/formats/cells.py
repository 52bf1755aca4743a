"""Text cells of exported spreadsheets that no spreadsheet runs as a formula.

Every export of gridgov (the case list as xlsx and CSV, the registry ledger export, the error
sheet of a ledger check, the category catalogue, the CSV of ``gridgov regions locate-file``)
writes the text it holds through these functions, so that a value someone typed, such as
``=HYPERLINK("http://evil.example", "点我")`` or ``@SUM(1)``, is shown as text and never runs
when the file is opened (CSV/formula injection, OWASP):

- ``safe_text(text)`` prefixes an apostrophe when the text starts with a character that makes
  Excel, WPS or LibreOffice read a formula (``= + - @``) or with a tab or line break (which some
  of them skip before looking for one). The apostrophe is the spreadsheets' own mark for "this
  is text"; in a CSV it is the only mark there is.
- ``needs_quote(text)`` says whether it would: an xlsx writer may instead keep the text as it is
  and give the cell Excel's quote prefix (``quote_prefix`` in xlsxwriter), which the category
  catalogue does so that an exported file imports back unchanged.

xlsx writers also open their workbooks with ``strings_to_formulas=False`` (and write strings
with ``write_string``), so even unprefixed text is stored as a string, never as a formula.

(This package is also Django's ``FORMAT_MODULE_PATH``: date and number formats per language live
in ``en/`` and ``zh_Hans/``; this module is not one of them.)
"""

from __future__ import annotations

#: What a cell may not start with: formula starts, and the tab and line breaks before one.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def needs_quote(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula."""
    return text.startswith(FORMULA_START)


def safe_text(text: str) -> str:
    """``text`` as a spreadsheet shows it as text: a leading formula character gets an
    apostrophe; anything else is returned as it is."""
    return "'" + text if needs_quote(text) else text
