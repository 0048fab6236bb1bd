"""The collector: validates gateway messages from MQTT and writes them to the store."""
