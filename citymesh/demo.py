"""`citymesh demo`: the data centre and one replaying gateway in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from citymesh.errors import ConfigError
from citymesh.gateway.iqrf.runner import run_iqrf_gateway
from citymesh.gateway.iqrf.settings import IqrfSettings, SimulatorSettings
from citymesh.gateway.runner import run_gateway
from citymesh.gateway.settings import GatewaySettings, MqttSettings, ReplaySettings
from citymesh.registry.access import Scope
from citymesh.registry.identities import GatewayCredentials, Identities
from citymesh.server.runner import DataCentre
from citymesh.server.settings import BrokerSettings, HttpSettings, ServerSettings

logger = logging.getLogger(__name__)

# A collection round every 5 s keeps the live dashboard moving.
DEMO_COLLECT_INTERVAL_S = 5.0
DEMO_TENANT = "demo"
DEMO_GATEWAY = "gw-1"
# Name of the admin key each demo run issues (and the next run revokes).
DEMO_KEY_NAME = "demo-admin"


def demo_settings(
    data_dir: Path, http_host: str, http_port: int, broker_port: int
) -> ServerSettings:
    """Return server settings for the demo: embedded broker, store under data_dir."""
    return ServerSettings(
        data_dir=data_dir,
        broker=BrokerSettings(mode="embedded", host="127.0.0.1", port=broker_port),
        http=HttpSettings(host=http_host, port=http_port),
    )


def demo_iqrf_settings(
    scenario: str, floor_plan_dir: Path | None, speed: float
) -> IqrfSettings:
    """Return settings of a simulated IQRF mesh for the demo gateway.

    Raises:
        ConfigError: the floor-plan folder does not suit the scenario.
    """
    try:
        simulator = SimulatorSettings(
            scenario=scenario,  # type: ignore[arg-type]
            plan_dir=floor_plan_dir,
            speed=speed or 600.0,
            drop_probability=0.01,
            # A quarter of real radio timing keeps the start-up inventory short.
            time_scale=0.25,
        )
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ConfigError(f"invalid --floor-plan-dir: {reasons}") from None
    return IqrfSettings(
        transport="simulator",
        simulator=simulator,
        request_timeout_s=2.0,
        collect_interval_s=DEMO_COLLECT_INTERVAL_S,
        # Rediscover now and then so nodes that dropped out find their way back.
        rediscover_interval_s=120.0,
    )


def prepare_demo_identities(
    identities: Identities,
) -> tuple[str, GatewayCredentials]:
    """Open the demo tenant's data, enrol its gateway and issue a fresh admin key.

    Returns the admin key and the gateway's login. Admin keys of earlier demo
    runs are revoked, so only the key printed last works.
    """
    identities.create_tenant(DEMO_TENANT, "Demo city", public=True)
    for key in identities.api_keys.list_keys():
        if key.name == DEMO_KEY_NAME and key.revoked_ms is None:
            identities.api_keys.revoke_key(key.key_id)
    issued = identities.api_keys.issue_key(None, list(Scope), name=DEMO_KEY_NAME)
    return issued.token, identities.enrol(DEMO_TENANT, DEMO_GATEWAY)


async def run_demo(
    server_settings: ServerSettings,
    replay: ReplaySettings,
    stop: asyncio.Event,
    on_ready: Callable[[DataCentre, str], None] | None = None,
    iqrf: IqrfSettings | None = None,
) -> None:
    """Run the data centre and a replaying gateway until `stop` is set.

    With `iqrf`, the gateway reads a simulated IQRF mesh instead of replaying.

    The gateway stops first and delivers what it still holds; the data centre
    then writes every reading its collector accepted before it closes.
    """
    async with DataCentre(server_settings, http_option="--http-port") as centre:
        assert centre.broker_address is not None
        assert centre.registry is not None
        admin_key, login = await asyncio.to_thread(
            prepare_demo_identities, centre.registry.identities
        )
        gateway_settings = GatewaySettings(
            tenant="demo",
            site="city",
            gateway="gw-1",
            data_dir=server_settings.data_dir / "gateway",
            mqtt=MqttSettings(
                url=centre.broker_address.url,
                username=login.username,
                password=login.password,
            ),
            replay=replay,
        )
        if on_ready is not None:
            on_ready(centre, admin_key)
        if iqrf is None:
            await run_gateway(gateway_settings, stop)
        else:
            await run_iqrf_gateway(gateway_settings, iqrf, stop)
        logger.info("demo gateway stopped; finishing the data centre")
