"""PostgreSQL as Airflow's metadata database in the embedded stack: Debian's server binaries, a data folder under
``state/postgres``, a generated password (0600) and a server that listens on loopback only.

SQLite serialises every write behind one lock; Airflow's scheduler, API server and task runners then time out on
each other under load (a backfill cannot even be created while the scheduler writes). PostgreSQL is what Airflow
runs on in production and what the compose deployment uses.

PostgreSQL refuses to run as root: when the stack is started by root, the server and ``initdb`` run as the
``postgres`` system user (Debian's package creates it) and the data folder belongs to it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from twinlayer.localstack.secret_files import owner_only
from twinlayer.model.config import Settings

SUPERUSER = "airflow"
DATABASE = "airflow"
SERVER_SETTINGS = {
    # a small server for a 2-core box shared with a dozen other processes
    "shared_buffers": "32MB",
    "max_connections": "80",
    "work_mem": "4MB",
    "maintenance_work_mem": "32MB",
    "max_wal_size": "256MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_min_error_statement": "error",
    "autovacuum_naptime": "5min",
}


class PostgresError(RuntimeError):
    """The metadata database could not be prepared; the message says why and what to do."""


def folder(settings: Settings) -> Path:
    return settings.state_dir / "postgres"


def bin_dir() -> Path:
    """The newest PostgreSQL server installed the Debian way (/usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise PostgresError(
            "no PostgreSQL server found in /usr/lib/postgresql: install Debian's `postgresql` "
            "package (`make packages` does it)"
        )
    return found[-1].parent


def run_as() -> str | None:
    """The system user the server runs as: ``postgres`` when the stack runs as root, else the stack's own user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError(
            "running as root, but there is no `postgres` system user to run the server as: "
            "install Debian's `postgresql` package"
        ) from None
    return "postgres"


def password(settings: Settings) -> str:
    """The database password, generated once into ``state/postgres/password`` (0600)."""
    return owner_only(folder(settings) / "password", lambda: secrets.token_urlsafe(24)).read_text().strip()


def sqlalchemy_url(settings: Settings) -> str:
    return f"postgresql+psycopg2://{SUPERUSER}:{password(settings)}@{settings.host}:{settings.postgres_port}/{DATABASE}"


def command(settings: Settings) -> list[str]:
    """The server in the foreground, as supervisord runs it."""
    options = {
        **SERVER_SETTINGS,
        "listen_addresses": settings.host,
        "unix_socket_directories": str(folder(settings) / "run"),
    }
    args = [str(bin_dir() / "postgres"), "-D", str(folder(settings) / "data"), "-p", str(settings.postgres_port)]
    for key, value in options.items():
        args += ["-c", f"{key}={value}"]
    return args


def _as_server_user(args: list[str]) -> list[str]:
    user = run_as()
    return ["runuser", "-u", user, "--", *args] if user else args


def _let_reach(home: Path, user: str) -> None:
    """The server user must be able to walk down to ``home``: a parent folder closed to others (a CI checkout
    under a 0700 home, say) gets search permission for others (o+x: enter, not list), and the change is said."""
    home.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(home)], check=False).returncode == 0:
        return
    for parent in reversed(home.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
            print(
                f"twinlayer: gave others search permission (o+x) on {parent} so the `{user}` user running "
                "PostgreSQL can reach its data folder"
            )


def initialise(settings: Settings) -> None:
    """Create the data folder with ``initdb`` once (password authentication, UTF-8); later calls do nothing."""
    home = folder(settings)
    data = home / "data"
    secret = password(settings)
    user = run_as()
    if user:
        _let_reach(home, user)
    for sub in ("data", "run"):  # the run folder holds the socket and its lock file: needed at every start
        (home / sub).mkdir(parents=True, exist_ok=True)
        (home / sub).chmod(0o700)
        if user:
            shutil.chown(home / sub, user, user)
    if (data / "PG_VERSION").exists():
        return
    pwfile = home / "run" / "initdb-password"
    pwfile.write_text(secret)
    if user:
        shutil.chown(pwfile, user, user)
    pwfile.chmod(0o600)
    try:
        result = subprocess.run(
            _as_server_user(
                [
                    str(bin_dir() / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            ),
            check=False,
            capture_output=True,
            text=True,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        hint = (
            f" The `{user}` user must be able to reach {home} (every parent folder needs o+x)."
            if user and "ermission denied" in result.stderr
            else ""
        )
        raise PostgresError(f"initdb failed:{hint}\n{result.stdout[-1500:]}{result.stderr[-1500:]}")


def connect(settings: Settings, database: str = "postgres", timeout: int = 3):
    import psycopg2

    return psycopg2.connect(
        host=settings.host,
        port=settings.postgres_port,
        user=SUPERUSER,
        password=password(settings),
        dbname=database,
        connect_timeout=timeout,
    )


def check_postgres(settings: Settings) -> None:
    """Answers a query on the maintenance database."""
    with connect(settings) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1")


def ensure_database(settings: Settings) -> None:
    """Create Airflow's database when it does not exist yet."""
    conn = connect(settings)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        conn.close()
