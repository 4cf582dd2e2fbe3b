"""Owner-only modes for the data folder and the files in it, and a start-up check that says so.

The embedded database holds session keys: a local user able to read it could take over an admin's
session. So the data folder is created 0700 and every database file 0600 (the secret key and the
encryption key file already are). Files found wider are tightened where this process owns them,
and the system check ``sumosources.W001`` names each one with the mode it had.

This module must not touch ``django.conf.settings`` at import: the settings module imports it.
"""

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from django.core.checks import Warning

logger = logging.getLogger(__name__)

OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600
# What SQLite may create beside a database file (the rollback journal only outside WAL mode).
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Exposure:
    """A path that was readable or writable by others: the mode it had, and whether it was fixed."""

    path: Path
    mode: int
    wanted: int
    fixed: bool

    def sentence(self, *, with_path: bool = True) -> str:
        found = f"mode {self.mode:04o} opens it to other local users"
        if with_path:
            found = f"{self.path}: {found}"
        if self.fixed:
            return f"{found}; changed to {self.mode & self.wanted:04o}."
        return f"{found}, and this user cannot change it: run chmod {self.wanted:o} {self.path}"


# Every exposure this process found, so the system check can report those fixed before it ran
# (the data folder at settings import, database files at the first connection).
_found: dict[Path, Exposure] = {}


def restrict(path: Path | str, wanted: int) -> Exposure | None:
    """Drop the mode bits of ``path`` outside ``wanted`` if this process owns it.

    Returns None when the path is missing or already no wider than ``wanted``; otherwise the
    exposure (also remembered for :func:`check_data_files`). Never raises for a path it cannot
    change: it reports it instead.
    """
    path = Path(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(status.st_mode)
    if not mode & ~wanted:
        return None
    fixed = False
    if status.st_uid == os.geteuid():
        try:
            os.chmod(path, mode & wanted)
            fixed = True
        except OSError:
            pass
    exposure = Exposure(path=path, mode=mode, wanted=wanted, fixed=fixed)
    _found[path] = exposure
    return exposure


def make_data_dir(path: Path) -> None:
    """Create the data folder owner-only; tighten an existing one (reported by the check)."""
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    restrict(path, OWNER_ONLY_DIR)


def is_file_database(name) -> bool:
    name = str(name)
    return bool(name) and name != ":memory:" and not name.startswith("file:")


def secure_sqlite_database(name) -> None:
    """Before SQLite opens ``name``: create it 0600 if missing, tighten its files if wider.

    SQLite gives a new ``-wal`` or ``-shm`` file the mode of the database file (it chmods them to
    it, whatever the umask), so a database file created 0600 keeps all of them private without a
    process-wide umask. Files already there (an older install, a WAL another process holds open)
    are tightened here, with one warning line each.
    """
    if not is_file_database(name):
        return
    path = Path(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY_FILE)
    except FileExistsError:
        pass
    except FileNotFoundError:
        return  # no such folder: SQLite reports that in its own words
    else:
        # An empty file is a valid empty SQLite database.
        os.close(fd)
    for suffix in SQLITE_SUFFIXES:
        reported = Path(f"{path}{suffix}") in _found
        exposure = restrict(f"{path}{suffix}", OWNER_ONLY_FILE)
        # A fixed file is fine from now on; one this user cannot change is said once, not at
        # every connection.
        if exposure and (exposure.fixed or not reported):
            logger.warning("%s", exposure.sentence())


def data_file_paths(settings) -> list[tuple[Path, int]]:
    """The paths that must be owner-only under ``settings``, each with the widest mode allowed."""
    paths = [(Path(settings.DATA_DIR), OWNER_ONLY_DIR)]
    paths.append((Path(settings.DATA_DIR) / "secret_key", OWNER_ONLY_FILE))
    paths.append((Path(settings.ENCRYPTION_KEY_FILE), OWNER_ONLY_FILE))
    for database in settings.DATABASES.values():
        if "sqlite" in database.get("ENGINE", "") and is_file_database(database.get("NAME", "")):
            paths.extend(
                (Path(f"{database['NAME']}{suffix}"), OWNER_ONLY_FILE) for suffix in SQLITE_SUFFIXES
            )
    return paths


def check_data_files(app_configs=None, **kwargs):
    """System check ``sumosources.W001``: a data file or folder open to other local users.

    Tightens what this process owns (so the warning says what it was, once) and names the rest.
    """
    from django.conf import settings

    for path, wanted in data_file_paths(settings):
        restrict(path, wanted)
    return [
        Warning(
            exposure.sentence(with_path=False),
            hint=(
                "Session keys and secrets in the data folder let a local user act as the admin. "
                "Keep the folder 0700 and its files 0600."
            ),
            obj=str(exposure.path),
            id="sumosources.W001",
        )
        for exposure in sorted(_found.values(), key=lambda e: str(e.path))
    ]
