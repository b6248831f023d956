"""What every entry point (CLI command, flow) opens first: settings, a migrated catalogue and the
object store, built from settings in one place.

    with open_runtime() as rt:
        with rt.session_scope() as session:
            ...
        rt.store.put_bytes(...)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from typing import TYPE_CHECKING

from pydantic import ValidationError

from castkeep.db.object_store import ObjectStore
from castkeep.errors import ConfigurationError
from castkeep.flows.settings import Settings, get_settings

if TYPE_CHECKING:  # imported by open_runtime: `castkeep status` reads settings without them
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)


def load_settings() -> Settings:
    """get_settings(), with a bad environment turned into a ConfigurationError naming the
    variable to fix."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = "__".join(str(p) for p in err["loc"]).upper()
            problems.append(f"CASTKEEP_{loc}: {err['msg']}")
        raise ConfigurationError("bad setting(s): " + "; ".join(problems)) from None


def database_url(settings: Settings) -> tuple[str, bool]:
    """(URL, bundled?): the configured external URL, or the bundled server's (started if needed)."""
    if settings.database.url:
        return settings.database.url, False
    from castkeep.db.server import DEFAULT_DATABASE, ensure_bundled_server, running_server
    from castkeep.db.server_roles import database_ready

    # The usual case after the first command: the server is up and the catalogue ready. Its
    # postmaster.pid and one login as the owner role say so, without the start-up lock and
    # role checks that ensure_bundled_server does for a server it may have to start or set up.
    server = running_server(settings.home)
    if server is not None and server.app_password and database_ready(
            server.port, server.app_password, DEFAULT_DATABASE):
        return server.url(DEFAULT_DATABASE), True
    return ensure_bundled_server(settings.home, port=settings.database.bundled_port), True


def build_store(settings: Settings) -> ObjectStore:
    s = settings.storage
    if s.kind == "filesystem":
        from castkeep.db.fs_store import FilesystemStore

        return FilesystemStore(settings.home / "objects", group=s.group or None)
    from castkeep.db.s3_store import S3Store

    if not s.access_key or not s.secret_key.get_secret_value():
        raise ConfigurationError(
            "the s3 object store needs credentials: set CASTKEEP_STORAGE__ACCESS_KEY and "
            "CASTKEEP_STORAGE__SECRET_KEY (or CASTKEEP_STORAGE__KIND=filesystem)"
        )
    return S3Store(
        endpoint=s.endpoint,
        access_key=s.access_key,
        secret_key=s.secret_key.get_secret_value(),
        secure=s.secure,
        region=s.region,
        bucket=s.bucket,
        restricted_bucket=s.restricted_bucket,
        object_lock=s.object_lock,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    bundled: bool = False

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_runtime(settings: Settings | None = None, *, migrate: bool = True) -> Runtime:
    """Settings -> catalogue (bundled server started when database.url is empty; migrated to
    head unless `migrate` is False) -> object store."""
    from castkeep.db import migrate as migrations
    from castkeep.db.engine import make_engine, session_factory

    settings = settings or load_settings()
    url, bundled = database_url(settings)
    engine = make_engine(url)
    try:
        if migrate and migrations.upgrade_if_behind(url, engine):
            logger.info("migrated the catalogue to %s", migrations.head())
        store = build_store(settings)
    except BaseException:
        engine.dispose()
        raise
    runtime = Runtime(settings, engine, session_factory(engine), store, bundled)
    from castkeep.flows.anchor import install as anchor_audit_log

    anchor_audit_log(runtime)  # a signed checkpoint every N audit events
    return runtime

