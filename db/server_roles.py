"""Roles of the bundled PostgreSQL: castkeep connects as `castkeep`, a role that is not a
superuser and owns the catalogue database, its schema and everything the migrations create.

The superuser (`postgres`, password in ``<home>/pg/password``) is used only to bootstrap: create
the owner role (password in ``<home>/pg/app_password``, 0600), create the database owned by it,
create the `vector` extension (pgvector is not a trusted extension, so its owner cannot), and hand
over what an older castkeep created as the superuser. Every normal command finds all of that in
place through the owner role and never logs in as the superuser.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from castkeep.errors import DatabaseError

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
APP_ROLE = "castkeep"

# Objects of schema public not owned by the current user, extension members aside.
_FOREIGN_OWNED = """
SELECT count(*) FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""

# (statement, ...) that hand every object of schema public (extension members aside) to a role.
_HAND_OVER = """
SELECT format('ALTER %%s %%s OWNER TO %%I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
              c.oid::regclass, %(role)s::text)
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, %(role)s::text)
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT format('ALTER %%s %%s OWNER TO %%I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
              t.oid::regtype, %(role)s::text)
FROM pg_type t
WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
  AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
"""


def _connect(port: int, user: str, password: str, dbname: str):
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=dbname,
                           connect_timeout=5, autocommit=True)


def _write_secret(path: Path, value: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    os.replace(tmp, path)


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _can_log_in(port: int, password: str | None) -> bool:
    import psycopg

    if password is None:
        return False
    try:
        with _connect(port, APP_ROLE, password, "postgres"):
            return True
    except psycopg.OperationalError:
        return False


def ensure_app_role(port: int, superuser_password: str, password_file: Path) -> str:
    """The owner role's password, after making sure the role logs in with it (creating the role,
    or setting a new password, as the superuser when it does not)."""
    import psycopg
    from psycopg import sql

    password = _read_secret(password_file)
    if _can_log_in(port, password):
        return password  # type: ignore[return-value]
    password = secrets.token_urlsafe(24)
    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}")
    try:
        with _connect(port, SUPERUSER, superuser_password, "postgres") as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                conn.execute(sql.SQL(verb + " ROLE {} ").format(sql.Identifier(APP_ROLE))
                             + attributes.format(sql.Literal(password)))
            if not exists:
                logger.info("created the database role %r castkeep connects as", APP_ROLE)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot set up the role {APP_ROLE!r} in the bundled PostgreSQL: {exc}") from exc
    _write_secret(password_file, password)
    return password


def database_ready(port: int, password: str, database: str) -> bool:
    """Whether the owner role finds `database` its own, with pgvector and nothing of schema
    public owned by another role (a data dir of an older castkeep has all of it owned by the
    superuser)."""
    import psycopg

    try:
        with _connect(port, APP_ROLE, password, database) as conn:
            owner, vector, foreign = conn.execute(
                "SELECT (SELECT pg_get_userbyid(datdba) FROM pg_database"
                "        WHERE datname = current_database()) = current_user,"
                " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector'),"
                f" ({_FOREIGN_OWNED})"
            ).fetchone()
    except psycopg.OperationalError:
        return False
    return bool(owner and vector and foreign == 0)


def bootstrap_database(port: int, superuser_password: str, database: str) -> None:
    """As the superuser: `database` exists and belongs to the owner role, with the vector
    extension, its schema and every object in it (extension members aside) owned by that role."""
    import psycopg
    from psycopg import sql

    role = sql.Identifier(APP_ROLE)
    try:
        with _connect(port, SUPERUSER, superuser_password, "postgres") as conn:
            row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                               (database,)).fetchone()
            if row is None:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), role))
            elif row[0] != APP_ROLE:
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), role))
        with _connect(port, SUPERUSER, superuser_password, database) as conn, conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            schema_owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                                        "WHERE nspname = 'public'").fetchone()[0]
            if schema_owner not in (APP_ROLE, "pg_database_owner"):
                conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(role))
            statements = [r[0] for r in conn.execute(_HAND_OVER, {"role": APP_ROLE}).fetchall()]
            for statement in statements:
                conn.execute(statement)
            if statements:
                logger.info("handed %d objects of database %r to the role %r", len(statements),
                            database, APP_ROLE)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot set up the database {database!r} in the bundled PostgreSQL: {exc}") from exc
