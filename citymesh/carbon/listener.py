"""Carbon listeners: plaintext over TCP and UDP, pickle over TCP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from citymesh.carbon.parse import INVALID_LINE, ParsedPoints, parse_plaintext
from citymesh.carbon.pickle_format import HEADER, MAX_FRAME_BYTES, decode_frame
from citymesh.carbon.sink import CarbonSink
from citymesh.errors import ConfigError

logger = logging.getLogger(__name__)

# A plaintext line longer than this without a newline ends the connection,
# so one sender cannot make the buffer grow without bound.
MAX_LINE_BYTES = 64 * 1024
# Received bytes are parsed in buffers of about this size, because a
# larger buffer spreads numpy's fixed cost per call over more lines.
PARSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class CarbonPorts:
    """Where the listeners are bound; 0 for a listener that is off."""

    host: str
    plaintext: int
    pickle: int
    udp: int


class _StreamProtocol(asyncio.Protocol):
    """Shared connection handling: sender name, flow control by the sink."""

    def __init__(self, sink: CarbonSink, connections: set[asyncio.Transport]) -> None:
        self._sink = sink
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._sender = "?"
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connections.add(transport)
        peer = transport.get_extra_info("peername")
        self._sender = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._sink.stats.connections += 1
        logger.debug("carbon connection from %s", self._sender)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._connections.discard(self._transport)
        if exc is not None:
            logger.debug("carbon connection from %s lost: %s", self._sender, exc)

    def _after_submit(self) -> None:
        transport = self._transport
        if self._sink.full and transport is not None and not transport.is_closing():
            transport.pause_reading()
            self._sink.when_drained(self._resume)

    def _resume(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


class PlaintextProtocol(_StreamProtocol):
    """One TCP connection of newline-terminated plaintext lines."""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) < PARSE_BYTES and b"\n" not in data:
            if len(self._buffer) > MAX_LINE_BYTES:
                self._drop_long_line()
            return
        end = self._buffer.rfind(b"\n") + 1
        if end == 0:
            return
        if len(self._buffer) - end > MAX_LINE_BYTES:
            self._drop_long_line()
            return
        chunk = bytes(self._buffer[:end])
        del self._buffer[:end]
        self._submit(chunk)

    def _submit(self, chunk: bytes) -> None:
        parsed = parse_plaintext(chunk, time.time())
        self._sink.stats.lines_received += len(parsed.paths) + sum(
            parsed.rejected.values()
        )
        self._sink.submit(self._sender, parsed)
        self._after_submit()

    def _drop_long_line(self) -> None:
        parsed = ParsedPoints.empty()
        parsed.reject(INVALID_LINE, bytes(self._buffer[:200]))
        self._sink.note_rejections(self._sender, parsed)
        logger.warning(
            "closing carbon connection from %s: a line exceeds %d bytes",
            self._sender,
            MAX_LINE_BYTES,
        )
        self._buffer.clear()
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool | None:
        # A last line without a newline still counts, as carbon reads it.
        if self._buffer.strip():
            self._submit(bytes(self._buffer) + b"\n")
        self._buffer.clear()
        return None


class PickleProtocol(_StreamProtocol):
    """One TCP connection of length-prefixed pickle frames."""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME_BYTES:
                logger.warning(
                    "closing carbon pickle connection from %s: frame of %d bytes "
                    "exceeds %d",
                    self._sender,
                    length,
                    MAX_FRAME_BYTES,
                )
                self._buffer.clear()
                if self._transport is not None:
                    self._transport.close()
                return
            if len(self._buffer) < HEADER.size + length:
                return
            payload = bytes(self._buffer[HEADER.size : HEADER.size + length])
            del self._buffer[: HEADER.size + length]
            parsed = decode_frame(payload, time.time())
            self._sink.stats.lines_received += len(parsed.paths) + sum(
                parsed.rejected.values()
            )
            self._sink.submit(self._sender, parsed)
        self._after_submit()


class DatagramProtocol(asyncio.DatagramProtocol):
    """Plaintext lines over UDP; each datagram holds whole lines."""

    def __init__(self, sink: CarbonSink) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        sender = f"{addr[0]}:{addr[1]}"
        if not data.endswith(b"\n"):
            data += b"\n"
        parsed = parse_plaintext(data, time.time())
        self._sink.stats.lines_received += len(parsed.paths) + sum(
            parsed.rejected.values()
        )
        if self._sink.full:
            self._sink.stats.dropped += len(parsed.paths)
            parsed.paths = []
        self._sink.submit(sender, parsed)


class CarbonListener:
    """The carbon servers and their writer task, as an async context manager."""

    def __init__(
        self,
        sink: CarbonSink,
        host: str,
        plaintext_port: int | None,
        pickle_port: int | None,
        udp: bool,
        options: tuple[str, str] = ("carbon.port", "carbon.pickle_port"),
    ) -> None:
        self.sink = sink
        self._host = host
        self._plaintext_port = plaintext_port
        self._pickle_port = pickle_port
        self._udp = udp
        self._options = options
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Transport] = set()
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._writer: asyncio.Task[None] | None = None
        self.ports = CarbonPorts(host, 0, 0, 0)

    async def __aenter__(self) -> CarbonListener:
        loop = asyncio.get_running_loop()
        self._writer = asyncio.create_task(self.sink.run(), name="carbon-writer")
        try:
            plaintext = pickle = udp = 0
            if self._plaintext_port is not None:
                server = await self._serve(
                    lambda: PlaintextProtocol(self.sink, self._connections),
                    self._plaintext_port,
                    self._options[0],
                )
                plaintext = server.sockets[0].getsockname()[1]
                if self._udp:
                    udp = await self._serve_udp(loop, plaintext)
            if self._pickle_port is not None:
                server = await self._serve(
                    lambda: PickleProtocol(self.sink, self._connections),
                    self._pickle_port,
                    self._options[1],
                )
                pickle = server.sockets[0].getsockname()[1]
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.ports = CarbonPorts(self._host, plaintext, pickle, udp)
        logger.info(
            "carbon listening on %s: plaintext TCP %s, UDP %s, pickle TCP %s",
            self._host,
            plaintext or "off",
            udp or "off",
            pickle or "off",
        )
        return self

    async def _serve(
        self,
        factory: Callable[[], asyncio.Protocol],
        port: int,
        option: str,
    ) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                factory,
                self._host,
                port,
                reuse_address=True,
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for carbon on {self._host}:{port}: {exc.strerror}. "
                f"Choose another port with {option}"
            ) from exc
        self._servers.append(server)
        return server

    async def _serve_udp(self, loop: asyncio.AbstractEventLoop, port: int) -> int:
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: DatagramProtocol(self.sink), local_addr=(self._host, port)
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for carbon over UDP on {self._host}:{port}: "
                f"{exc.strerror}. Choose another port with {self._options[0]} or "
                "turn UDP off with carbon.udp = false"
            ) from exc
        self._udp_transport = transport
        return int(transport.get_extra_info("sockname")[1])

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self._servers:
            server.close()
        for transport in list(self._connections):
            transport.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._udp_transport is not None:
            self._udp_transport.close()
            self._udp_transport = None
        if self._writer is not None:
            await self.sink.close()
            await self._writer
            self._writer = None
        logger.info("carbon listener stopped")
