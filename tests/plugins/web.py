"""Web API fixtures: the real app under uvicorn on 127.0.0.1 (a free port) in a thread, and
signed-in users of every role.

- `web_server` (function): the app for the test's settings, serving; `.url`, `.app`, `.client()`
  (an httpx.Client on the base URL). Needs request_env (or runtime_env) for the catalogue;
  fulfilment runs against the Prefect test harness.
- `web_server_deployed` (function): the same, fulfilling through the fulfil-request deployment.
- `web_users` (function): one user per role, each with a password (PASSWORD) and an API token:
  `web_users["reviewer"].token`. Requesters `requester` and `teammate` (team north) and
  `outsider` (team south).
- `serve_app` (function): `serve_app(app, **uvicorn_config)` -> WebServer, another server in the
  same test (a second process's app on the same data dir, or one served over TLS with
  ssl_certfile/ssl_keyfile); stopped at the end of the test.
- `tls_files` (function): (certificate, key) PEM paths of a self-signed certificate for
  127.0.0.1, valid for an hour.
- `completed_request(server, token, doc)`: submits a request through the API as the token's
  user, polls it until it ends (10 minutes at most) and returns its document, asserted completed.
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


def completed_request(server: WebServer, token: str, doc: dict[str, Any]) -> dict[str, Any]:
    with server.client(token) as client:
        answer = client.post("/api/v1/requests", json=doc)
        assert answer.status_code == 202, answer.text
        rid = answer.json()["id"]
        deadline = time.monotonic() + 600
        while (found := client.get(f"/api/v1/requests/{rid}").json())["status"] not in (
                "completed", "refused", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
    assert found["status"] == "completed", found
    return found


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


@pytest.fixture
def serve_app(request_env, prefect_harness):
    running = []

    def serve(app, **config: Any) -> WebServer:
        served = _serve(app, **config)
        running.append(served)
        return next(served)

    yield serve
    for served in reversed(running):
        next(served, None)  # stops the server


@pytest.fixture
def tls_files(tmp_path):
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "web-cert.pem", tmp_path / "web-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _serve(app, **config: Any):
    import uvicorn

    from castkeep.net import free_port

    port = free_port()
    scheme = "https" if config.get("ssl_certfile") else "http"
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **config))
    # The Prefect harness's settings live in this context; the server thread and its jobs use it.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    yield WebServer(url=f"{scheme}://127.0.0.1:{port}", app=app)
    server.should_exit = True
    thread.join(timeout=120)


@pytest.fixture
def web_users(request_env) -> dict[str, WebUser]:
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import add_user, create_token

    people = {
        "requester": (("requester",), "north"),
        "teammate": (("requester",), "north"),
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
