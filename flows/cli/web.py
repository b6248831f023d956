"""`castkeep web`: the web API (uvicorn). Binds to 127.0.0.1 by default; another interface needs
TLS settings (CASTKEEP_WEB__TLS_CERT and CASTKEEP_WEB__TLS_KEY) or --behind-proxy."""

from __future__ import annotations

import ipaddress

import typer

from castkeep.errors import ConfigurationError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, tls: bool, behind_proxy: bool) -> None:
    """Refuse to serve plain HTTP on a non-loopback interface unless a TLS proxy is in front."""
    if not is_loopback(host) and not tls and not behind_proxy:
        raise ConfigurationError(
            f"refusing to serve plain HTTP on {host}: set CASTKEEP_WEB__TLS_CERT and "
            "CASTKEEP_WEB__TLS_KEY, or pass --behind-proxy when a TLS proxy is in front "
            "(or bind --host 127.0.0.1)"
        )


def web(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8800, "--port", help="Port to bind."),
    behind_proxy: bool = typer.Option(
        False, "--behind-proxy",
        help="A TLS-terminating proxy is in front: allow a non-loopback --host, trust its "
        "X-Forwarded-* headers and mark session cookies Secure.",
    ),
) -> None:
    """Serve the web API (JSON under /api/v1) until interrupted. Each submitted request is a run
    of the fulfil-request deployment: executed by this server (in a subprocess per run) on the
    embedded default, by the workers of PREFECT_API_URL's server when that is set."""
    import uvicorn

    from castkeep.flows.prefect_server import configured_api_url, local_prefect
    from castkeep.flows.runtime import load_settings
    from castkeep.flows.web import create_app

    settings = load_settings()
    tls = bool(settings.web.tls_cert and settings.web.tls_key)
    if bool(settings.web.tls_cert) != bool(settings.web.tls_key):
        raise ConfigurationError("set both CASTKEEP_WEB__TLS_CERT and CASTKEEP_WEB__TLS_KEY")
    check_bind(host, tls=tls, behind_proxy=behind_proxy)
    own_server = not configured_api_url()
    with local_prefect(settings):
        app = create_app(settings, tls=tls or behind_proxy, dispatch="deployment",
                         serve_runs=own_server)
        options = {}
        if tls:
            options = {"ssl_certfile": str(settings.web.tls_cert),
                       "ssl_keyfile": str(settings.web.tls_key)}
        if behind_proxy:
            options.update(proxy_headers=True, forwarded_allow_ips="*")
        typer.echo(f"castkeep web on {'https' if tls else 'http'}://{host}:{port}/api/v1", err=True)
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=True, **options)
