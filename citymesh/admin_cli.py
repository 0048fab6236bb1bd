"""`citymesh admin ...` and `citymesh gateway enroll`: tenants, gateways and keys.

Admin commands open the registry named by the server's settings directly, so
they work before the server first starts (to issue the first admin key) and
while it runs. A running server applies their changes within a few seconds.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from citymesh.config import load_settings
from citymesh.errors import CitymeshError
from citymesh.gateway import settings as gateway_settings_module
from citymesh.gateway.settings import (
    CA_CERT_FILE,
    CLIENT_CERT_FILE,
    CLIENT_KEY_FILE,
    CREDENTIALS_FILE,
    GatewaySettings,
)
from citymesh.server import settings as server_settings_module
from citymesh.server.settings import ServerSettings
from citymesh.transport.tls import make_client_key

if TYPE_CHECKING:
    from citymesh.registry.store import Registry

logger = logging.getLogger(__name__)

console = Console(stderr=True)
admin_app = typer.Typer(
    help="Administer tenants, gateways, API keys and public data.",
    no_args_is_help=True,
)
tenant_app = typer.Typer(
    help="Create tenants and open their data.", no_args_is_help=True
)
gateway_app = typer.Typer(help="Enrol and revoke gateways.", no_args_is_help=True)
key_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)
sensor_app = typer.Typer(help="Open single sensors to everyone.", no_args_is_help=True)
admin_app.add_typer(tenant_app, name="tenant")
admin_app.add_typer(gateway_app, name="gateway")
admin_app.add_typer(key_app, name="key")
admin_app.add_typer(sensor_app, name="sensor")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Server TOML settings naming the registry (registry_url)."
    ),
]


def _registry(config: Path | None) -> Registry:
    from citymesh.registry.store import Registry

    try:
        settings = load_settings(
            ServerSettings,
            config,
            server_settings_module.ENV_PREFIX,
            env_exclude=(gateway_settings_module.ENV_PREFIX,),
        )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_registry_url()
        if config is None:
            # Without a settings file it is easy to write to a registry that
            # no running server reads, so print which one this is.
            from sqlalchemy.engine import make_url

            shown = make_url(url).render_as_string(hide_password=True)
            Console(stderr=True).print(
                f"no --config given: using the registry {shown} (defaults and "
                "CITYMESH_* environment); pass the server's --config to use its"
            )
        return Registry(url)
    except CitymeshError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


@tenant_app.command("create")
def tenant_create(
    tenant: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    public: Annotated[
        bool, typer.Option(help="Let anyone read the tenant's sensor data.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a tenant (or update its name and public flag)."""
    registry = _registry(config)
    try:
        registry.identities.create_tenant(tenant, name, public)
    except (CitymeshError, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"tenant {tenant} saved (public: {public})")


@tenant_app.command("public")
def tenant_public(
    tenant: str,
    public: Annotated[bool, typer.Option("--on/--off", help="Open or close.")] = True,
    config: ConfigOption = None,
) -> None:
    """Open a tenant's sensor data to everyone, or close it."""
    registry = _registry(config)
    try:
        registry.identities.set_tenant_public(tenant, public)
    except CitymeshError as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"tenant {tenant} public: {public}")


@tenant_app.command("mtls")
def tenant_mtls(
    tenant: str,
    required: Annotated[
        bool, typer.Option("--on/--off", help="Require client certificates or not.")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Make a tenant's gateways log in to the broker with client certificates."""
    registry = _registry(config)
    try:
        registry.identities.certificates.set_require_mtls(tenant, required)
    except CitymeshError as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"tenant {tenant} requires mutual TLS: {required}")


@sensor_app.command("public")
def sensor_public(
    series: str,
    public: Annotated[bool, typer.Option("--on/--off", help="Open or close.")] = True,
    config: ConfigOption = None,
) -> None:
    """Open one sensor's series (e.g. acme.hq.gw-1.room-1.co2) to everyone."""
    registry = _registry(config)
    try:
        registry.identities.set_sensor_public(series, public)
    except CitymeshError as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"sensor {series} public: {public}")


@gateway_app.command("add")
def gateway_add(
    tenant: str,
    gateway: str,
    ttl_hours: Annotated[
        float, typer.Option(help="Hours until the enrolment token expires.")
    ] = 24.0,
    config: ConfigOption = None,
) -> None:
    """Allow a gateway to enrol and print its one-time enrolment token."""
    registry = _registry(config)
    try:
        token = registry.identities.add_gateway(tenant, gateway, ttl_hours * 3600)
    except (CitymeshError, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"enrolment token of {tenant}/{gateway} (shown once):")
    typer.echo(token)


@gateway_app.command("revoke")
def gateway_revoke(tenant: str, gateway: str, config: ConfigOption = None) -> None:
    """Revoke a gateway: its next login and its messages are rejected."""
    registry = _registry(config)
    try:
        registry.identities.revoke_gateway(tenant, gateway)
    except CitymeshError as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"gateway {tenant}/{gateway} revoked")


@key_app.command("issue")
def key_issue(
    scope: Annotated[
        list[str], typer.Option(help="read, write, command or admin; repeatable.")
    ],
    tenant: Annotated[
        str | None, typer.Option(help="The tenant the key acts for.")
    ] = None,
    platform: Annotated[
        bool, typer.Option(help="A platform operator's key, for every tenant.")
    ] = False,
    sensor: Annotated[
        list[str] | None,
        typer.Option(help="Glob of series the key may read; repeatable."),
    ] = None,
    actuator: Annotated[
        list[str] | None,
        typer.Option(help="Glob of <tenant>.<gateway>[.<actuator>] to command."),
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    user: Annotated[str | None, typer.Option(help="The user holding it.")] = None,
    config: ConfigOption = None,
) -> None:
    """Issue an API key and print it; it is shown only this once."""
    if platform == (tenant is not None):
        raise _fail(ValueError("pass exactly one of --tenant TENANT or --platform"))
    registry = _registry(config)
    try:
        issued = registry.identities.api_keys.issue_key(
            tenant, scope, name, user, sensor or (), actuator or ()
        )
    except (CitymeshError, ValueError) as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"API key {issued.key_id} (shown once):")
    typer.echo(issued.token)


