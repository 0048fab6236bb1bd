"""DPA request bytes in, DPA response bytes out, as a coordinator and its nodes.

Covers the peripherals the connector uses: Coordinator, OS, Exploration,
EEEPROM (the coordinator's discovery data), LEDR, LEDG, IO, FRC, Standard
Sensor and Standard Binary Output. Other peripherals get ERROR_PNUM and
other commands ERROR_PCMD, as in DPA.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from iqrfpy.utils.dpa import ResponseCodes

from citymesh.gateway.iqrf.addresses import BROADCAST, COORDINATOR
from citymesh.gateway.iqrf.dpa import HWPID_ANY, bitmap_to_nodes, nodes_to_bitmap
from citymesh.gateway.iqrf.sensors import FRC_DATA_BYTES, PNUM_SENSOR
from citymesh.gateway.iqrf.sim import encoding
from citymesh.gateway.iqrf.sim.mesh import SimNode, SimSensor, SimulatedMesh

logger = logging.getLogger(__name__)

PNUM_COORDINATOR = 0x00
PNUM_NODE = 0x01
PNUM_OS = 0x02
PNUM_EEEPROM = 0x04
PNUM_LEDR = 0x06
PNUM_LEDG = 0x07
PNUM_IO = 0x09
PNUM_FRC = 0x0D
PNUM_BINARY_OUTPUT = 0x4B
PNUM_EXPLORATION = 0xFF

# Addresses of the discovery results in the coordinator's external EEPROM,
# one byte per node: virtual routing number, zone (hops) and parent's VRN.
# The connector reads the same layout (see its NOTE there).
EEEPROM_VRN = 0x5000
EEEPROM_ZIN = 0x5200
EEEPROM_PARENT_VRN = 0x5300
EEEPROM_MAX_READ = 54

DPA_VERSION = 0x0417
OS_VERSION = 0x46
OS_BUILD = 0x08D8
TR_MCU_TYPE = 0x24
# Embedded peripherals 0-7 (coordinator .. LEDG), IO (9), thermometer (10),
# UART (12) and FRC (13), as a 4-byte bitmap.
EMBEDDED_PERIPHERALS = bytes([0xFF, 0x36, 0x00, 0x00])
HWPID_COORDINATOR = 0x0000


@dataclass
class Reply:
    """The response frame, or None when nothing comes back, and its delay."""

    frame: bytes | None
    delay_s: float


class DpaResponder:
    """Answers DPA requests on behalf of a simulated coordinator and nodes."""

    def __init__(self, mesh: SimulatedMesh) -> None:
        self.mesh = mesh
        self._frc_extra = bytes(9)
        self._frc_param = 0
        self._dpa_param = 0

    def handle(self, request: bytes) -> Reply:
        """Answer one request frame."""
        if len(request) < 6:
            raise ValueError(f"DPA request of {len(request)} bytes is too short")
        nadr = request[0] | request[1] << 8
        with self.mesh.lock:
            if nadr == COORDINATOR:
                return Reply(self._coordinator(request), 0.01 * self.mesh.time_scale)
            if nadr == BROADCAST:
                return Reply(None, 0.0)
            node = self.mesh.nodes.get(nadr)
            if node is None or not node.bonded:
                # The coordinator refuses to send to an address it has no bond for.
                return Reply(
                    _response(request, HWPID_COORDINATOR, ResponseCodes.ERROR_NADR),
                    0.01 * self.mesh.time_scale,
                )
            delay = self.mesh.latency_s(nadr)
            if not self.mesh.delivered(nadr):
                return Reply(None, delay)
            return Reply(self._node(node, request), delay)

    def _coordinator(self, request: bytes) -> bytes:
        pnum, pcmd, data = request[2], request[3], request[6:]
        mesh = self.mesh
        hwpid = HWPID_COORDINATOR
        if pnum == PNUM_COORDINATOR:
            return self._coordinator_command(request, pcmd, data)
        if pnum == PNUM_FRC:
            return self._frc(request, pcmd, data)
        if pnum == PNUM_EEEPROM and pcmd == 0x02:
            if len(data) != 3 or data[2] > EEEPROM_MAX_READ:
                return _response(request, hwpid, ResponseCodes.ERROR_DATA_LEN)
            address = data[0] | data[1] << 8
            return _response(request, hwpid, pdata=self._eeeprom(address, data[2]))
        if pnum == PNUM_OS and pcmd == 0x00:
            return _response(
                request, hwpid, pdata=_os_read(mesh.coordinator_mid, 63, hwpid)
            )
        if pnum == PNUM_EXPLORATION and pcmd == 0x3F:
            return _response(request, hwpid, pdata=_enumeration(hwpid))
        if pnum in (PNUM_LEDR, PNUM_LEDG) and pcmd in (0x00, 0x01, 0x03, 0x04):
            return _response(request, hwpid)
        return _unsupported(request, hwpid, pnum)

    def _coordinator_command(self, request: bytes, pcmd: int, data: bytes) -> bytes:
        mesh = self.mesh
        hwpid = HWPID_COORDINATOR
        bonded = mesh.bonded()
        if pcmd == 0x00:  # AddrInfo: number of bonded nodes and the DID
            return _response(request, hwpid, pdata=bytes([len(bonded), 0x2A]))
        if pcmd == 0x01:  # DiscoveredDevices
            return _response(
                request, hwpid, pdata=bytes(nodes_to_bitmap(list(mesh.routes), 32))
            )
        if pcmd == 0x02:  # BondedDevices
            return _response(request, hwpid, pdata=bytes(nodes_to_bitmap(bonded, 32)))
        if pcmd == 0x03:  # ClearAllBonds
            for each in mesh.nodes.values():
                each.bonded = False
            mesh.routes = {}
            return _response(request, hwpid)
        if pcmd == 0x04 and len(data) == 2:  # BondNode
            return self._bond(request, data[0], None)
        if pcmd == 0x05 and len(data) == 1:  # RemoveBond
            removed = mesh.nodes.get(data[0])
            if removed is not None:
                removed.bonded = False
                mesh.routes.pop(removed.address, None)
            return _response(request, hwpid, pdata=bytes([len(mesh.bonded())]))
        if pcmd == 0x07 and len(data) == 2:  # Discovery
            found = mesh.discover(data[0] & 0x07, data[1])
            return _response(request, hwpid, pdata=bytes([found]))
        if pcmd == 0x08 and len(data) == 1:  # SetDpaParams
            previous_param, self._dpa_param = self._dpa_param, data[0]
            return _response(request, hwpid, pdata=bytes([previous_param]))
        if pcmd == 0x09 and len(data) == 2:  # SetHops
            hops = bytes([mesh.request_hops, mesh.response_hops])
            mesh.request_hops, mesh.response_hops = data[0], data[1]
            return _response(request, hwpid, pdata=hops)
        if pcmd == 0x12 and len(data) >= 22:  # SmartConnect
            mid = int.from_bytes(data[18:22], "little")
            return self._bond(request, data[0], mid)
        if pcmd in (0x04, 0x05, 0x07, 0x08, 0x09, 0x12):
            return _response(request, hwpid, ResponseCodes.ERROR_DATA_LEN)
        return _response(request, hwpid, ResponseCodes.ERROR_PCMD)

    def _bond(self, request: bytes, wanted: int, mid: int | None) -> bytes:
        """Bond a node that waits for bonding in range of the coordinator."""
        mesh = self.mesh
        waiting = [
            n
            for n in mesh.nodes.values()
            if not n.bonded and n.online and (mid is None or n.mid == mid)
        ]
        if wanted and wanted in mesh.bonded():
            return _response(request, HWPID_COORDINATOR, ResponseCodes.ERROR_FAIL)
        if not waiting:
            return _response(request, HWPID_COORDINATOR, ResponseCodes.ERROR_FAIL)
        node = min(waiting, key=lambda n: n.address)
        if wanted and wanted != node.address:
            # The node takes the address the coordinator assigns.
            del mesh.nodes[node.address]
            node.address = wanted
            mesh.nodes[wanted] = node
        node.bonded = True
        logger.info("simulated node MID %08x bonded at %d", node.mid, node.address)
        pdata = bytes([node.address, len(mesh.bonded())])
        return _response(request, HWPID_COORDINATOR, pdata=pdata)

    def _eeeprom(self, address: int, length: int) -> bytes:
        table = bytearray(0x400)
        for node, route in self.mesh.routes.items():
            table[0x000 + node] = route.vrn
            table[0x200 + node] = route.hops
            parent = self.mesh.routes.get(route.parent)
            table[0x300 + node] = 0 if parent is None else parent.vrn
        offset = address - EEEPROM_VRN
        if offset >= 0 and offset + length <= len(table):
            return bytes(table[offset : offset + length])
        return bytes(length)

    def _frc(self, request: bytes, pcmd: int, data: bytes) -> bytes:
        hwpid = HWPID_COORDINATOR
        if pcmd == 0x01:  # ExtraResult
            return _response(request, hwpid, pdata=self._frc_extra)
        if pcmd == 0x03 and len(data) == 1:  # SetFrcParams
            previous, self._frc_param = self._frc_param, data[0]
            return _response(request, hwpid, pdata=bytes([previous]))
        if pcmd == 0x00 and len(data) >= 1:
            command, user_data = data[0], data[1:]
            slots = list(range(1, 240))
            targets = self.mesh.bonded()
        elif pcmd == 0x02 and len(data) >= 31:
            command, user_data = data[0], data[31:]
            slots = bitmap_to_nodes(data[1:31])
            targets = slots
        else:
            return _response(request, hwpid, ResponseCodes.ERROR_PCMD)
        self.mesh.churn()
        values = {
            address: self._frc_value(address, command, user_data) for address in targets
        }
        frame = _frc_frame(command, [values.get(a, 0) for a in slots])
        self._frc_extra = frame[FRC_DATA_BYTES:]
        status = min(len(targets), 0xEF)
        pdata = bytes([status]) + frame[:FRC_DATA_BYTES]
        return _response(request, hwpid, pdata=pdata)

    def _frc_value(self, address: int, command: int, user_data: bytes) -> int:
        node = self.mesh.nodes.get(address)
        if node is None or not self.mesh.delivered(address):
            return encoding.FRC_NO_RESPONSE
        if len(user_data) < 3 or user_data[0] != PNUM_SENSOR:
            return encoding.FRC_NOT_IMPLEMENTED
        sensor = _sensor_by_type(node, user_data[1], user_data[2] & 0x1F)
        if sensor is None or not encoding.supported(sensor.sensor_type):
            return encoding.FRC_NOT_IMPLEMENTED
        value = None if sensor.faulty else sensor.read(self.mesh.now_s())
        return encoding.encode_frc(sensor.sensor_type, command, value)

    def _node(self, node: SimNode, request: bytes) -> bytes:
        pnum, pcmd, data = request[2], request[3], request[6:]
        requested_hwpid = request[4] | request[5] << 8
        if requested_hwpid not in (HWPID_ANY, node.hwpid):
            return _response(request, node.hwpid, ResponseCodes.ERROR_HWPID)
        rssi = self.mesh.rssi(node.address)
        if pnum == PNUM_OS and pcmd == 0x00:
            pdata = _os_read(node.mid, rssi, node.hwpid, user_peripherals(node))
            return _response(request, node.hwpid, pdata=pdata, dpa_value=rssi)
        if pnum == PNUM_EXPLORATION and pcmd == 0x3F:
            pdata = _enumeration(node.hwpid, user_peripherals(node))
            return _response(request, node.hwpid, pdata=pdata, dpa_value=rssi)
        if pnum in (PNUM_LEDR, PNUM_LEDG) and pcmd in (0x00, 0x01, 0x03, 0x04):
            state = pcmd == 0x01
            if pnum == PNUM_LEDR:
                node.ledr = state
            else:
                node.ledg = state
            return _response(request, node.hwpid, dpa_value=rssi)
        if pnum == PNUM_IO:
            return self._io(node, request, pcmd, data, rssi)
        if pnum == PNUM_SENSOR and node.sensors:
            return self._sensor(node, request, pcmd, data, rssi)
        if pnum == PNUM_BINARY_OUTPUT and node.binary_outputs:
            return self._binary_output(node, request, pcmd, data, rssi)
        return _unsupported(request, node.hwpid, pnum)

    def _io(
        self, node: SimNode, request: bytes, pcmd: int, data: bytes, rssi: int
    ) -> bytes:
        if pcmd in (0x00, 0x01) and len(data) % 3 == 0:
            for i in range(0, len(data), 3):
                port, mask, value = data[i : i + 3]
                if pcmd == 0x01 and port < 0x80:
                    old = node.io_ports.get(port, 0)
                    node.io_ports[port] = (old & ~mask) | (value & mask)
            return _response(request, node.hwpid, dpa_value=rssi)
        if pcmd == 0x02:
            ports = bytes(node.io_ports.get(p, 0) for p in range(5))
            return _response(request, node.hwpid, pdata=ports, dpa_value=rssi)
        return _response(request, node.hwpid, ResponseCodes.ERROR_PCMD)

    def _sensor(
        self, node: SimNode, request: bytes, pcmd: int, data: bytes, rssi: int
    ) -> bytes:
        if pcmd == 0x3E:
            types = bytes(s.sensor_type for s in node.sensors)
            return _response(request, node.hwpid, pdata=types, dpa_value=rssi)
        if pcmd in (0x00, 0x01):
            # Without a bitmap the node reads its first sensor only.
            chosen = bitmap_to_nodes(data[:4]) if len(data) >= 4 else [0]
            pdata = bytearray()
            now = self.mesh.now_s()
            for index in chosen:
                if index >= len(node.sensors):
                    continue
                sensor = node.sensors[index]
                value = None if sensor.faulty else sensor.read(now)
                if pcmd == 0x01:
                    pdata.append(sensor.sensor_type)
                pdata += encoding.encode_raw(sensor.sensor_type, value)
            return _response(request, node.hwpid, pdata=bytes(pdata), dpa_value=rssi)
        return _response(request, node.hwpid, ResponseCodes.ERROR_PCMD)

    def _binary_output(
        self, node: SimNode, request: bytes, pcmd: int, data: bytes, rssi: int
    ) -> bytes:
        if pcmd == 0x3E:
            pdata = bytes([len(node.binary_outputs)])
            return _response(request, node.hwpid, pdata=pdata, dpa_value=rssi)
        if pcmd == 0x00 and len(data) >= 4:
            previous = [i for i, on in enumerate(node.binary_outputs) if on]
            chosen = bitmap_to_nodes(data[:4])
            for position, index in enumerate(chosen):
                if index < len(node.binary_outputs) and 4 + position < len(data):
                    # A state byte of 0 is off; 1 is on; 2 to 0xFF are timed on.
                    node.binary_outputs[index] = data[4 + position] != 0
            pdata = bytes(nodes_to_bitmap(previous, 4))
            return _response(request, node.hwpid, pdata=pdata, dpa_value=rssi)
        return _response(request, node.hwpid, ResponseCodes.ERROR_PCMD)


def user_peripherals(node: SimNode) -> list[int]:
    """Return the user (standard) peripherals a node implements."""
    found = []
    if node.binary_outputs:
        found.append(PNUM_BINARY_OUTPUT)
    if node.sensors:
        found.append(PNUM_SENSOR)
    return found


def _sensor_by_type(node: SimNode, sensor_type: int, index: int) -> SimSensor | None:
    same = [s for s in node.sensors if s.sensor_type == sensor_type]
    return same[index] if index < len(same) else None


def _frc_frame(command: int, values: list[int]) -> bytes:
    """Lay out node values in the 64 FRC bytes; values[k] goes to slot k + 1."""
    frame = bytearray(64)
    width = encoding.frc_width(command)
    for position, value in enumerate(values, start=1):
        if width == 0:
            if position >= 240:
                break
            byte, bit = divmod(position, 8)
            if value & 1:
                frame[byte] |= 1 << bit
            if value & 2:
                frame[byte + 32] |= 1 << bit
            continue
        start = position * width
        if start + width > len(frame):
            break
        frame[start : start + width] = value.to_bytes(width, "little")
    return bytes(frame)


def _user_bitmap(peripherals: list[int]) -> bytes:
    if not peripherals:
        return b""
    bitmap = bytearray(max(peripherals) // 8 - 3)
    for pnum in peripherals:
        offset = pnum - 0x20
        bitmap[offset // 8] |= 1 << (offset % 8)
    return bytes(bitmap)


def _enumeration(hwpid: int, peripherals: list[int] | None = None) -> bytes:
    user = _user_bitmap(peripherals or [])
    return (
        DPA_VERSION.to_bytes(2, "little")
        + bytes([len(peripherals or [])])
        + EMBEDDED_PERIPHERALS
        + hwpid.to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + bytes([0x01])
        + user
    )


def _os_read(
    mid: int, rssi: int, hwpid: int, peripherals: list[int] | None = None
) -> bytes:
    # MID, OS version and build, RSSI, supply voltage code (3.0 V), flags,
    # slot limits and a zero individual bonding key, then the enumeration.
    head = (
        mid.to_bytes(4, "little")
        + bytes([OS_VERSION, TR_MCU_TYPE])
        + OS_BUILD.to_bytes(2, "little")
        + bytes([rssi, 40, 0x01, 0x31])
        + bytes(16)
    )
    return head + _enumeration(hwpid, peripherals)


def _response(
    request: bytes,
    hwpid: int,
    rcode: int = ResponseCodes.OK,
    pdata: bytes = b"",
    dpa_value: int = 0,
) -> bytes:
    header = (
        request[0:2]
        + bytes([request[2], request[3] | 0x80])
        + hwpid.to_bytes(2, "little")
        + bytes([rcode, dpa_value & 0xFF])
    )
    return header + (pdata if rcode == ResponseCodes.OK else b"")


def _unsupported(request: bytes, hwpid: int, pnum: int) -> bytes:
    known = (PNUM_COORDINATOR, PNUM_NODE, PNUM_OS, PNUM_EEEPROM, PNUM_LEDR)
    rcode = ResponseCodes.ERROR_PCMD if pnum in known else ResponseCodes.ERROR_PNUM
    return _response(request, hwpid, rcode)
