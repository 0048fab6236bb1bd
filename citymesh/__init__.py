"""citymesh: sensor meshes to gateways, MQTT, a time-series store and dashboards."""

__version__ = "0.1.0"
