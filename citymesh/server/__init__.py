"""The data-centre side assembled: broker, collector, store, registry and HTTP API."""
