"""DPA frame helpers: hex notation, header fields and response codes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from iqrfpy.exceptions import (
    DpaResponsePacketLengthError,
    UnsupportedPeripheralCommandError,
    UnsupportedPeripheralError,
)
from iqrfpy.iresponse import IResponse
from iqrfpy.peripherals.generic.responses import GenericResponse
from iqrfpy.response_factory import ResponseFactory
from iqrfpy.utils.dpa import ResponseCodes

logger = logging.getLogger(__name__)

# Any HWPID: the node accepts the request whatever its hardware profile.
HWPID_ANY = 0xFFFF
# A response header is NADR(2) PNUM PCMD HWPID(2) ErrN DpaValue.
RESPONSE_HEADER_BYTES = 8
REQUEST_HEADER_BYTES = 6

# Response codes after which sending the same request again may succeed: the
# node was busy, or its answer got lost on the way. The other codes say the
# request itself is wrong for that node.
RETRYABLE_RCODES = frozenset({ResponseCodes.ERROR_FAIL})


@dataclass(frozen=True, slots=True)
class DpaHeader:
    """Header of a DPA request or response."""

    nadr: int
    pnum: int
    pcmd: int
    hwpid: int
    rcode: int | None = None
    dpa_value: int | None = None


def parse_hex(text: str) -> bytes:
    """Parse the IQRF daemon's dot-separated hex notation ("01.00.5e")."""
    if not text:
        return b""
    return bytes(int(part, 16) for part in text.split("."))


def to_hex(data: bytes) -> str:
    """Format bytes in the daemon's dot-separated hex notation."""
    return ".".join(f"{b:02x}" for b in data)


def parse_header(frame: bytes, response: bool) -> DpaHeader:
    """Read the header fields of a request or response frame."""
    size = RESPONSE_HEADER_BYTES if response else REQUEST_HEADER_BYTES
    if len(frame) < size:
        kind = "response" if response else "request"
        raise ValueError(f"DPA {kind} of {len(frame)} bytes is shorter than {size}")
    return DpaHeader(
        nadr=frame[0] | frame[1] << 8,
        pnum=frame[2],
        pcmd=frame[3],
        hwpid=frame[4] | frame[5] << 8,
        rcode=frame[6] if response else None,
        dpa_value=frame[7] if response else None,
    )


def parse_response(frame: bytes) -> IResponse:
    """Turn response bytes into iqrfpy's response object for that command.

    Commands iqrfpy has no class for, and frames of older DPA versions that its
    class rejects by length (OS Read before DPA 4, for example), become its
    GenericResponse, which keeps the header and the raw data.
    """
    try:
        return ResponseFactory.get_response_from_dpa(frame, allow_generic=True)
    except (
        DpaResponsePacketLengthError,
        UnsupportedPeripheralError,
        UnsupportedPeripheralCommandError,
    ):
        return GenericResponse.from_dpa(frame)


def rcode_name(rcode: int) -> str:
    """Return the DPA name of a response code, e.g. ERROR_PNUM."""
    # Bit 7 flags an asynchronous response and bit 6 is reserved.
    base = rcode & 0x3F
    if ResponseCodes.ERROR_USER_FROM <= base <= ResponseCodes.ERROR_USER_TO:
        return "ERROR_USER"
    try:
        return ResponseCodes(base).name
    except ValueError:
        return f"UNKNOWN_{rcode}"


def nodes_to_bitmap(nodes: list[int], size: int = 30) -> list[int]:
    """Encode node addresses as DPA's bitmap, bit n for address n."""
    bitmap = [0] * size
    for node in nodes:
        bitmap[node // 8] |= 1 << (node % 8)
    return bitmap


def bitmap_to_nodes(bitmap: bytes | list[int]) -> list[int]:
    """Decode DPA's node bitmap to the addresses whose bit is set."""
    return [
        index * 8 + bit
        for index, byte in enumerate(bitmap)
        for bit in range(8)
        if byte & (1 << bit)
    ]
