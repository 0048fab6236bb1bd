"""IQRF Standard Sensor decoding: quantities, FRC forms, values and missing readings.

The numeric conversion of every Standard Sensor quantity is iqrfpy's
(`iqrfpy.utils.sensor_parser.SensorParser`); this module chooses the FRC form
per quantity, maps node slots of FRC responses to addresses and turns error
codes into missing readings with a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from iqrfpy.objects.sensor_data import SensorData
from iqrfpy.utils.sensor_constants import (
    SensorFrcCommands,
    SensorFrcErrors,
    SensorTypes,
)
from iqrfpy.utils.sensor_parser import SensorParser

logger = logging.getLogger(__name__)

# Standard Sensor peripheral number, the first byte of Sensor FRC user data.
PNUM_SENSOR = 0x5E
# FRC Send returns 55 data bytes after its status byte; FRC Extra Result the next 9.
FRC_DATA_BYTES = 55
FRC_EXTRA_BYTES = 9

# Standard Sensor type -> citymesh quantity. The types left out carry no single
# number (date and time, action codes, 30-bit binary data, 4-byte and block
# data), so they are decoded but not forwarded as readings.
QUANTITY_OF_TYPE: dict[SensorTypes, str] = {
    SensorTypes.TEMPERATURE: "temperature",
    SensorTypes.TEMPERATURE_FLOAT: "temperature",
    SensorTypes.CO2: "co2",
    SensorTypes.RELATIVE_HUMIDITY: "humidity",
    SensorTypes.ILLUMINANCE: "light",
    SensorTypes.ATMOSPHERIC_PRESSURE: "pressure",
    SensorTypes.LOW_VOLTAGE: "voltage",
    SensorTypes.EXTRA_LOW_VOLTAGE: "voltage",
    SensorTypes.BINARYDATA7: "binary",
    SensorTypes.BINARY_INPUT: "binary",
    SensorTypes.VOC: "voc",
    SensorTypes.TVOC: "tvoc",
    SensorTypes.EARTHS_MAGNETIC_FIELD: "magnetic_field",
    SensorTypes.CURRENT: "current",
    SensorTypes.POWER: "power",
    SensorTypes.MAINS_FREQUENCY: "mains_frequency",
    SensorTypes.TIMESPAN: "timespan",
    SensorTypes.TIMESPAN_LONG: "timespan",
    SensorTypes.NO2: "no2",
    SensorTypes.SO2: "so2",
    SensorTypes.CO: "co",
    SensorTypes.O3: "o3",
    SensorTypes.NH3: "nh3",
    SensorTypes.METHANE: "methane",
    SensorTypes.NOX: "nox",
    SensorTypes.COLOR_TEMPERATURE: "color_temperature",
    SensorTypes.PARTICULATES_PM1: "pm1",
    SensorTypes.PARTICULATES_PM2_5: "pm2_5",
    SensorTypes.PARTICULATES_PM4: "pm4",
    SensorTypes.PARTICULATES_PM10: "pm10",
    SensorTypes.PARTICULATES_PM40: "pm40",
    SensorTypes.SOUND_PRESSURE_LEVEL: "sound_pressure_level",
    SensorTypes.ALTITUDE: "altitude",
    SensorTypes.ACCELERATION: "acceleration",
    SensorTypes.SHORT_LENGTH: "length",
    SensorTypes.LENGTH: "length",
    SensorTypes.ACTIVITY_CONCENTRATION: "activity_concentration",
    SensorTypes.POWER_FACTOR: "power_factor",
    SensorTypes.UV_INDEX: "uv_index",
    SensorTypes.PH: "ph",
    SensorTypes.RSSI: "rssi",
    SensorTypes.CONSUMPTION: "consumption",
    SensorTypes.LATITUDE: "latitude",
    SensorTypes.LONGITUDE: "longitude",
}
NOT_FORWARDED_TYPES = frozenset(
    {
        SensorTypes.ACTION,
        SensorTypes.BINARYDATA30,
        SensorTypes.DATETIME,
        SensorTypes.FOUR_BYTES,
        SensorTypes.DATA_BLOCK,
    }
)

# Why a reading is missing, by FRC status value.
FRC_ERROR_REASONS: dict[SensorFrcErrors, str] = {
    SensorFrcErrors.NO_FRC_RESPONSE: "no_frc_response",
    SensorFrcErrors.FRC_NOT_IMPLEMENTED: "frc_not_implemented",
    SensorFrcErrors.SENSOR_ERROR_OR_OUT_OF_RANGE: "sensor_error",
    SensorFrcErrors.RESERVED: "reserved_frc_value",
}
# FRC outcomes after which the node is asked directly with ReadSensorsWithTypes.
FALLBACK_REASONS = frozenset({"no_frc_response", "frc_not_implemented"})

# Nodes one FRC response can carry, node 0 (the coordinator's slot) excluded:
# 2 bits give 240 slots, 1 byte 64, 2 bytes 32 and 4 bytes 16 in 64 bytes.
FRC_CAPACITY: dict[int, int] = {
    SensorFrcCommands.FRC_2BITS: 239,
    SensorFrcCommands.FRC_1BYTE: 63,
    SensorFrcCommands.FRC_2BYTES: 31,
    SensorFrcCommands.FRC_4BYTES: 15,
}


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor of a node as Sensor Enumerate lists it."""

    sensor_type: int
    index: int
    """Position among all sensors of the node (0-based)."""
    type_index: int
    """Position among the node's sensors of the same type, used by Sensor FRC."""
    name: str
    unit: str
    frc_commands: tuple[int, ...]

    @property
    def quantity(self) -> str | None:
        """Return the citymesh quantity, or None when the catalogue lacks one."""
        try:
            return QUANTITY_OF_TYPE.get(SensorTypes(self.sensor_type))
        except ValueError:
            return None

    @property
    def frc_command(self) -> int | None:
        """Return the widest FRC form the quantity supports, None without FRC."""
        if not self.frc_commands:
            return None
        return max(self.frc_commands)


