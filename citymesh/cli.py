"""The `citymesh` command line: demo, server and gateway."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
from typer.core import TyperGroup

from citymesh.errors import CitymeshError

if TYPE_CHECKING:
    from rich.console import Console

    # typer 0.29 vendors click as typer._click, whose types TyperGroup uses.
    from typer._click import Command, Context

# A gateway runs on small boards, so `citymesh gateway` loads only the gateway
# package: the data-centre side (server settings, storage with numpy, the
# registry) and rich are imported inside the commands that use them.

logger = logging.getLogger(__name__)


def _admin_command() -> Command:
    from citymesh.admin_cli import admin_app

    # Built inside a holder so that it gets the root's plain help, as a group
    # added with add_typer would.
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    holder.add_typer(admin_app, name="admin")
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands["admin"]


def _enroll_command() -> Command:
    from citymesh.admin_cli import enroll

    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    holder.command("enroll")(enroll)
    return typer.main.get_command(holder)


class _LazyGroup(TyperGroup):
    """A command group whose `lazy_commands` are imported when first looked up."""

    lazy_commands: ClassVar[dict[str, Callable[[], Command]]] = {}

    def list_commands(self, ctx: Context) -> list[str]:
        """Return the eager commands, then the lazy ones not yet loaded."""
        loaded = super().list_commands(ctx)
        return [*loaded, *(name for name in self.lazy_commands if name not in loaded)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """Return a command, importing and adding a lazy one on first use."""
        command = super().get_command(ctx, cmd_name)
        load = self.lazy_commands.get(cmd_name)
        if command is None and load is not None:
            command = load()
            self.add_command(command, cmd_name)
        return command


class _RootGroup(_LazyGroup):
    lazy_commands: ClassVar[dict[str, Callable[[], Command]]] = {
        "admin": _admin_command
    }


class _GatewayGroup(_LazyGroup):
    lazy_commands: ClassVar[dict[str, Callable[[], Command]]] = {
        "enroll": _enroll_command
    }


app = typer.Typer(
    help="citymesh: sensor meshes, gateways, MQTT, a time-series store, dashboards.",
    no_args_is_help=True,
    add_completion=False,
    # Help texts name settings such as `[http] port`, which are not markup.
    rich_markup_mode=None,
    cls=_RootGroup,
)


@functools.cache
def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _print_error(message: str) -> None:
    """Print `message` as an error, with rich markup in it shown literally."""
    from rich.markup import escape

    _console().print(f"[red]error:[/red] {escape(message)}")


class Timestamps(StrEnum):
    """How replayed readings are stamped."""

    recorded = "recorded"
    now = "now"


class Scenario(StrEnum):
    """What the demo gateway reads."""

    replay = "replay"
    austin = "austin"
    city_block = "city_block"


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        force=True,
    )
    # amqtt and its state machine library log every client connection at INFO.
    quiet = max(logging.WARNING, logging.getLevelName(level))
    for name in ("amqtt", "transitions", "uvicorn.error"):
        logging.getLogger(name).setLevel(quiet)


def _run(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run `main(stop)`; Ctrl-C or SIGTERM sets `stop`, a second signal aborts."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def request_stop(signame: str) -> None:
            if stop.is_set():
                _console().print("[red]second signal: aborting[/red]")
                raise SystemExit(130)
            _console().print(
                f"[yellow]{signame}: stopping cleanly (again to abort)[/yellow]"
            )
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, request_stop, sig.name)
        await main(stop)

    try:
        asyncio.run(wrapper())
    except CitymeshError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None


@app.command()
def demo(
    data_dir: Annotated[
        Path, typer.Option(help="Directory for the store, registry and gateway state.")
    ] = Path("citymesh-demo"),
    http_host: Annotated[
        str, typer.Option(help="Interface of the HTTP API and dashboard.")
    ] = ("127.0.0.1"),
    http_port: Annotated[
        int,
        typer.Option(help="Port of the HTTP API and dashboard.", min=1, max=65535),
    ] = 8080,
    broker_port: Annotated[
        int,
        typer.Option(
            help="Port of the embedded MQTT broker; 0 picks a free one.",
            min=0,
            max=65535,
        ),
    ] = 0,
    speed: Annotated[
        float,
        typer.Option(
            help="Recorded seconds replayed per second; 600 is one recorded minute "
            "per 100 ms, 0 is as fast as possible (needs --timestamps recorded).",
            min=0,
        ),
    ] = 600.0,
    timestamps: Annotated[
        Timestamps,
        typer.Option(
            help="Stamp readings with the recorded time, or shift them to now."
        ),
    ] = Timestamps.now,
    loop: Annotated[
        bool,
        typer.Option(
            help="Start the recordings over when they end (with --timestamps now)."
        ),
    ] = True,
    log_level: Annotated[
        str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
    scenario: Annotated[
        Scenario,
        typer.Option(
            help="replay: recorded data sets; austin (40 nodes) or city_block "
            "(196 nodes): a simulated IQRF mesh whose sensors replay recordings."
        ),
    ] = Scenario.replay,
    floor_plan_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the Intel Berkeley lab's mote_locs.txt and "
            "connectivity.txt for austin's floor plan; without it austin uses a "
            "generated office of 20 rooms."
        ),
    ] = None,
) -> None:
    """Run the whole platform on this machine, replaying real recorded sensor data."""
    from citymesh.demo import demo_iqrf_settings, demo_settings, run_demo
    from citymesh.gateway.settings import ReplaySettings
    from citymesh.server.runner import DataCentre

    _setup_logging(log_level.upper())
    try:
        settings = demo_settings(data_dir, http_host, http_port, broker_port)
        replay = ReplaySettings(
            speed=speed,
            timestamps=timestamps.value,
            loop=loop and timestamps == Timestamps.now,
        )
    except ValueError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None

    def ready(centre: DataCentre, admin_key: str) -> None:
        _console().print(
            f"\n[bold green]citymesh demo running[/bold green]\n"
            f"  dashboard:  {centre.http_url}/\n"
            f"  API docs:   {centre.http_url}/docs\n"
            f"  MQTT:       {centre.broker_address}\n"
            f"  data:       {data_dir.resolve()}\n"
            f"  admin key:  {admin_key}\n"
            f"The demo tenant's sensor data is public; other endpoints need the\n"
            f"admin key as 'Authorization: Bearer <key>'. It is shown only now.\n"
            f"Press Ctrl-C to stop.\n",
            soft_wrap=True,
        )

    iqrf = None
    if scenario is not Scenario.replay:
        try:
            iqrf = demo_iqrf_settings(scenario.value, floor_plan_dir, speed)
        except CitymeshError as exc:
            _print_error(str(exc))
            raise typer.Exit(2) from None
    _run(lambda stop: run_demo(settings, replay, stop, on_ready=ready, iqrf=iqrf))


@app.command()
def server(
    config: Annotated[
        Path | None,
        typer.Option(help="TOML settings file; environment CITYMESH_* overrides it."),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the HTTP API (overrides [http] port).", min=1, max=65535
        ),
    ] = None,
) -> None:
    """Run the data-centre side: broker, collector, store and HTTP API."""
    from citymesh.config import load_settings
    from citymesh.gateway import settings as gateway_settings_module
    from citymesh.server import settings as server_settings_module
    from citymesh.server.runner import DataCentre
    from citymesh.server.settings import ServerSettings

    overrides: dict[str, Any] = {}
    if http_port is not None:
        overrides["http"] = {"port": http_port}
    try:
        settings = load_settings(
            ServerSettings,
            config,
            server_settings_module.ENV_PREFIX,
            overrides=overrides,
            env_exclude=(gateway_settings_module.ENV_PREFIX,),
        )
    except CitymeshError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None
    _setup_logging(settings.log_level)

    async def main(stop: asyncio.Event) -> None:
        option = "--http-port, [http] port or CITYMESH_HTTP__PORT"
        async with DataCentre(settings, http_option=option) as centre:
            _console().print(
                "[bold green]citymesh server running[/bold green]: "
                f"API {centre.http_url}/ "
                f"MQTT {centre.broker_address}"
            )
            await stop.wait()

    _run(main)


gateway_app = typer.Typer(
    help="Run a gateway agent, or enrol it with `citymesh gateway enroll`.",
    invoke_without_command=True,
    cls=_GatewayGroup,
)
app.add_typer(gateway_app, name="gateway")


@gateway_app.callback()
def gateway(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML settings file; environment CITYMESH_GATEWAY_* overrides it."
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            help="Exit after the recordings were replayed and delivered "
            "(source replay only)."
        ),
    ] = False,
) -> None:
    """Run a gateway agent that forwards recorded data or an IQRF network's readings."""
    if ctx.invoked_subcommand is not None:
        return
    from citymesh.config import load_settings
    from citymesh.gateway import settings as gateway_settings_module
    from citymesh.gateway.runner import run_gateway
    from citymesh.gateway.settings import GatewaySettings

    try:
        settings = load_settings(
            GatewaySettings, config, gateway_settings_module.ENV_PREFIX
        )
    except CitymeshError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None
    _setup_logging(settings.log_level)

    async def main(stop: asyncio.Event) -> None:
        await run_gateway(settings, stop, exit_when_done=once)

    _run(main)


if __name__ == "__main__":
    app()
