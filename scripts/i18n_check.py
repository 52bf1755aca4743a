#!/usr/bin/env python
"""Check that the Simplified Chinese catalogue is complete; exit 1 listing what is not.

It fails on:

* an entry of ``gridgov/locale/zh_Hans/LC_MESSAGES/django.po`` that is untranslated or fuzzy;
* a string that a fresh ``makemessages`` run finds in the code and templates but that the .po
  lacks (or holds only as obsolete, or with another plural form);
* a translation whose python-format placeholders differ from its msgid (``msgfmt --check-format``);
* a ``django.mo`` that does not match the .po (run ``manage.py compilemessages``);
* a missing Simplified Chinese catalogue of Django itself (admin, auth), which gridgov relies on.

Entries of the .po that the code no longer uses are reported as a warning (an error with
``--strict``); ``makemessages`` turns them into obsolete ``#~`` entries.

The fresh extraction runs ``makemessages`` in a temporary copy of the project, so it never
writes into the source tree (makemessages leaves temporary files next to the templates it
reads). Run it with the project's interpreter:

    .venv/bin/python scripts/i18n_check.py

To update the catalogue instead:

    .venv/bin/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var \\
        --ignore=tests --ignore=bench
    (translate the new entries in the .po)
    .venv/bin/python manage.py compilemessages -l zh_Hans --ignore=.venv
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
LOCALE = "zh_Hans"
PO_RELATIVE = Path("gridgov/locale") / LOCALE / "LC_MESSAGES" / "django.po"
#: Directories makemessages is told to skip (the same list as the documented command), and
#: directories that hold no translatable source at all.
IGNORED = ["tests", "bench", "var", ".venv"]
NOT_COPIED = {
    ".git",
    ".venv",
    "venv",
    "var",
    "tests",
    "bench",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "test-results",
    "static",
    "locale",
    "media",
}
#: Django's own catalogues that gridgov's screens use (login form, admin).
DJANGO_CATALOGUES = ["django.conf", "django.contrib.admin", "django.contrib.auth"]

Key = tuple[str | None, str]


def key_of(entry: polib.POEntry) -> Key:
    return (entry.msgctxt or None, entry.msgid)


def describe(entry: polib.POEntry) -> str:
    text = entry.msgid if len(entry.msgid) <= 70 else entry.msgid[:67] + "..."
    context = f" [context {entry.msgctxt!r}]" if entry.msgctxt else ""
    where = ", ".join(f"{path}:{line}" if line else path for path, line in entry.occurrences[:2])
    more = f" (+{len(entry.occurrences) - 2} more)" if len(entry.occurrences) > 2 else ""
    return f"{text!r}{context}" + (f"  <- {where}{more}" if where else "")


def is_untranslated(entry: polib.POEntry) -> bool:
    if entry.msgid_plural:
        return not entry.msgstr_plural or not all(entry.msgstr_plural.values())
    return not entry.msgstr


def _ignore_for_copy(directory: str, names: list[str]) -> set[str]:
    def skip(name: str) -> bool:
        hidden_dir = name.startswith(".") and os.path.isdir(os.path.join(directory, name))
        generated = name.endswith((".egg-info", ".pyc", ".mo", ".po", ".pot", ".sqlite3"))
        return name in NOT_COPIED or hidden_dir or generated

    return {name for name in names if skip(name)}


def fresh_catalogue(root: Path, keep: bool = False) -> polib.POFile:
    """Run makemessages in a temporary copy of ``root`` and return the .po it wrote."""
    workdir = Path(tempfile.mkdtemp(prefix="gridgov-i18n-"))
    try:
        copy = workdir / "project"
        shutil.copytree(root, copy, ignore=_ignore_for_copy, symlinks=True)
        (copy / "gridgov" / "locale").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(copy), env.get("PYTHONPATH")] if p)
        env["DJANGO_SETTINGS_MODULE"] = "gridgov.settings"
        env["GRIDGOV_VAR_DIR"] = str(workdir / "var")
        env.pop("DATABASE_URL", None)  # extraction needs no database
        where = subprocess.run(
            [sys.executable, "-c", "import gridgov, sys; sys.stdout.write(gridgov.__file__)"],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if not Path(where).resolve().is_relative_to(copy.resolve()):
            raise SystemExit(f"i18n_check: the copy imports gridgov from {where}, not from {copy}")
        command = [
            sys.executable,
            "-m",
            "django",
            "makemessages",
            "-l",
            LOCALE,
            "--no-obsolete",
            *(f"--ignore={name}" for name in IGNORED),
        ]
        result = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            sys.stderr.write(result.stdout + result.stderr)
            raise SystemExit("i18n_check: makemessages failed in the temporary copy")
        return polib.pofile(str(copy / PO_RELATIVE), wrapwidth=0)
    finally:
        if keep:
            print(f"kept the temporary copy in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def format_errors(po_path: Path) -> list[str]:
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        return ["msgfmt (GNU gettext) is not installed; cannot check the placeholders"]
    result = subprocess.run(  # noqa: S603
        [msgfmt, "--check-format", "--check-header", "-o", os.devnull, str(po_path)],
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        return []
    return [line for line in result.stderr.splitlines() if line.strip()]


def stale_mo(po: polib.POFile, mo_path: Path) -> list[str]:
    if not mo_path.exists():
        return [f"{mo_path.relative_to(ROOT)} is missing"]
    compiled = {key_of(e): e for e in polib.mofile(str(mo_path))}
    problems = []
    for entry in po.translated_entries():
        got = compiled.get(key_of(entry))
        if got is None:
            problems.append(describe(entry))
        elif entry.msgid_plural:
            if {int(k): v for k, v in got.msgstr_plural.items()} != {
                int(k): v for k, v in entry.msgstr_plural.items()
            }:
                problems.append(describe(entry))
        elif got.msgstr != entry.msgstr:
            problems.append(describe(entry))
    return problems


def django_catalogues(packages: Iterable[str]) -> list[str]:
    import importlib

    missing = []
    for package in packages:
        module = importlib.import_module(package)
        base = Path(module.__file__).resolve().parent  # type: ignore[arg-type]
        mo = base / "locale" / LOCALE / "LC_MESSAGES" / "django.mo"
        if not mo.exists():
            missing.append(f"{package}: {mo}")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--po", type=Path, default=ROOT / PO_RELATIVE, help="catalogue to check")
    parser.add_argument("--strict", action="store_true", help="fail on unused entries too")
    parser.add_argument("--no-extract", action="store_true", help="skip the makemessages run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)

    po_path: Path = args.po.resolve()
    if not po_path.exists():
        print(f"i18n_check: {po_path} does not exist")
        return 1
    po = polib.pofile(str(po_path), wrapwidth=0)
    active = [e for e in po if not e.obsolete]
    by_key = {key_of(e): e for e in active}
    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}

    errors["untranslated"] = [describe(e) for e in active if is_untranslated(e)]
    errors["fuzzy"] = [describe(e) for e in active if "fuzzy" in e.flags]
    if po.metadata_is_fuzzy:
        errors["fuzzy"].append("the header is marked fuzzy")
    errors["placeholders (msgfmt --check-format)"] = format_errors(po_path)
    errors["django.mo out of date (run compilemessages)"] = stale_mo(po, po_path.with_suffix(".mo"))
    errors["Django's own zh_Hans catalogue missing"] = django_catalogues(DJANGO_CATALOGUES)

    if not args.no_extract:
        fresh = fresh_catalogue(ROOT, keep=args.keep)
        fresh_active = [e for e in fresh if not e.obsolete]
        fresh_keys = {key_of(e) for e in fresh_active}
        missing, plural_changed = [], []
        for entry in fresh_active:
            have = by_key.get(key_of(entry))
            if have is None:
                missing.append(describe(entry))
            elif (have.msgid_plural or "") != (entry.msgid_plural or ""):
                plural_changed.append(describe(entry))
        errors["in the code but not in the .po (run makemessages)"] = missing
        errors["plural form changed (run makemessages)"] = plural_changed
        unused = [describe(e) for e in active if key_of(e) not in fresh_keys]
        (errors if args.strict else warnings)["in the .po but no longer in the code"] = unused
        extracted = len(fresh_active)
    else:
        extracted = None

    failed = False
    for title, items in errors.items():
        if items:
            failed = True
            print(f"ERROR {title}: {len(items)}")
            for item in items:
                print(f"  {item}")
    for title, items in warnings.items():
        if items:
            print(f"warning {title}: {len(items)}")
            for item in items:
                print(f"  {item}")
    translated = len([e for e in active if not is_untranslated(e) and "fuzzy" not in e.flags])
    summary = (
        f"{po_path.relative_to(ROOT) if po_path.is_relative_to(ROOT) else po_path}: "
        f"{translated}/{len(active)} msgids translated"
    )
    if extracted is not None:
        summary += f"; a fresh extraction finds {extracted}"
    print(("FAILED " if failed else "OK ") + summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