@dataclass(frozen=True, slots=True)
class SensorValue:
    """A decoded value, or a missing one with the reason, of one sensor of a node."""

    address: int
    spec: SensorSpec
    value: float | None
    reason: str = ""

    @property
    def missing(self) -> bool:
        """Tell whether the value is missing."""
        return self.value is None


def specs_from_enumeration(sensors: Sequence[SensorData]) -> list[SensorSpec]:
    """Turn iqrfpy's Sensor Enumerate result into sensor specs."""
    specs: list[SensorSpec] = []
    seen: dict[int, int] = {}
    for position, sensor in enumerate(sensors):
        sensor_type = int(sensor.sensor_type)
        type_index = seen.get(sensor_type, 0)
        seen[sensor_type] = type_index + 1
        specs.append(
            SensorSpec(
                sensor_type=sensor_type,
                index=position,
                type_index=type_index,
                name=sensor.name,
                unit=sensor.unit,
                frc_commands=tuple(int(c) for c in sensor.frc_commands),
            )
        )
    return specs


def frc_user_data(spec: SensorSpec) -> list[int]:
    """Build Sensor FRC user data: peripheral, sensor type, index among that type."""
    # The fourth byte holds no data to write to the sensors; the IQRF daemon
    # sends the same four bytes.
    return [PNUM_SENSOR, spec.sensor_type, spec.type_index, 0]


def frc_bytes_needed(frc_command: int, slots: int) -> int:
    """Return how many FRC data bytes carry `slots` node values after slot 0."""
    if frc_command == SensorFrcCommands.FRC_2BITS:
        # Low bits in bytes 0-29, high bits 32 bytes further on.
        return 32 + slots // 8 + 1
    width = {
        SensorFrcCommands.FRC_1BYTE: 1,
        SensorFrcCommands.FRC_2BYTES: 2,
        SensorFrcCommands.FRC_4BYTES: 4,
    }[SensorFrcCommands(frc_command)]
    return width * (slots + 1)


def decode_frc(
    spec: SensorSpec,
    frc_command: int,
    data: Sequence[int],
    extra: Sequence[int] | None,
    slots: Sequence[int],
) -> list[SensorValue]:
    """Decode the node values of a Sensor FRC response.

    Args:
        spec: the sensor asked for (type and index).
        frc_command: the FRC command sent (0x10, 0x90, 0xE0 or 0xF9).
        data: the 55 FRC data bytes after the status byte.
        extra: the 9 bytes of FRC Extra Result, or None when not read.
        slots: node address in each slot from slot 1 on: every address from 1
            for FRC Send, the selected nodes in ascending order for SendSelective.
    """
    if not slots:
        return []
    # iqrfpy's parser extends the list it is given, so it gets a copy.
    parsed = SensorParser.frc_dpa(
        sensor_type=spec.sensor_type,
        sensor_index=spec.index,
        frc_command=frc_command,
        data=list(data),
        extra_result=None if extra is None else list(extra),
        count=len(slots),
    )
    values: list[SensorValue] = []
    for address, item in zip(slots, parsed, strict=True):
        values.append(_sensor_value(address, spec, item.value))
    return values


def decode_read_with_types(
    address: int, specs: Sequence[SensorSpec], sensors: Sequence[SensorData]
) -> list[SensorValue]:
    """Decode a ReadSensorsWithTypes result against the node's enumerated sensors.

    A value iqrfpy returns as None carries the quantity's error code (0x8000 for
    2-byte signed values, 0xEE for humidity and others) and becomes missing.
    """
    values: list[SensorValue] = []
    for spec, sensor in zip(specs, sensors, strict=False):
        if int(sensor.sensor_type) != spec.sensor_type:
            values.append(SensorValue(address, spec, None, "sensor_type_mismatch"))
            continue
        values.append(_sensor_value(address, spec, sensor.value))
    for spec in specs[len(sensors) :]:
        values.append(SensorValue(address, spec, None, "not_in_response"))
    return values


def _sensor_value(address: int, spec: SensorSpec, raw: object) -> SensorValue:
    if isinstance(raw, SensorFrcErrors):
        return SensorValue(address, spec, None, FRC_ERROR_REASONS[raw])
    if raw is None:
        return SensorValue(address, spec, None, "sensor_error_code")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return SensorValue(address, spec, None, "not_a_number")
    return SensorValue(address, spec, float(raw))
