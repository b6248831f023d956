"""`castkeep web` as a user runs it: the command serves the API on the port it is given, and a
request submitted to it needs the fulfil-request deployment on the configured Prefect server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_castkeep_web_serves_the_api(request_env, prefect_harness, web_users):
    from prefect.settings import PREFECT_API_URL

    from castkeep.net import free_port
    from tests.plugins.request import request_doc

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:  # an earlier test may have registered it
        try:
            client.delete_deployment(client.read_deployment_by_name(
                "fulfil-request/fulfil-request").id)
        except ObjectNotFound:
            pass
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "castkeep"), "web", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                answer = httpx.get(f"{base}/api/v1/openapi.json", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "castkeep web did not answer"
                time.sleep(0.5)
        assert answer.status_code == 200
        assert "/api/v1/requests/{request_id}" in answer.json()["paths"]
        headers = {"Authorization": f"Bearer {web_users['requester'].token}"}
        assert httpx.get(f"{base}/api/v1/session", headers=headers).json()["username"] == "requester"
        # A configured Prefect server without the deployment: the request is catalogued but not
        # started, and the answer says what to do.
        refused = httpx.post(f"{base}/api/v1/requests", json=request_doc(), headers=headers,
                             timeout=60)
        assert refused.status_code == 503, refused.text
        assert "prefect deploy" in refused.json()["detail"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
