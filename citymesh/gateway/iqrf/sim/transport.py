"""iqrfpy's transport interface over the simulated mesh, byte for byte."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from iqrfpy.confirmation import Confirmation
from iqrfpy.exceptions import DpaRequestTimeoutError
from iqrfpy.irequest import IRequest
from iqrfpy.iresponse import IResponse
from iqrfpy.itransport import ITransport
from iqrfpy.response_factory import ResponseFactory

from citymesh.gateway.iqrf.sim.mesh import SimulatedMesh
from citymesh.gateway.iqrf.sim.responder import DpaResponder

logger = logging.getLogger(__name__)


class SimulatedTransport(ITransport):
    """Sends each request's DPA bytes to the simulated coordinator.

    Responses are parsed from bytes with iqrfpy's response factory, exactly as
    frames from a real coordinator would be. A lost request waits out its
    timeout and raises iqrfpy's DpaRequestTimeoutError. Requests are handled
    one at a time, as an IQRF coordinator does.
    """

    def __init__(
        self, mesh: SimulatedMesh, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.mesh = mesh
        self.responder = DpaResponder(mesh)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._pending: IResponse | None = None
        self._callback: Callable[[IResponse], None] | None = None
        self.frames: list[tuple[bytes, bytes | None]] = []
        """Request and response bytes of recent requests, for inspection."""
        self.max_frames = 1000

    def initialize(self) -> None:
        """Nothing to connect: the mesh lives in this process."""

    def terminate(self, force: bool = False) -> None:
        """Nothing to close."""

    def send(self, request: IRequest) -> None:
        """Send a request and keep its response for receive()."""
        self._pending = self._exchange(request, None)

    def receive(self, timeout: float | None = None) -> IResponse:
        """Return the response to the last request sent."""
        if self._pending is None:
            raise DpaRequestTimeoutError("no response is waiting")
        response, self._pending = self._pending, None
        return response

    def send_and_receive(
        self, request: IRequest, timeout: float | None = None
    ) -> IResponse:
        """Send a request and wait for its response or the timeout."""
        return self._exchange(request, timeout)

    def confirmation(self) -> Confirmation:
        """Confirmations are not simulated; the response follows the request."""
        raise NotImplementedError("the simulated mesh sends no confirmations")

    def set_receive_callback(self, callback: Callable[[IResponse], None]) -> None:
        """Call `callback` with every response as well."""
        self._callback = callback

    def _exchange(self, request: IRequest, timeout: float | None) -> IResponse:
        frame = bytes(request.to_dpa())
        with self._lock:
            reply = self.responder.handle(frame)
            self.frames.append((frame, reply.frame))
            del self.frames[: -self.max_frames]
        if reply.frame is None:
            wait = timeout if timeout is not None else reply.delay_s
            self._sleep(wait)
            raise DpaRequestTimeoutError(
                f"no response from node {request.nadr} within {wait:g} s"
            )
        if timeout is not None and reply.delay_s > timeout:
            self._sleep(timeout)
            raise DpaRequestTimeoutError(
                f"no response from node {request.nadr} within {timeout:g} s"
            )
        self._sleep(reply.delay_s)
        response = ResponseFactory.get_response_from_dpa(reply.frame)
        if self._callback is not None:
            self._callback(response)
        return response
