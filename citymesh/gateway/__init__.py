"""Gateway: reads a sensor mesh or a recording and forwards readings over MQTT."""
