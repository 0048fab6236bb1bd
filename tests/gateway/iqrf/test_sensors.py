"""Standard Sensor decoding: FRC forms, status values, error codes, slot layout."""

from __future__ import annotations

import json

import pytest
from iqrfpy.peripherals.sensor import responses as sensor
from iqrfpy.utils.sensor_constants import SensorFrcCommands, SensorTypes

from citymesh.gateway.iqrf.dpa import parse_hex, parse_response
from citymesh.gateway.iqrf.sensors import (
    SensorSpec,
    decode_frc,
    decode_read_with_types,
    frc_bytes_needed,
    specs_from_enumeration,
)
from tests.gateway.iqrf.conftest import DPA_EXAMPLES

FRC_1BYTE = SensorFrcCommands.FRC_1BYTE
FRC_2BYTES = SensorFrcCommands.FRC_2BYTES
FRC_2BITS = SensorFrcCommands.FRC_2BITS


def _spec(sensor_type: int) -> SensorSpec:
    return SensorSpec(sensor_type, 0, 0, "", "", (FRC_1BYTE, FRC_2BYTES))


def _frame(values: dict[int, bytes], width: int) -> tuple[list[int], list[int]]:
    """Lay out per-address values in 55 data bytes and 9 Extra Result bytes."""
    frame = bytearray(64)
    for address, raw in values.items():
        frame[address * width : address * width + width] = raw
    return list(frame[:55]), list(frame[55:])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(bytes([0x5E]), 25.0), (bytes([23]), -10.5), (bytes([4]), -20.0)],
)
def test_frc_1byte_temperature(raw: bytes, expected: float) -> None:
    data, extra = _frame({1: raw}, 1)
    (value,) = decode_frc(_spec(SensorTypes.TEMPERATURE), FRC_1BYTE, data, extra, [1])
    assert value.value == expected


@pytest.mark.parametrize(
    ("celsius", "raw"),
    [
        (23.5, bytes([0x78, 0x81])),
        (-5.25, bytes([0xAC, 0x7F])),
        (0.0, bytes([0, 0x80])),
    ],
)
def test_frc_2byte_temperature(celsius: float, raw: bytes) -> None:
    data, extra = _frame({3: raw}, 2)
    values = decode_frc(
        _spec(SensorTypes.TEMPERATURE), FRC_2BYTES, data, extra, [1, 2, 3]
    )
    assert values[2].value == celsius


