#!/usr/bin/env python3
"""Django's manage.py; the same as the ``gridgov`` command."""

from gridgov.__main__ import main

if __name__ == "__main__":
    main()
