"""Start and stop the data-centre side in one process, in dependency order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from contextlib import AsyncExitStack
from types import TracebackType

import uvicorn

from citymesh.api.app import ApiContext, create_app
from citymesh.carbon.listener import CarbonListener
from citymesh.carbon.sink import CarbonSink
from citymesh.collector.events import EventHub
from citymesh.collector.service import Collector
from citymesh.errors import ConfigError
from citymesh.registry.broker_authority import RegistryBrokerAuthority
from citymesh.registry.mosquitto import MosquittoSync
from citymesh.registry.pki import CertificateAuthority
from citymesh.registry.store import Registry
from citymesh.server.settings import ServerSettings
from citymesh.storage.background import StoreMaintenance
from citymesh.storage.duckdb_store import DuckDBStore
from citymesh.transport.address import BrokerAddress
from citymesh.transport.broker import BrokerTls, EmbeddedBroker
from citymesh.transport.ports import port_in_use
from citymesh.transport.tls import client_context

logger = logging.getLogger(__name__)

# How long the collector may take to subscribe before start-up fails.
SUBSCRIBE_TIMEOUT_S = 15.0
# On stop, the collector keeps receiving until no message came for this long,
# so batches already delivered by the broker are handled before it leaves.
QUIET_PERIOD_S = 0.3
QUIET_MAX_WAIT_S = 5.0


class _EmbeddedUvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host program."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DataCentre:
    """Broker, store, registry, collector and HTTP API, as one async context manager."""

    def __init__(
        self, settings: ServerSettings, http_option: str = "http.port"
    ) -> None:
        self.settings = settings
        self._http_option = http_option
        self._stack = AsyncExitStack()
        self.broker_address: BrokerAddress | None = None
        self.broker_tls_address: BrokerAddress | None = None
        self.ca: CertificateAuthority | None = None
        self.store: DuckDBStore | None = None
        self.registry: Registry | None = None
        self.broker_authority: RegistryBrokerAuthority | None = None
        self.collector: Collector | None = None
        self.carbon: CarbonListener | None = None
        self.maintenance: StoreMaintenance | None = None
        self.hub = EventHub()
        self._http: _EmbeddedUvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None

    @property
    def http_url(self) -> str:
        """Return the base URL of the HTTP API and dashboard."""
        http = self.settings.http
        scheme = "https" if http.tls_certfile is not None else "http"
        return f"{scheme}://{http.host}:{http.port}"

    async def __aenter__(self) -> DataCentre:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        settings = self.settings
        http = settings.http
        if http.port and port_in_use(http.host, http.port):
            raise ConfigError(
                f"cannot serve HTTP on {http.host}:{http.port}: the port is in use. "
                f"Choose another with {self._http_option}"
            )
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot use data_dir {settings.data_dir}: {exc.strerror}; choose a "
                "writable directory"
            ) from None
        rules = settings.retention.to_rules()
        store = DuckDBStore(settings.store_path, rules)
        self.store = store
        self._stack.callback(store.close)
        self.maintenance = await self._stack.enter_async_context(
            StoreMaintenance(store, settings.retention.maintenance_interval_s)
        )
        registry = Registry(settings.resolved_registry_url())
        self.registry = registry
        self._stack.callback(registry.close)

        broker = settings.broker
        login = (broker.username, broker.password)
        ca = await asyncio.to_thread(
            CertificateAuthority.load_or_create, settings.data_dir
        )
        self.ca = ca
        tls_context = None
        if broker.mode == "embedded":
            authority = None
            if settings.security.broker_auth:
                authority, login = RegistryBrokerAuthority.with_service(
                    registry.identities
                )
            self.broker_authority = authority
            embedded = EmbeddedBroker(
                broker.host,
                broker.port,
                authority=authority,
                tls=await asyncio.to_thread(self._broker_tls, ca),
            )
            await self._stack.enter_async_context(embedded)
            self.broker_address = embedded.address
            self.broker_tls_address = embedded.tls_address
        else:
            self.broker_address = broker.external_address()
            if self.broker_address.tls:
                tls_context = client_context(broker.ca_file)

        collector = Collector(
            self.broker_address,
            store,
            registry,
            self.hub,
            settings.collector,
            username=login[0],
            password=login[1],
            tls_context=tls_context,
        )
        self.collector = collector
        await self._stack.enter_async_context(collector)
        self._stack.push_async_callback(self._wait_quiet)
        try:
            await asyncio.wait_for(collector.subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            raise ConfigError(
                f"the collector could not subscribe at {self.broker_address} within "
                f"{SUBSCRIBE_TIMEOUT_S:.0f} s; check broker.url and that the broker "
                "runs"
            ) from None

        security = settings.security
        if security.mosquitto_dir is not None and broker.username and broker.password:
            await self._stack.enter_async_context(
                MosquittoSync(
                    registry.identities,
                    security.mosquitto_dir,
                    {broker.username: broker.password},
                    security.mosquitto_pid_file,
                    ca=ca,
                )
            )

        carbon = settings.carbon
        if carbon.enabled:
            sink = CarbonSink(
                store,
                carbon.tenant,
                f"{carbon.tenant}." if carbon.prefix_tenant else "",
                carbon.queue_max_points,
                rules,
            )
            self.carbon = await self._stack.enter_async_context(
                CarbonListener(
                    sink, carbon.host, carbon.port, carbon.pickle_port, carbon.udp
                )
            )

        app = create_app(
            ApiContext(
                store=store,
                registry=registry,
                hub=self.hub,
                collector=collector,
                ca=ca,
            ),
            security=settings.security,
        )
        config = uvicorn.Config(
            app,
            host=http.host,
            port=http.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
            ssl_certfile=http.tls_certfile,
            ssl_keyfile=http.tls_keyfile,
        )
        server = _EmbeddedUvicorn(config)
        self._http = server
        self._http_task = asyncio.create_task(server.serve(), name="http-server")
        self._stack.push_async_callback(self._stop_http)
        while not server.started:
            if self._http_task.done():
                await self._http_task
                raise ConfigError(
                    f"HTTP server on {http.host}:{http.port} failed to start; "
                    f"choose another port with {self._http_option}"
                )
            await asyncio.sleep(0.02)
        if not http.port:
            sockets = server.servers[0].sockets
            port = sockets[0].getsockname()[1]
            self.settings = settings.model_copy(
                update={"http": http.model_copy(update={"port": port})}
            )
        logger.info("HTTP API and dashboard on %s", self.http_url)

    def _broker_tls(self, ca: CertificateAuthority) -> BrokerTls | None:
        """Return the embedded broker's TLS listener, issuing its certificate."""
        broker = self.settings.broker
        if not broker.tls:
            return None
        if broker.tls_certfile is not None and broker.tls_keyfile is not None:
            certfile, keyfile = broker.tls_certfile, broker.tls_keyfile
        else:
            hosts = [broker.host, "localhost", *broker.tls_hosts]
            issued = ca.issue_server(list(dict.fromkeys(hosts)))
            certfile, keyfile = issued.certfile, issued.keyfile
        return BrokerTls(broker.tls_port, certfile, keyfile, ca.cert_path)

    async def _wait_quiet(self) -> None:
        collector = self.collector
        if collector is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUIET_MAX_WAIT_S
        seen = -1
        while loop.time() < deadline and seen != collector.stats.messages_received:
            seen = collector.stats.messages_received
            await asyncio.sleep(QUIET_PERIOD_S)

    async def _stop_http(self) -> None:
        if self._http is not None and self._http_task is not None:
            self.hub.close()
            self._http.should_exit = True
            await self._http_task

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
        logger.info("data centre stopped")
