"""The ``gridgov`` command: Django's management commands under one name.

``gridgov regions import-divisions FILE`` runs the ``regions`` management command.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gridgov.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["gridgov", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
