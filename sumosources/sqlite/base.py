"""Django's SQLite backend, with the database files readable by their owner only.

The one difference: before each new connection the database file is created 0600 if missing and
its files tightened if wider (see :func:`sumosources.datafiles.secure_sqlite_database`). Doing it
here rather than in a ``connection_created`` handler matters for a new database: that signal fires
after SQLite has already created the file, and its ``-wal`` and ``-shm`` with the same mode.
"""

from django.db.backends.sqlite3 import base

from sumosources.datafiles import secure_sqlite_database


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        secure_sqlite_database(conn_params["database"])
        return super().get_new_connection(conn_params)
