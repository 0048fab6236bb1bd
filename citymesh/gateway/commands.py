"""Commands from the data centre, dispatched by name; responses matched by id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from citymesh.errors import MessageRejected
from citymesh.protocol.messages import (
    PROTOCOL_VERSION,
    Command,
    CommandResponse,
    decode,
)

logger = logging.getLogger(__name__)

CommandHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# Commands larger than this are rejected unread; none of ours needs more.
MAX_COMMAND_BYTES = 64 * 1024
# A handler that takes longer is cancelled and its caller gets an error
# response at once instead of waiting for its own timeout.
HANDLER_TIMEOUT_S = 60.0


class CommandError(Exception):
    """A handler's failure, sent back to the caller as the response's error."""


class CommandDispatcher:
    """Maps command names to async handlers and turns their outcome into responses."""

    def __init__(self, gateway: str) -> None:
        self._gateway = gateway
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, name: str, handler: CommandHandler) -> None:
        """Register `handler` for commands called `name`."""
        self._handlers[name] = handler

    @property
    def names(self) -> list[str]:
        """Return the registered command names, sorted."""
        return sorted(self._handlers)

    async def handle(self, payload: bytes) -> CommandResponse | None:
        """Run one command and return its response; None if the payload has no id."""
        try:
            command = decode(payload, Command, MAX_COMMAND_BYTES)
        except MessageRejected as exc:
            logger.warning(
                "gateway %s rejected a command (%s): %s",
                self._gateway,
                exc.reason,
                exc.detail,
            )
            return None
        handler = self._handlers.get(command.command)
        if handler is None:
            known = ", ".join(self.names)
            return _failure(
                command, f"unknown command {command.command!r}; known commands: {known}"
            )
        logger.info(
            "gateway %s runs command %s (id %s)",
            self._gateway,
            command.command,
            command.id,
        )
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT_S):
                result = await handler(command.args)
        except CommandError as exc:
            return _failure(command, str(exc))
        except TimeoutError:
            return _failure(
                command, f"command timed out after {HANDLER_TIMEOUT_S:.0f} s"
            )
        except Exception as exc:  # a handler bug must not kill the gateway
            logger.exception(
                "gateway %s: command %s (id %s) failed",
                self._gateway,
                command.command,
                command.id,
            )
            return _failure(command, f"internal error: {type(exc).__name__}: {exc}")
        return CommandResponse(
            v=PROTOCOL_VERSION, id=command.id, ok=True, result=result
        )


def _failure(command: Command, error: str) -> CommandResponse:
    return CommandResponse(v=PROTOCOL_VERSION, id=command.id, ok=False, error=error)
