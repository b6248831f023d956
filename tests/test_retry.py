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
    from castkeep.tasks.revoke import revoke_task
    from castkeep.tasks.sign import finish_variant_task

    for task in (revoke_task, finish_variant_task):
        assert task.retries == 2 and task.retry_condition_fn is retry_unless_user_error
