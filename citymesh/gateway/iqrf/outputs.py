"""Actuators: LEDR, LEDG, IO and Standard Binary Output commands to a node."""

from __future__ import annotations

import logging
from typing import Any

from iqrfpy.iresponse import IResponse
from iqrfpy.objects.binaryoutput_state import BinaryOutputState
from iqrfpy.objects.io_triplet import IoTriplet
from iqrfpy.peripherals.binaryoutput import requests as binary_output
from iqrfpy.peripherals.binaryoutput import responses as binary_output_responses
from iqrfpy.peripherals.io import requests as io
from iqrfpy.peripherals.io import responses as io_responses
from iqrfpy.peripherals.ledg import requests as ledg
from iqrfpy.peripherals.ledg import responses as ledg_responses
from iqrfpy.peripherals.ledr import requests as ledr
from iqrfpy.peripherals.ledr import responses as ledr_responses

from citymesh.gateway.iqrf.addresses import MAX_NODE_ADDRESS
from citymesh.gateway.iqrf.connector import IqrfConnector
from citymesh.gateway.iqrf.dpa import to_hex

logger = logging.getLogger(__name__)

OUTPUTS = ("ledr", "ledg", "io", "binary_output")
LED_ACTIONS = ("on", "off", "pulse", "flashing")

_LEDR = {
    "on": (ledr.SetOnRequest, ledr_responses.SetOnResponse),
    "off": (ledr.SetOffRequest, ledr_responses.SetOffResponse),
    "pulse": (ledr.PulseRequest, ledr_responses.PulseResponse),
    "flashing": (ledr.FlashingRequest, ledr_responses.FlashingResponse),
}
_LEDG = {
    "on": (ledg.SetOnRequest, ledg_responses.SetOnResponse),
    "off": (ledg.SetOffRequest, ledg_responses.SetOffResponse),
    "pulse": (ledg.PulseRequest, ledg_responses.PulseResponse),
    "flashing": (ledg.FlashingRequest, ledg_responses.FlashingResponse),
}


class OutputArgumentError(ValueError):
    """An output command's arguments are invalid; the message says which."""


def response_frame(response: IResponse) -> str:
    """Rebuild the response frame from its fields, in the daemon's hex notation."""
    header = bytes(
        [
            response.nadr & 0xFF,
            response.nadr >> 8,
            int(response.pnum),
            int(response.pcmd),
            response.hwpid & 0xFF,
            response.hwpid >> 8,
            response.rcode,
            response.dpa_value,
        ]
    )
    return to_hex(header + bytes(response.pdata or []))


async def set_output(connector: IqrfConnector, args: dict[str, Any]) -> dict[str, Any]:
    """Switch an output of a node and return the node's answer.

    Args (in `args`): address (1-239), output (ledr, ledg, io, binary_output);
    for LEDs `action` (on, off, pulse, flashing); for io `port`, `mask` and
    `value`; for binary_output `index` and `on` (true or false).
    """
    address = args.get("address")
    if not isinstance(address, int) or not 1 <= address <= MAX_NODE_ADDRESS:
        raise OutputArgumentError(f"invalid address {address!r}: use 1 to 239")
    output = args.get("output")
    answer: dict[str, Any] = {"address": address, "output": output}
    if output in ("ledr", "ledg"):
        action = args.get("action", "on")
        table = _LEDR if output == "ledr" else _LEDG
        if action not in table:
            raise OutputArgumentError(
                f"invalid action {action!r} for {output}: use {', '.join(LED_ACTIONS)}"
            )
        request_type, response_type = table[action]
        response: IResponse = await connector.request(
            request_type(nadr=address), response_type
        )
        answer["action"] = action
    elif output == "io":
        port, mask, value = (args.get(k) for k in ("port", "mask", "value"))
        if not all(isinstance(v, int) and 0 <= v <= 0xFF for v in (port, mask, value)):
            raise OutputArgumentError("io needs integer port, mask and value, 0 to 255")
        assert (
            isinstance(port, int) and isinstance(mask, int) and isinstance(value, int)
        )
        response = await connector.request(
            io.SetRequest(nadr=address, triplets=[IoTriplet(port, mask, value)]),
            io_responses.SetResponse,
        )
    elif output == "binary_output":
        index, on = args.get("index", 0), args.get("on")
        if not isinstance(index, int) or not 0 <= index <= 31:
            raise OutputArgumentError(f"invalid index {index!r}: use 0 to 31")
        if not isinstance(on, bool):
            raise OutputArgumentError("binary_output needs on: true or false")
        set_response = await connector.request(
            binary_output.SetOutputRequest(
                nadr=address, binouts=[BinaryOutputState(index, int(on))]
            ),
            binary_output_responses.SetOutputResponse,
        )
        previous = set_response.states or []
        answer["index"] = index
        answer["on"] = on
        answer["previous"] = bool(previous[index]) if index < len(previous) else None
        response = set_response
    else:
        raise OutputArgumentError(
            f"invalid output {output!r}: use {', '.join(OUTPUTS)}"
        )
    logger.info("node %d: output %s set (%s)", address, output, args)
    answer["rcode"] = response.rcode
    answer["dpa_value"] = response.dpa_value
    answer["response"] = response_frame(response)
    return answer
