"""Query rules of PostgreSQL that SQLite does not enforce, checked on SQLite as well."""

from contextlib import contextmanager

from django.db import connection


class NulInQuery(AssertionError):
    """Text holding NUL reached a query: PostgreSQL would refuse it (a 500 there)."""


def _refuse_nul(execute, sql, params, many, context):
    # NUL inside a JSON value reaches the database as the escape \u0000, which cannot be told
    # from text here; the validators refuse such values before they are stored.
    rows = params if many else [params]
    for value in (v for row in rows for v in (row or ())):
        if isinstance(value, str) and "\x00" in value:
            raise NulInQuery(f"NUL reaches the database (PostgreSQL refuses it): {sql[:300]}")
    return execute(sql, params, many, context)


@contextmanager
def no_nul_in_queries():
    """Fail any query of the block whose parameters hold NUL, as PostgreSQL would."""
    with connection.execute_wrapper(_refuse_nul):
        yield
