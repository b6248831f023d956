"""Shared pytest set-up: the fixture plugins, listed explicitly (one module per area under
tests/plugins/). Two lanes: tests/unit (no servers, no Prefect: seconds) and tests/integration
(the bundled PostgreSQL, an S3 server, Prefect, subprocesses of the real command)."""

from __future__ import annotations

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
