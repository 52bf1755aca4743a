"""Ledgers (台账): reading spreadsheet files, mapping their columns, writing error sheets.

``readers`` opens .xlsx / .xls / .csv files and streams their rows as text, ``columns``
suggests which registry field each column holds and turns ledger words into codes,
``error_sheet`` writes the problems of a check as an xlsx (import it from its module: it needs
the Django apps loaded).
"""

from gridgov.registry.ledger.columns import header_signature, suggest_mapping
from gridgov.registry.ledger.readers import LedgerFileError, LedgerReader, open_ledger, sniff_kind

__all__ = [
    "LedgerFileError",
    "LedgerReader",
    "header_signature",
    "open_ledger",
    "sniff_kind",
    "suggest_mapping",
]
