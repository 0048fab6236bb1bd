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
