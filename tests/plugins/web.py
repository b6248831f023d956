"""Web API fixtures: the real app under uvicorn on 127.0.0.1 (a free port) in a thread, and
signed-in users of every role.

- `web_server` (function): the app for the test's settings, serving; `.url`, `.app`, `.client()`
  (an httpx.Client on the base URL). Needs request_env (or runtime_env) for the catalogue;
  fulfilment runs against the Prefect test harness.
- `web_server_deployed` (function): the same, fulfilling through the fulfil-request deployment.
- `web_users` (function): one user per role, each with a password (PASSWORD) and an API token:
  `web_users["reviewer"].token`. Requesters `requester` (team north) and `outsider` (team south).
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

PASSWORD = "s3cret-passphrase-for-tests"


@dataclass
class WebServer:
    url: str
    app: Any

    def client(self, token: str | None = None, **kwargs: Any):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)


@dataclass(frozen=True)
class WebUser:
    username: str
    roles: tuple[str, ...]
    team: str
    token: str


@pytest.fixture
def web_server(request_env, prefect_harness):
    from castkeep.flows.settings import get_settings
    from castkeep.flows.web import create_app

    yield from _serve(create_app(get_settings()))


@pytest.fixture
def web_server_deployed(request_env, prefect_harness):
    """The app as `castkeep web` runs it: submissions start runs of the fulfil-request deployment,
    which its own Prefect runner executes in subprocesses."""
    from castkeep.flows.settings import get_settings
    from castkeep.flows.web import create_app

    yield from _serve(create_app(get_settings(), dispatch="deployment", serve_runs=True))


def _serve(app):
    import uvicorn

    from castkeep.net import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    # The Prefect harness's settings live in this context; the server thread and its jobs use it.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    yield WebServer(url=f"http://127.0.0.1:{port}", app=app)
    server.should_exit = True
    thread.join(timeout=120)


@pytest.fixture
def web_users(request_env) -> dict[str, WebUser]:
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import add_user, create_token

    people = {
        "requester": (("requester",), "north"),
        "outsider": (("requester",), "south"),
        "reviewer": (("reviewer",), "default"),
        "compliance": (("compliance",), "default"),
        "admin": (("admin",), "default"),
    }
    users = {}
    with open_runtime() as runtime:
        for name, (roles, team) in people.items():
            add_user(runtime, name, roles, team=team, password=PASSWORD, actor="tests")
            token = create_token(runtime, name, label="tests", actor="tests")["token"]
            users[name] = WebUser(name, roles, team, token)
    return users
