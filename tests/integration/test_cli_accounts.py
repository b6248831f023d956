"""`castkeep users add|list|disable` and `castkeep tokens create|list|revoke` against a real catalogue:
argon2 hashes and token sha256 only are stored, audit events name the OS user, nothing secret
is printed by list or logged."""

from __future__ import annotations

import getpass
import hashlib
import json
import logging

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from castkeep.errors import AccountError

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def app():
    from castkeep.flows import cli

    cli._register()
    return cli.app


def _rows(url: str, sql: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _runtime():
    from castkeep.flows.runtime import open_runtime

    return open_runtime()


def test_users_add_list_disable(app, runtime_env, clean_db, caplog):
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    added = runner.invoke(app, ["users", "add", "rita", "--role", "reviewer,requester", "--team",
                                "north", "--password-stdin", "--json"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["roles"] == ["requester", "reviewer"]
    listed = runner.invoke(app, ["users", "list", "--json"])
    (user,) = json.loads(listed.stdout)
    assert (user["username"], user["team"], user["disabled"]) == ("rita", "north", False)
    assert PASSWORD not in listed.stdout and "argon2" not in listed.stdout
    (row,) = _rows(clean_db, "SELECT password_hash FROM app_user")
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]

    from castkeep.tasks.accounts import identity_for_password

    with _runtime() as rt:
        who = identity_for_password(rt, "rita", PASSWORD)
        assert who is not None and who.roles == {"requester", "reviewer"} and who.team == "north"
        assert identity_for_password(rt, "rita", PASSWORD + "x") is None
    assert runner.invoke(app, ["users", "disable", "rita"]).exit_code == 0
    with _runtime() as rt:
        assert identity_for_password(rt, "rita", PASSWORD) is None
    events = _rows(clean_db, "SELECT kind, actor, payload::text AS p FROM audit_event "
                             "WHERE kind LIKE 'user.%' ORDER BY seq")
    assert [(e["kind"], e["actor"]) for e in events] == [("user.created", getpass.getuser()),
                                                         ("user.disabled", getpass.getuser())]
    assert all(PASSWORD not in e["p"] for e in events)
    assert PASSWORD not in caplog.text


def test_users_add_refuses_unknown_roles_and_duplicates(app, runtime_env):
    runner = CliRunner()
    bad = runner.invoke(app, ["users", "add", "sam", "--role", "superuser"])
    assert bad.exit_code != 0 and "superuser" in str(bad.exception) + bad.output
    assert runner.invoke(app, ["users", "add", "sam", "--role", "requester"]).exit_code == 0
    dup = runner.invoke(app, ["users", "add", "sam", "--role", "requester"])
    assert dup.exit_code != 0 and "exists" in str(dup.exception) + dup.output


def test_tokens_create_and_revoke(app, runtime_env, clean_db, caplog):
    caplog.set_level(logging.DEBUG)
    from castkeep.tasks.accounts import identity_for_token

    runner = CliRunner()
    assert runner.invoke(app, ["users", "add", "cora", "--role", "compliance"]).exit_code == 0
    made = runner.invoke(app, ["tokens", "create", "cora", "--label", "ci", "--json"])
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    token = info["token"]
    (row,) = _rows(clean_db, "SELECT token_sha256, label, revoked FROM api_token")
    assert row == {"token_sha256": hashlib.sha256(token.encode()).hexdigest(), "label": "ci",
                   "revoked": False}
    with _runtime() as rt:
        assert identity_for_token(rt, token).username == "cora"
        assert identity_for_token(rt, token + "x") is None
    (listed,) = json.loads(runner.invoke(app, ["tokens", "list", "cora", "--json"]).stdout)
    assert listed["id"] == info["id"] and listed["label"] == "ci"
    assert (listed["live"], listed["revoked"]) == (True, False)
    assert runner.invoke(app, ["tokens", "revoke", info["id"]]).exit_code == 0
    with _runtime() as rt:
        assert identity_for_token(rt, token) is None
    shown = runner.invoke(app, ["tokens", "list", "cora"])
    assert f"{info['id']}  revoked" in shown.stdout and "ci" in shown.stdout
    # Neither the token nor its sha256 is ever listed.
    assert token not in shown.stdout and row["token_sha256"] not in shown.stdout
    (listed,) = json.loads(runner.invoke(app, ["tokens", "list", "cora", "--json"]).stdout)
    assert (listed["live"], listed["revoked"]) == (False, True)
    assert set(listed) == {"id", "label", "created_at", "expires_at", "revoked", "live"}
    unknown = runner.invoke(app, ["tokens", "list", "nobody"])
    assert isinstance(unknown.exception, AccountError) and unknown.exception.exit_code == 2
    assert "`castkeep users list`" in str(unknown.exception)
    kinds = [r["kind"] for r in _rows(clean_db, "SELECT kind FROM audit_event WHERE kind LIKE "
                                                "'token.%' ORDER BY seq")]
    assert kinds == ["token.created", "token.revoked"]
    assert token not in caplog.text
    assert all(token not in r["p"] for r in _rows(clean_db, "SELECT payload::text AS p FROM audit_event"))


def test_expired_token_signs_in_nobody(app, runtime_env, clean_db):
    from castkeep.tasks.accounts import identity_for_token

    runner = CliRunner()
    assert runner.invoke(app, ["users", "add", "eve", "--role", "requester"]).exit_code == 0
    token = json.loads(runner.invoke(app, ["tokens", "create", "eve", "--expires", "1",
                                           "--json"]).stdout)["token"]
    with _runtime() as rt:
        assert identity_for_token(rt, token).username == "eve"
    engine = sa.create_engine(clean_db)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_token SET expires_at = now() - interval '1 second'"))
    engine.dispose()
    with _runtime() as rt:
        assert identity_for_token(rt, token) is None
    (listed,) = json.loads(CliRunner().invoke(app, ["tokens", "list", "eve", "--json"]).stdout)
    assert (listed["live"], listed["revoked"]) == (False, False) and listed["expires_at"]
