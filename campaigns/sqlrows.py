"""Rows read and written with SQL written out, their values converted exactly as the ORM
converts them.

For the few statements every API request makes (the key, a page of campaigns, a create's
lookups and its campaign row): building a query through the ORM costs more CPU than the
database spends answering it. The SQL names tables and columns from the models' _meta, so a
renamed column cannot be missed, and each value goes through the converters the ORM itself
would apply (a datetime parsed on SQLite, a JSON column decoded; on the way in, each field's
pre_save and get_db_prep_save). Tests keep each such statement equal to its ORM equivalent.
"""

import functools

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.db.models import Field, Model


def column(model: type[Model], name: str, alias: str) -> str:
    """`alias`."column" of the field `name` (or its attname, like phone_number_id)."""
    return f"{alias}.{connection.ops.quote_name(model._meta.get_field(name).column)}"


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of `model`, in _meta's order: a select list Model.from_db loads."""
    return ", ".join(column(model, field.attname, alias) for field in model._meta.concrete_fields)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


# Per vendor and column list: (position, converters, expression) for each column that needs any.
# A backend's converter is kept unbound and given the thread's own connection when it runs, so
# that this cache holds no connection.
_CONVERTERS: dict[tuple, list[tuple[int, list, object]]] = {}


def _converters(db, fields: tuple[Field | None, ...]) -> list[tuple[int, list, object]]:
    key = (db.vendor, fields)
    if key not in _CONVERTERS:
        found = []
        for position, field in enumerate(fields):
            if field is None:  # a computed column (a count): as the database gives it
                continue
            expression = field.get_col(field.model._meta.db_table)
            # What SQLCompiler.get_converters gathers: the backend's, then the field's own.
            applied = [
                (converter.__func__, True) if getattr(converter, "__self__", None) is db.ops else (converter, False)
                for converter in db.ops.get_db_converters(expression) + expression.get_db_converters(db)
            ]
            if applied:
                found.append((position, applied, expression))
        _CONVERTERS[key] = found
    return _CONVERTERS[key]


def _cursor():
    """Django's cursors on PostgreSQL bind parameters on the client, so that each statement is
    new text to the server, parsed and planned again. Binding them at the server instead lets
    psycopg prepare a statement once the connection ran it `prepare_threshold` times (settings:
    DATABASE_PREPARED_STATEMENTS); the cursor is wrapped as Django wraps its own, so it is
    health-checked, its errors are Django's and tests count its queries."""
    if connection.vendor != "postgresql" or connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = ServerBindingCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def _read(sql: str, params: list) -> list[tuple]:
    with _cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _read_checking(db, sql: str, params: list) -> list[tuple]:
    """The rows of `sql`. As the request's first statement on a persistent connection, it is
    also the connection's health check (CONN_HEALTH_CHECKS), which would otherwise cost a
    SELECT 1 and its round trip: should the connection have died since its last request, it is
    replaced and the read run again, as the check would have done before it."""
    if db.connection is None or not db.health_check_enabled or db.health_check_done or db.in_atomic_block:
        return _read(sql, params)
    db.health_check_done = True
    try:
        return _read(sql, params)
    except (OperationalError, InterfaceError):
        if db.is_usable():  # the database refused the statement itself: not the connection's fault
            raise
        db.close()
        return _read(sql, params)


def fetch(sql: str, params: list, fields: tuple[Field | None, ...]) -> list[list]:
    """Run `sql`, a read, whose columns are `fields` in order (None for a computed one), and
    return its rows converted."""
    db = connections[DEFAULT_DB_ALIAS]
    rows = _read_checking(db, sql, params)
    convert = _converters(db, fields)
    if not convert:
        return [list(row) for row in rows]
    converted = []
    for row in rows:
        row = list(row)
        for position, applied, expression in convert:
            value = row[position]
            for converter, unbound in applied:
                value = converter(db.ops, value, expression, db) if unbound else converter(value, expression, db)
            row[position] = value
        converted.append(row)
    return converted


def integer_id(value) -> int | None:
    """`value` (a path or form argument: any text) as a positive id a BIGINT column can hold;
    None for anything else, which no row has."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number < 2**63 else None


def insert(instance: Model) -> None:
    """Add `instance` as a new row, as instance.save() would: auto_now(_add) fields stamped, each
    value prepared by its field, its primary key set from the database. Sends no signal (none
    is connected to the models written this way)."""
    model = type(instance)
    db = connections[DEFAULT_DB_ALIAS]
    sql, fields, returning = _insert_sql(db.vendor, model)
    params = [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]
    with _cursor() as cursor:
        cursor.execute(sql, params)
        pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    setattr(instance, model._meta.pk.attname, pk)
    instance._state.adding = False
    instance._state.db = db.alias


@functools.cache
def _insert_sql(vendor: str, model: type[Model]) -> tuple[str, tuple[Field, ...], bool]:
    meta = model._meta
    # What Model._do_insert writes for a new row: every local column but the automatic key.
    fields = tuple(field for field in meta.local_concrete_fields if field is not meta.auto_field)
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    sql = f"INSERT INTO {table(model)} ({names}) VALUES ({', '.join(['%s'] * len(fields))})"
    returning = connection.features.can_return_columns_from_insert
    if returning:
        sql += f" RETURNING {connection.ops.quote_name(meta.pk.column)}"
    return sql, fields, returning
