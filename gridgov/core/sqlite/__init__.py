"""Django's SQLite backend with writers queued in the process instead of in SQLite's busy loop."""
