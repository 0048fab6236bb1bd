"""Standard Sensor value encoding, the inverse of iqrfpy's sensor parser.

The simulator encodes each value as a real sensor node would: the raw bytes
of ReadSensors(WithTypes) and the FRC value for each FRC form. The error
codes are the Standard Sensor ones that iqrfpy decodes to "no value".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from iqrfpy.utils.sensor_constants import SensorFrcCommands, SensorTypes

logger = logging.getLogger(__name__)

FRC_NO_RESPONSE = 0
FRC_NOT_IMPLEMENTED = 1
FRC_SENSOR_ERROR = 2
# FRC values 0 to 3 are status codes, so encoded readings start at 4.
FRC_VALUE_OFFSET = 4


@dataclass(frozen=True, slots=True)
class SensorCodec:
    """How one Standard Sensor type is put on the air."""

    raw_bytes: int
    raw_error: int
    frc_forms: tuple[int, ...]


CODECS: dict[int, SensorCodec] = {
    SensorTypes.TEMPERATURE: SensorCodec(
        2, 0x8000, (SensorFrcCommands.FRC_1BYTE, SensorFrcCommands.FRC_2BYTES)
    ),
    SensorTypes.CO2: SensorCodec(
        2, 0x8000, (SensorFrcCommands.FRC_1BYTE, SensorFrcCommands.FRC_2BYTES)
    ),
    SensorTypes.ILLUMINANCE: SensorCodec(2, 0xFFFF, (SensorFrcCommands.FRC_2BYTES,)),
    SensorTypes.RELATIVE_HUMIDITY: SensorCodec(1, 0xEE, (SensorFrcCommands.FRC_1BYTE,)),
    SensorTypes.BINARYDATA7: SensorCodec(
        1, 0x80, (SensorFrcCommands.FRC_2BITS, SensorFrcCommands.FRC_1BYTE)
    ),
}


def supported(sensor_type: int) -> bool:
    """Tell whether the simulator can encode this sensor type."""
    return sensor_type in CODECS


def encode_raw(sensor_type: int, value: float | None) -> bytes:
    """Encode a value as ReadSensors data bytes, or the error code for None."""
    codec = CODECS[sensor_type]
    if value is None:
        word = codec.raw_error
    elif sensor_type == SensorTypes.TEMPERATURE:
        word = round(value * 16) & 0xFFFF
    elif sensor_type == SensorTypes.RELATIVE_HUMIDITY:
        word = min(round(value * 2), 0xED)
    elif sensor_type == SensorTypes.BINARYDATA7:
        word = int(value) & 0x7F
    else:
        word = max(0, min(round(value), codec.raw_error - 1))
    return word.to_bytes(codec.raw_bytes, "little")


def encode_frc(sensor_type: int, frc_command: int, value: float | None) -> int:
    """Encode a value as a Sensor FRC value, or a status code 0 to 3."""
    codec = CODECS[sensor_type]
    if frc_command not in codec.frc_forms:
        return FRC_NOT_IMPLEMENTED
    if value is None:
        return FRC_SENSOR_ERROR
    if sensor_type == SensorTypes.TEMPERATURE:
        if frc_command == SensorFrcCommands.FRC_2BYTES:
            return (round(value * 16) & 0xFFFF) ^ 0x8000
        encoded = round((value + 22) * 2)
        return encoded if FRC_VALUE_OFFSET <= encoded <= 0xFF else FRC_SENSOR_ERROR
    if sensor_type == SensorTypes.CO2 and frc_command == SensorFrcCommands.FRC_1BYTE:
        encoded = int(value) // 16 + FRC_VALUE_OFFSET
        return encoded if encoded <= 0xFF else FRC_SENSOR_ERROR
    if sensor_type == SensorTypes.RELATIVE_HUMIDITY:
        return round(value * 2) + FRC_VALUE_OFFSET
    if sensor_type == SensorTypes.BINARYDATA7 and frc_command == (
        SensorFrcCommands.FRC_2BITS
    ):
        return 0b10 | (int(value) & 1)
    return round(value) + FRC_VALUE_OFFSET


def frc_width(frc_command: int) -> int:
    """Return the bytes per node of an FRC form, 0 for the 2-bit form."""
    if frc_command < 0x80:
        return 0
    if frc_command < 0xE0:
        return 1
    if frc_command < 0xF8:
        return 2
    return 4
