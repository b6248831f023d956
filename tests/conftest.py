"""Shared pytest set-up: the fixture plugins, listed explicitly (one module per area under
tests/plugins/). Two lanes: tests/unit (no servers, no Prefect: seconds) and tests/integration
(the bundled PostgreSQL, an S3 server, Prefect, subprocesses of the real command)."""

from __future__ import annotations

import os

# Flow commands a test runs in a child process run there, not on a command server that would
# outlive the test (flows/command_server.py); tests/integration/test_command_server.py turns
# it on for its own commands and stops what it starts.
os.environ.setdefault("CASTKEEP_COMMAND_SERVER", "off")

pytest_plugins = [
    "tests.plugins.browser",
    "tests.plugins.compliance",
    "tests.plugins.db",
    "tests.plugins.faces",
    "tests.plugins.ingest",
    "tests.plugins.insightface_packs",
    "tests.plugins.oidc",
    "tests.plugins.paths",
    "tests.plugins.prefect_harness",
    "tests.plugins.provenance",
    "tests.plugins.request",
    "tests.plugins.tiny_qwen",
    "tests.plugins.web",
]
