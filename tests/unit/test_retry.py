"""Which failed task runs are retried: infrastructure yes, a user's error or a wrong setting no."""

from __future__ import annotations

import pytest

from castkeep import errors
from castkeep.tasks.retry import retry_unless_user_error, worth_retrying


@pytest.mark.parametrize("exc, retried", [
    (errors.DatabaseError("server gone"), True),
    (errors.ObjectStoreError("disk full"), True),
    (errors.EngineError("CUDA error"), True),
    (OSError("I/O error"), True),
    (RuntimeError("unexpected"), True),
    (errors.NotFoundError("no consent"), False),
    (errors.ManifestError("bad file"), False),
    (errors.ConsentError("revoked"), False),
    (errors.ConfigurationError("set CASTKEEP_X"), False),
    (errors.DatabaseConfigurationError("password authentication failed"), False),
    (None, False),
])
def test_worth_retrying(exc, retried):
    assert worth_retrying(exc) is retried


def test_tasks_with_retries_skip_them_for_user_errors():
    """Every Prefect task castkeep defines with retries classifies the error first."""
    from prefect import Task

    from castkeep.flows import audit, fulfil_request, ingest_references, revoke

    with_retries = [
        t for module in (audit, fulfil_request, ingest_references, revoke)
        for t in vars(module).values() if isinstance(t, Task) and t.retries
    ]
    assert {t.name for t in with_retries} >= {
        "variant", "revoke-consent", "plan-ingest", "ingest-chunk", "audit-integrity"}
    for task in with_retries:
        assert task.retry_condition_fn is retry_unless_user_error, task.name


def test_a_refusal_is_never_retried():
    from castkeep.errors import Refused

    assert not worth_retrying(Refused(["talent x: consent revoked"], "consent"))
    assert Refused(["x"], "consent").exit_code == 3


def test_tasks_modules_import_no_prefect():
    """tasks/ holds plain functions; the flows wrap them as Prefect tasks."""
    import subprocess
    import sys

    code = ("import sys, pkgutil, importlib, castkeep.tasks as t\n"
            "for m in pkgutil.iter_modules(t.__path__):\n"
            "    importlib.import_module('castkeep.tasks.' + m.name)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'prefect'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
