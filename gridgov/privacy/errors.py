"""``ValidationFailed`` (422, ``detail`` = ``{field: message}``) lives in ``gridgov.core.errors``;
re-exported here for the privacy and registry code that imports it from this module."""

from __future__ import annotations

from gridgov.core.errors import ValidationFailed

__all__ = ["ValidationFailed"]
