"""Which failed task runs Prefect retries: a failure of the machine or of a service (a dropped
database connection, an unwritable or unreachable object store, an engine's device error) may
pass; a user's error (bad input, an unknown id, a refusal, a wrong setting) fails the same way
every time, so it is reported at once, without retries or their delays."""

from __future__ import annotations

from castkeep.errors import CastkeepError, ConfigurationError, EngineError, InfrastructureError


def worth_retrying(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, ConfigurationError):  # a wrong setting stays wrong
        return False
    if isinstance(exc, (InfrastructureError, EngineError)):
        return True
    # Any other castkeep error is the user's to fix; anything else is unexpected: retried.
    return not isinstance(exc, CastkeepError)


def retry_unless_user_error(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's hook
    """`retry_condition_fn` for tasks with retries."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - only classified
        return worth_retrying(exc)
    return False
