"""MQTT transport: broker addresses, client connections with backoff, the embedded broker."""
