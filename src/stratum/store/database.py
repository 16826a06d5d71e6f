"""Where the store lives and how to open it: SQLite file by default, PostgreSQL for production."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from stratum.core.errors import Invalid, Unavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The store holds every tenant's objects and the token hashes: only its owner may read it.
FILE_MODE = 0o600
# SQLite makes these beside the database, with the database file's mode.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
# The last guard against NaN and infinity: JSON has no such numbers, and a body holding one
# could be written (SQLite keeps the text) but never served again.
json_dumps = functools.partial(json.dumps, allow_nan=False)


def stratum_home() -> Path:
    """The data directory: $STRATUM_HOME, else the XDG data directory for 'stratum'."""
    if home := os.environ.get("STRATUM_HOME"):
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("stratum", appauthor=False))


def default_database_url() -> str:
    """$STRATUM_DATABASE_URL, else an SQLite file in the data directory."""
    if url := os.environ.get("STRATUM_DATABASE_URL"):
        return url
    return f"sqlite:///{stratum_home() / 'stratum.db'}"


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// as people write them; use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend: WAL and immediate write transactions on SQLite."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise Invalid(
            f"database URL {url!r} is not valid: expected e.g. "
            "sqlite:////path/stratum.db or postgresql://host/db"
        ) from err
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database)
    # No pre-ping: it costs a round trip per transaction; a dropped connection fails that
    # one transaction (503, retried by clients) and the pool replaces it.
    return create_engine(
        url, pool_size=10, max_overflow=20, pool_recycle=1800, json_serializer=json_dumps
    )


def private_sqlite_file(database: str) -> None:
    """Create the database file readable by its owner only (0600), before SQLite makes it
    with the umask's mode; tighten a file that an older version left readable to others."""
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except PermissionError:
        return  # not ours to open read-write: SQLite says why when it tries
    try:
        os.fchmod(fd, FILE_MODE)
        for suffix in _SQLITE_COMPANIONS:
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.chmod(FILE_MODE)
    except PermissionError:
        pass  # a file another user owns: its mode is theirs to set
    finally:
        os.close(fd)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        private_sqlite_file(database)
    # A pool keeps connections open: closing SQLite's last connection checkpoints the WAL,
    # which would cost every short transaction ~10 ms. :memory: needs one shared connection.
    if database and database != ":memory:":
        engine = create_engine(
            url,
            pool_size=8,
            max_overflow=16,
            connect_args={"timeout": 30, "check_same_thread": False},
            json_serializer=json_dumps,
        )
    else:
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            json_serializer=json_dumps,
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(_SQLITE_AUTOCOMMIT):
            return  # pysqlite was told not to open transactions: each statement commits
        # A write takes the lock up front: two deferred transactions that both upgrade to
        # writers would deadlock and one would fail with "database is locked".
        mode = "IMMEDIATE" if options.get("stratum_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


_SQLITE_AUTOCOMMIT = "stratum_autocommit"


def autocommit_options(engine: Engine) -> dict[str, Any]:
    """Execution options for a connection whose statements each run and commit on their
    own, with no BEGIN/COMMIT around them. SQLite's isolation level is left alone (the
    dialect would reset pysqlite's transaction handling when the connection is returned):
    the begin hook above skips its BEGIN instead."""
    if engine.dialect.name == "sqlite":
        return {_SQLITE_AUTOCOMMIT: True}
    return {"isolation_level": "AUTOCOMMIT"}


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to run on every start."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several server replicas may start at once: one migrates, the others wait.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7270001)")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except Exception as err:  # the database is unreachable or refuses us
        if isinstance(err, Invalid):
            raise
        raise Unavailable(f"cannot open the store at {engine.url!r}: {err}") from err
