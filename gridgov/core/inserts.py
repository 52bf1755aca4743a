"""One-row INSERTs with SQL built once per model and database, for the hottest write paths.

``Model.save(force_insert=True)`` compiles its INSERT anew on every call (about 0.2–0.4 ms of
CPU for a wide row such as a case). ``insert_row`` does what that save does for a new row — the
fields' ``pre_save`` (``auto_now_add``, defaults already set), each value prepared for the
database by its field, a foreign key taken from the related object saved just before — with
the statement's text built once per process and ``RETURNING`` the new id.

``prepare_insert`` splits that in two: the values are prepared at once (say, before a write
transaction, which on SQLite holds the database's only write lock) and ``execute()`` runs the
statement later; ``set()`` changes a value in between (a number taken inside the transaction),
and a foreign key whose object was saved in between (an event's case) is filled in then.

``insert_together`` inserts several prepared rows, each only if the one before it went in (the
first may be kept out by its unique key): on PostgreSQL in ONE statement (data-modifying
``WITH`` clauses; a foreign key to an earlier row takes its new id there), which outside a
transaction commits by itself — one round trip instead of BEGIN, an INSERT per row and COMMIT;
elsewhere one statement per row, in the caller's transaction.

It sends no ``pre_save``/``post_save`` signals and does not call an overridden ``save()``: use it
only for models whose callers do what their ``save()`` adds (the case report sets the case's
derived codes itself) and that nothing listens to. ``on_conflict`` names the columns of a unique
constraint: a row that would break it is not inserted and the insert answers None (``ON
CONFLICT (…) DO NOTHING``, on SQLite ≥ 3.35 and PostgreSQL). ``cte`` (PostgreSQL) is a ``WITH``
clause ``name AS (…)`` run first, with ``cte_params``; the row's values are then selected
``FROM`` it, so it runs before the row is inserted (e.g. a ``set_config`` for the statement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.models import Field, ForeignKey, Model


@dataclass(frozen=True)
class _Statement:
    table: str
    columns: tuple[str, ...]
    fields: tuple[Field[Any, Any], ...]
    #: per field, the Python types whose values go to the database as they are (else the
    #: field prepares them)
    plain: tuple[frozenset[type], ...]
    #: the foreign keys and their positions, to copy the id of a related object saved after
    #: it was assigned
    relations: tuple[tuple[int, ForeignKey[Any, Any]], ...]
    #: per field, ``CAST(%s AS <type>)``: a value selected rather than listed in VALUES has no
    #: column to take its type from (PostgreSQL)
    casts: tuple[str, ...]
    conflict: str
    pk: str
    cte: str
    #: the single-row statement (VALUES, or SELECT … FROM the cte)
    sql: str


_statements: dict[tuple[type[Model], str, tuple[str, ...], str], _Statement] = {}


#: Fields (these exact classes, not subclasses such as an encrypted text field) whose
#: preparation of a value of these types, or of None, returns it unchanged.
_PLAIN_TYPES: dict[type, frozenset[type]] = {
    models.CharField: frozenset({str, type(None)}),
    models.TextField: frozenset({str, type(None)}),
    models.BooleanField: frozenset({bool, type(None)}),
    models.FloatField: frozenset({float, type(None)}),
    **{
        cls: frozenset({int, type(None)})
        for cls in (
            models.IntegerField,
            models.BigIntegerField,
            models.SmallIntegerField,
            models.PositiveIntegerField,
            models.PositiveSmallIntegerField,
            models.PositiveBigIntegerField,
            models.AutoField,
            models.BigAutoField,
        )
    },
}


def _plain_types(field: Field[Any, Any]) -> frozenset[type]:
    if isinstance(field, ForeignKey):
        return _plain_types(field.target_field)
    return _PLAIN_TYPES.get(type(field), frozenset())


def _statement(
    model: type[Model], alias: str, on_conflict: tuple[str, ...], cte: str
) -> _Statement:
    key = (model, alias, on_conflict, cte)
    found = _statements.get(key)
    if found is not None:
        return found
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    table = quote(meta.db_table)
    columns = tuple(quote(str(f.column)) for f in fields)
    conflict = (
        f" ON CONFLICT ({', '.join(quote(c) for c in on_conflict)}) DO NOTHING"
        if on_conflict
        else ""
    )
    pk = quote(str(meta.pk.column))
    casts = tuple(f"CAST(%s AS {f.cast_db_type(connection)})" for f in fields)
    # the names are the model's own and the caller's constant SQL; values are parameters
    if cte:
        name = cte.split()[0]
        values = f"SELECT {', '.join(casts)} FROM {name}"  # noqa: S608
        head = f"WITH {cte} "
    else:
        values = f"VALUES ({', '.join(['%s'] * len(fields))})"
        head = ""
    sql = f"{head}INSERT INTO {table} ({', '.join(columns)}) {values}{conflict} RETURNING {pk}"
    found = _Statement(
        table=table,
        columns=columns,
        fields=fields,
        plain=tuple(_plain_types(f) for f in fields),
        relations=tuple((i, f) for i, f in enumerate(fields) if isinstance(f, ForeignKey)),
        casts=casts,
        conflict=conflict,
        pk=pk,
        cte=cte,
        sql=sql,
    )
    _statements[key] = found
    return found


class PreparedInsert:
    """The INSERT of one new row, its values prepared; ``execute()`` runs it."""

    def __init__(
        self,
        obj: Model,
        statement: _Statement,
        alias: str,
        values: list[Any],
        cte_params: tuple[Any, ...],
    ) -> None:
        self.obj = obj
        self._statement = statement
        self._alias = alias
        self._values = values
        self._cte_params = cte_params

    def set(self, attname: str, value: Any) -> None:
        """Change one value of the row (on the instance too) before it is inserted."""
        for i, f in enumerate(self._statement.fields):
            if f.attname == attname:
                setattr(self.obj, attname, value)
                self._values[i] = f.get_db_prep_save(value, connections[self._alias])
                return
        raise KeyError(attname)

    def _fill_relations(self, pending: Sequence[Model] = ()) -> dict[int, Model]:
        """Foreign keys to objects saved since the row was prepared take their ids; those to
        objects in ``pending`` (rows inserted in the same statement) are returned by position."""
        obj, values = self.obj, self._values
        later: dict[int, Model] = {}
        for i, fk in self._statement.relations:
            if values[i] is not None or not fk.is_cached(obj):
                continue
            related = fk.get_cached_value(obj)
            if related is None:
                continue
            if any(related is p for p in pending):
                later[i] = related
            elif related.pk is not None:
                setattr(obj, fk.attname, related.pk)
                values[i] = fk.get_db_prep_save(related.pk, connections[self._alias])
        return later

    def _inserted(self, pk: Any) -> Any:
        obj = self.obj
        if pk is not None:
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = self._alias
        return pk

    def execute(self) -> Any | None:
        """Insert the row (in the caller's transaction, if any); its new id, or None when
        ``on_conflict`` kept it out."""
        self._fill_relations()
        with connections[self._alias].cursor() as cursor:
            cursor.execute(self._statement.sql, [*self._cte_params, *self._values])
            row = cursor.fetchone()
        return self._inserted(row[0] if row is not None else None)


def prepare_insert(
    obj: Model,
    *,
    on_conflict: tuple[str, ...] = (),
    cte: str = "",
    cte_params: tuple[Any, ...] = (),
    using: str | None = None,
) -> PreparedInsert:
    """The INSERT of ``obj`` (a new row) with its values prepared now."""
    model = type(obj)
    alias = using or router.db_for_write(model, instance=obj)
    statement = _statement(model, alias, on_conflict, cte)
    for _i, fk in statement.relations:
        if getattr(obj, fk.attname) is None and fk.is_cached(obj):
            related = fk.get_cached_value(obj)
            if related is not None:
                setattr(obj, fk.attname, related.pk)
    connection = connections[alias]
    values = []
    for f, plain in zip(statement.fields, statement.plain, strict=True):
        if plain:
            value = getattr(obj, f.attname)
            if type(value) in plain:
                values.append(value)
                continue
        values.append(f.get_db_prep_save(f.pre_save(obj, True), connection))
    return PreparedInsert(obj, statement, alias, values, cte_params)


def insert_row(
    obj: Model,
    *,
    on_conflict: tuple[str, ...] = (),
    cte: str = "",
    cte_params: tuple[Any, ...] = (),
    using: str | None = None,
) -> Any | None:
    """Insert ``obj`` (a new row: its primary key is set from the database); returns the new
    id, or None when ``on_conflict`` kept the row out."""
    return prepare_insert(
        obj, on_conflict=on_conflict, cte=cte, cte_params=cte_params, using=using
    ).execute()


def insert_together(*inserts: PreparedInsert) -> list[Any] | None:
    """Insert the rows in order, each only if the one before went in: their new ids, or None
    when the first was kept out by its ``on_conflict`` (then none is inserted).

    PostgreSQL: one statement (outside a transaction it commits by itself). Elsewhere: one
    statement per row, which the caller wraps in a transaction."""
    if not inserts:
        return []
    alias = inserts[0]._alias
    connection = connections[alias]
    if connection.vendor != "postgresql" or len(inserts) == 1:
        ids = []
        for insert in inserts:
            pk = insert.execute()
            if pk is None:
                return None
            ids.append(pk)
        return ids
    clauses: list[str] = []
    params: list[Any] = []
    first = inserts[0]._statement
    if first.cte:
        clauses.append(first.cte)
        params.extend(inserts[0]._cte_params)
    pending = [i.obj for i in inserts]
    references: list[dict[int, Model]] = []
    for n, insert in enumerate(inserts):
        statement = insert._statement
        later = insert._fill_relations(pending=pending)
        references.append(later)
        exprs = []
        sources = [f"r{n - 1}"] if n else ([first.cte.split()[0]] if first.cte else [])
        for i, cast in enumerate(statement.casts):
            related = later.get(i)
            if related is None:
                exprs.append(cast)
                params.append(insert._values[i])
                continue
            j = next(k for k, other in enumerate(inserts) if other.obj is related)
            if j >= n:
                raise ValueError("a row can refer only to a row inserted before it")
            exprs.append(f"r{j}.{inserts[j]._statement.pk}")
            if f"r{j}" not in sources:
                sources.append(f"r{j}")
        source = f" FROM {', '.join(sources)}" if sources else ""
        clauses.append(
            f"r{n} AS (INSERT INTO {statement.table} ({', '.join(statement.columns)}) "
            f"SELECT {', '.join(exprs)}{source}{statement.conflict} RETURNING {statement.pk})"
        )
    # the tables, columns and casts are the models' own; every value is a parameter
    answers = ", ".join(
        f"(SELECT {insert._statement.pk} FROM r{n})"  # noqa: S608
        for n, insert in enumerate(inserts)
    )
    sql = f"WITH {', '.join(clauses)} SELECT {answers}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    ids = [insert._inserted(pk) for insert, pk in zip(inserts, row, strict=True)]
    for insert, later in zip(inserts, references, strict=True):
        for i, related in later.items():  # e.g. the event's case, inserted just before it
            setattr(insert.obj, insert._statement.fields[i].attname, related.pk)
    return ids