def test_frc_co2_both_forms() -> None:
    data, extra = _frame({1: (812 + 4).to_bytes(2, "little")}, 2)
    (two,) = decode_frc(_spec(SensorTypes.CO2), FRC_2BYTES, data, extra, [1])
    assert two.value == 812
    data, extra = _frame({1: bytes([800 // 16 + 4])}, 1)
    (one,) = decode_frc(_spec(SensorTypes.CO2), FRC_1BYTE, data, extra, [1])
    assert one.value == 800


def test_frc_humidity_half_percent() -> None:
    data, extra = _frame({2: bytes([91 + 4])}, 1)
    values = decode_frc(
        _spec(SensorTypes.RELATIVE_HUMIDITY), FRC_1BYTE, data, extra, [1, 2]
    )
    assert values[1].value == 45.5


@pytest.mark.parametrize(
    ("status", "reason"),
    [(0, "no_frc_response"), (1, "frc_not_implemented"), (2, "sensor_error")],
)
@pytest.mark.parametrize(("command", "width"), [(FRC_1BYTE, 1), (FRC_2BYTES, 2)])
def test_frc_status_values_are_missing(
    status: int, reason: str, command: int, width: int
) -> None:
    data, extra = _frame({1: status.to_bytes(width, "little")}, width)
    (value,) = decode_frc(_spec(SensorTypes.TEMPERATURE), command, data, extra, [1])
    assert value.value is None
    assert value.reason == reason


def test_frc_2bit_statuses_and_values() -> None:
    frame = bytearray(64)
    # Node 1: 0b11 (value 1), node 2: 0b01 (not implemented), node 3: 0b00.
    frame[0] = 0b0000_0110
    frame[32] = 0b0000_0010
    spec = SensorSpec(SensorTypes.BINARYDATA7, 0, 0, "", "", (FRC_2BITS,))
    values = decode_frc(spec, FRC_2BITS, list(frame[:55]), list(frame[55:]), [1, 2, 3])
    assert values[0].value == 1
    assert values[1].reason == "frc_not_implemented"
    assert values[2].reason == "no_frc_response"


def test_frc_2byte_value_straddles_extra_result() -> None:
    # Node 27 owns bytes 54 and 55: the low byte ends the FRC Send data and
    # the high byte starts the Extra Result.
    data, extra = _frame({27: bytes([0x78, 0x81])}, 2)
    assert data[54] == 0x78
    assert extra[0] == 0x81
    slots = list(range(1, 28))
    values = decode_frc(_spec(SensorTypes.TEMPERATURE), FRC_2BYTES, data, extra, slots)
    assert values[26].address == 27
    assert values[26].value == 23.5
    assert frc_bytes_needed(FRC_2BYTES, 27) > 55
    assert frc_bytes_needed(FRC_2BYTES, 26) <= 55


def test_frc_selective_slots_beyond_range() -> None:
    # SendSelective puts the selected nodes in slots 1, 2, 3 in address order.
    selected = [40, 77, 200]
    data, extra = _frame(
        {1: bytes([0x78, 0x81]), 2: bytes([2, 0]), 3: bytes([0, 0])}, 2
    )
    values = decode_frc(
        _spec(SensorTypes.TEMPERATURE), FRC_2BYTES, data, extra, selected
    )
    assert [v.address for v in values] == selected
    assert values[0].value == 23.5
    assert values[1].reason == "sensor_error"
    assert values[2].reason == "no_frc_response"


def test_read_with_types_error_code_is_missing() -> None:
    frame = parse_hex("01.00.5e.81.02.04.00.67.01.00.80.81.23.81.7f")
    response = parse_response(frame)
    assert isinstance(response, sensor.ReadSensorsWithTypesResponse)
    data = response.sensor_data or []
    specs = specs_from_enumeration(data)
    values = decode_read_with_types(1, specs, data)
    assert values[0].value is None
    assert values[0].reason == "sensor_error_code"
    assert [v.value for v in values[1:]] == [35, 127]
    assert [s.type_index for s in specs] == [0, 0, 1]


def test_iqrfpy_frc_vectors() -> None:
    vectors = json.loads((DPA_EXAMPLES / "iqrfpy_test_vectors.json").read_text())
    checked = 0
    for case in vectors["sensor_parser_frc"]:
        command = int(case["frc_command"].split("(")[1].rstrip(")"), 16)
        data = [0] * case["frc_data_length"]
        first = case["frc_data_first_bytes"]
        data[: len(first)] = first
        if "frc_data_byte_32" in case:
            data[32] = case["frc_data_byte_32"]
        sensor_type = SensorTypes[case["sensor_type"]]
        spec = SensorSpec(sensor_type, case["sensor_index"], 0, "", "", (command,))
        expected = case.get("values") or case["values_first"]
        slots = list(range(1, len(expected) + 1))
        values = decode_frc(spec, command, data, case.get("extra_result"), slots)
        for value, wanted in zip(values, expected, strict=True):
            if isinstance(wanted, str):
                assert value.value is None, case["origin"]
            else:
                assert value.value == wanted, case["origin"]
        checked += 1
    assert checked == 6


@pytest.mark.parametrize("sensor_type", list(SensorTypes), ids=lambda t: t.name)
def test_sensor_type_maps_to_catalogue_unit(sensor_type: SensorTypes) -> None:
    from iqrfpy.utils.sensor_parser import get_sensor_class

    from citymesh.gateway.iqrf.sensors import NOT_FORWARDED_TYPES, QUANTITY_OF_TYPE
    from citymesh.protocol.quantities import QUANTITIES

    if sensor_type in NOT_FORWARDED_TYPES:
        assert sensor_type not in QUANTITY_OF_TYPE
        return
    quantity = QUANTITIES[QUANTITY_OF_TYPE[sensor_type]]
    # iqrfpy writes the degree sign of °C as U+02DA (ring above).
    expected = get_sensor_class(sensor_type).unit.replace("\u02da", "°")
    assert quantity.unit == expected