@key_app.command("list")
def key_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's.")] = None,
    config: ConfigOption = None,
) -> None:
    """List API keys with scopes and grants (never their secrets)."""
    registry = _registry(config)
    try:
        keys = registry.identities.api_keys.list_keys(tenant)
    finally:
        registry.close()
    for key in keys:
        state = "revoked" if key.revoked_ms is not None else "active"
        typer.echo(
            f"{key.key_id}  {key.tenant or '(platform)'}  {','.join(key.scopes)}  "
            f"{state}  {key.name}"
        )


@key_app.command("revoke")
def key_revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke an API key; it stops working with the next request."""
    registry = _registry(config)
    try:
        registry.identities.api_keys.revoke_key(key_id)
    except CitymeshError as exc:
        raise _fail(exc) from None
    finally:
        registry.close()
    console.print(f"API key {key_id} revoked")


@admin_app.command("mosquitto")
def mosquitto_files(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")],
    service_user: Annotated[
        str, typer.Option(help="Username of the collector.")
    ] = "citymesh-collector",
    config: ConfigOption = None,
) -> None:
    """Write Mosquitto password and ACL files for every enrolled gateway.

    The collector's password is read from CITYMESH_BROKER__PASSWORD.
    """
    from citymesh.registry.mosquitto import write_mosquitto_files

    password = os.environ.get("CITYMESH_BROKER__PASSWORD")
    if not password:
        raise _fail(ValueError("set CITYMESH_BROKER__PASSWORD to the collector's"))
    registry = _registry(config)
    try:
        paths = write_mosquitto_files(
            registry.identities, directory, {service_user: password}
        )
    finally:
        registry.close()
    console.print(f"wrote {paths.password_file} and {paths.acl_file}")


def enroll(
    token: Annotated[str, typer.Option(help="The one-time enrolment token.")],
    api: Annotated[
        str, typer.Option(help="Base URL of the data centre's HTTP API.")
    ] = "http://127.0.0.1:8080",
    config: Annotated[
        Path | None,
        typer.Option(help="Gateway TOML settings; the login goes to its data_dir."),
    ] = None,
) -> None:
    """Exchange a one-time token for this gateway's MQTT login and store it.

    The gateway also sends a signing request for a key it makes here. If its
    tenant requires mutual TLS, the client certificate, that key and the
    platform CA certificate are stored next to the login.
    """
    try:
        settings = load_settings(
            GatewaySettings, config, gateway_settings_module.ENV_PREFIX
        )
    except CitymeshError as exc:
        raise _fail(exc) from None
    parsed = urllib.parse.urlsplit(api)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _fail(
            ValueError(
                f"--api {api!r} is not an HTTP URL; give the data centre's API "
                "base URL, e.g. http://127.0.0.1:8080 or https://dc.example.org"
            )
        )
    key_pem, csr_pem = make_client_key(settings.tenant, settings.gateway)
    request = urllib.request.Request(
        f"{api.rstrip('/')}/api/v1/enrol",
        data=json.dumps({"token": token, "csr": csr_pem.decode()}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise _fail(
            ValueError(
                f"enrolment at {api} failed with HTTP {exc.code}: "
                f"{_error_detail(exc.read())}"
            )
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _fail(ValueError(f"cannot reach {api}: {exc}")) from None
    login = _login_of(body)
    if login is None:
        raise _fail(
            ValueError(
                f"{api} returned a response to the enrolment that is not a citymesh "
                "login; check that --api is the data centre's HTTP API"
            )
        )
    if (login["tenant"], login["gateway"]) != (settings.tenant, settings.gateway):
        raise _fail(
            ValueError(
                f"the token is for {login['tenant']}/{login['gateway']}, but the "
                f"settings name {settings.tenant}/{settings.gateway}"
            )
        )
    path = settings.data_dir / CREDENTIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(
        path,
        f"username = {json.dumps(login['username'])}\n"
        f"password = {json.dumps(login['password'])}\n",
    )
    console.print(
        f"gateway {login['tenant']}/{login['gateway']} enrolled; MQTT login "
        f"stored in {path}"
    )
    certificate = login.get("certificate")
    if certificate:
        directory = settings.data_dir
        _write_private(directory / CLIENT_KEY_FILE, key_pem.decode())
        (directory / CLIENT_CERT_FILE).write_text(certificate)
        (directory / CA_CERT_FILE).write_text(login.get("ca_certificate") or "")
        console.print(
            f"tenant {login['tenant']} requires mutual TLS: client certificate "
            f"stored in {directory / CLIENT_CERT_FILE}; connect to the broker's "
            "mqtts:// address"
        )


def _error_detail(body: bytes) -> str:
    """Return the `detail` text of an API error body, or the body itself."""
    text = body.decode(errors="replace")
    try:
        detail = json.loads(text).get("detail")
    except (ValueError, AttributeError):
        return text[:200]
    return detail if isinstance(detail, str) else text[:200]


def _login_of(body: bytes) -> dict[str, Any] | None:
    """Return the enrolment response if it has the fields of a login, else None."""
    try:
        login = json.loads(body)
    except ValueError:
        return None
    fields = ("tenant", "gateway", "username", "password")
    if not isinstance(login, dict) or not all(
        isinstance(login.get(f), str) for f in fields
    ):
        return None
    return login


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
