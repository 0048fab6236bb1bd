"""Catalogue of the physical quantities a sensor may report, with their units."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quantity:
    """A measurable quantity: its series-name segment, unit and display label."""

    name: str
    unit: str
    label: str
    kind: str = "gauge"
    """`gauge` for instantaneous values, `count` for events counted over an interval."""


QUANTITIES: dict[str, Quantity] = {
    q.name: q
    for q in (
        Quantity("temperature", "°C", "Temperature"),
        Quantity("humidity", "%", "Relative humidity"),
        Quantity("humidity_ratio", "kg/kg", "Humidity ratio"),
        Quantity("co2", "ppm", "CO2"),
        Quantity("light", "lx", "Illuminance"),
        Quantity("occupancy", "", "Occupancy (0 or 1)"),
        Quantity("pressure", "hPa", "Pressure"),
        Quantity("voltage", "V", "Voltage"),
        Quantity("battery", "%", "Battery level"),
        Quantity("pedestrians", "1/h", "Pedestrians per hour", kind="count"),
        Quantity("vehicles", "1/h", "Vehicles per hour", kind="count"),
        Quantity("binary", "", "Binary state"),
        # The remaining IQRF Standard Sensor quantities, with IQRF's units.
        Quantity("voc", "ppm", "Volatile organic compounds"),
        Quantity("tvoc", "µg/m3", "Total volatile organic compounds"),
        Quantity("magnetic_field", "T", "Earth's magnetic field"),
        Quantity("current", "A", "Current"),
        Quantity("power", "W", "Power"),
        Quantity("mains_frequency", "Hz", "Mains frequency"),
        Quantity("timespan", "s", "Timespan"),
        Quantity("no2", "ppm", "Nitrogen dioxide"),
        Quantity("so2", "ppm", "Sulfur dioxide"),
        Quantity("co", "ppm", "Carbon monoxide"),
        Quantity("o3", "ppm", "Ozone"),
        Quantity("nh3", "ppm", "Ammonia"),
        Quantity("methane", "%", "Methane"),
        Quantity("nox", "", "Nitrogen oxides"),
        Quantity("color_temperature", "K", "Colour temperature"),
        Quantity("pm1", "µg/m3", "Particulates PM1"),
        Quantity("pm2_5", "µg/m3", "Particulates PM2.5"),
        Quantity("pm4", "µg/m3", "Particulates PM4"),
        Quantity("pm10", "µg/m3", "Particulates PM10"),
        Quantity("pm40", "µg/m3", "Particulates PM40"),
        Quantity("sound_pressure_level", "dB", "Sound pressure level"),
        Quantity("altitude", "m", "Altitude"),
        Quantity("acceleration", "m/s2", "Acceleration"),
        Quantity("length", "m", "Length"),
        Quantity("activity_concentration", "Bq/m3", "Radon activity concentration"),
        Quantity("power_factor", "", "Power factor"),
        Quantity("uv_index", "", "UV index"),
        Quantity("ph", "", "pH"),
        Quantity("rssi", "dBm", "Received signal strength"),
        Quantity("consumption", "Wh", "Energy consumption", kind="count"),
        Quantity("latitude", "°", "Latitude"),
        Quantity("longitude", "°", "Longitude"),
    )
}


def lookup_quantity(name: str) -> Quantity:
    """Return the catalogue entry for `name` or raise KeyError naming the choices."""
    try:
        return QUANTITIES[name]
    except KeyError:
        choices = ", ".join(sorted(QUANTITIES))
        raise KeyError(
            f"unknown quantity {name!r}; known quantities: {choices}"
        ) from None
