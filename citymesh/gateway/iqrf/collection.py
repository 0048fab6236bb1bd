"""Periodic collection of every sensor by Sensor FRC, with per-node fallback.

Sensors are grouped by (type, index among that type). Each group is read with
one Sensor FRC in the widest form the quantity supports: FRC Send when every
node's slot fits in one response, otherwise SendSelective in batches of as
many nodes as one response carries. FRC Extra Result is read when the slots
run past the first response's 55 data bytes. Nodes whose FRC value says "no
FRC response" or "FRC not implemented" are then read one by one with
ReadSensorsWithTypes.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from iqrfpy.peripherals.frc import requests as frc
from iqrfpy.peripherals.frc import responses as frc_responses

from citymesh.gateway.iqrf.connector import IqrfConnector
from citymesh.gateway.iqrf.errors import DpaError, DpaTimeout
from citymesh.gateway.iqrf.sensors import (
    FALLBACK_REASONS,
    FRC_CAPACITY,
    FRC_DATA_BYTES,
    SensorSpec,
    SensorValue,
    decode_frc,
    frc_bytes_needed,
    frc_user_data,
)

logger = logging.getLogger(__name__)

# FRC status values from 0xF0 up report a failed FRC rather than a node count.
FRC_STATUS_ERROR_FROM = 0xF0


async def collect(connector: IqrfConnector) -> list[SensorValue]:
    """Read every known sensor of every node once; missing values carry a reason."""
    groups: dict[tuple[int, int], list[tuple[int, SensorSpec]]] = defaultdict(list)
    for address, node in sorted(connector.nodes.items()):
        for spec in node.sensors:
            groups[(spec.sensor_type, spec.type_index)].append((address, spec))
    values: dict[tuple[int, int], SensorValue] = {}
    for members in groups.values():
        for value in await _collect_group(connector, members):
            values[(value.address, value.spec.index)] = value

    retry = sorted(
        {
            a
            for (a, _), v in values.items()
            if v.missing and v.reason in FALLBACK_REASONS
        }
    )
    missed: list[int] = []
    answered: set[int] = {a for (a, _), v in values.items() if not v.missing}
    for address in retry:
        try:
            for value in await connector.read_node_sensors(address):
                values[(address, value.spec.index)] = value
            answered.add(address)
        except DpaTimeout:
            missed.append(address)
            _mark(values, address, "timeout")
        except DpaError as exc:
            _mark(values, address, f"dpa_error_{exc.rcode}")
    now_ms = connector.clock_ms()
    for address in answered:
        connector.nodes[address].seen(now_ms)
    connector.mark_missed([a for a in missed if a not in answered])
    result = list(values.values())
    for value in result:
        if value.missing:
            connector.missing[value.reason] += 1
    return result


def _mark(
    values: dict[tuple[int, int], SensorValue], address: int, reason: str
) -> None:
    for key, value in values.items():
        if key[0] == address and value.missing:
            values[key] = SensorValue(address, value.spec, None, reason)


async def _collect_group(
    connector: IqrfConnector, members: list[tuple[int, SensorSpec]]
) -> list[SensorValue]:
    spec = members[0][1]
    commands = [s.frc_command for _, s in members]
    if any(c is None for c in commands):
        # Without FRC support the fallback reads these nodes directly.
        return [SensorValue(a, s, None, "frc_not_implemented") for a, s in members]
    # Members share one sensor type, so they support the same FRC forms.
    command = max(c for c in commands if c is not None)
    capacity = FRC_CAPACITY[command]
    addresses = [a for a, _ in members]
    results: list[SensorValue] = []
    try:
        if max(addresses) <= capacity:
            slots = list(range(1, max(addresses) + 1))
            decoded = await _frc_round(connector, spec, command, slots, None)
            results.extend(_pick(decoded, members))
        else:
            for start in range(0, len(addresses), capacity):
                chunk = addresses[start : start + capacity]
                decoded = await _frc_round(connector, spec, command, chunk, chunk)
                results.extend(_pick(decoded, members))
    except (DpaTimeout, DpaError) as exc:
        logger.warning(
            "Sensor FRC for type %d index %d failed (%s); reading nodes directly",
            spec.sensor_type,
            spec.type_index,
            exc,
        )
        done = {v.address for v in results}
        results.extend(
            SensorValue(a, s, None, "no_frc_response")
            for a, s in members
            if a not in done
        )
    return results


def _pick(
    decoded: list[SensorValue], members: list[tuple[int, SensorSpec]]
) -> list[SensorValue]:
    by_address = {v.address: v for v in decoded}
    picked = []
    for address, spec in members:
        value = by_address.get(address)
        if value is None:
            picked.append(SensorValue(address, spec, None, "no_frc_response"))
        else:
            picked.append(SensorValue(address, spec, value.value, value.reason))
    return picked


async def _frc_round(
    connector: IqrfConnector,
    spec: SensorSpec,
    command: int,
    slots: list[int],
    selected: list[int] | None,
) -> list[SensorValue]:
    user_data = frc_user_data(spec)
    response: frc_responses.SendResponse | frc_responses.SendSelectiveResponse
    if selected is None:
        response = await connector.request(
            frc.SendRequest(nadr=0, frc_command=command, user_data=user_data),
            frc_responses.SendResponse,
        )
    else:
        response = await connector.request(
            frc.SendSelectiveRequest(
                nadr=0,
                frc_command=command,
                selected_nodes=selected,
                user_data=user_data,
            ),
            frc_responses.SendSelectiveResponse,
        )
    status = response.status
    if status is None or status >= FRC_STATUS_ERROR_FROM:
        raise DpaError(0, f"Sensor FRC 0x{command:02x}", -1, f"FRC status {status}")
    data = list(response.frc_data or [])[:FRC_DATA_BYTES]
    extra: list[int] | None = None
    if frc_bytes_needed(command, len(slots)) > FRC_DATA_BYTES:
        extra_response = await connector.request(
            frc.ExtraResultRequest(nadr=0), frc_responses.ExtraResultResponse
        )
        extra = list(extra_response.frc_data or [])
    return decode_frc(spec, command, data, extra, slots)
