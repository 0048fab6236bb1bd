"""MQTT transport: broker addresses, reconnect backoff, the embedded broker."""
