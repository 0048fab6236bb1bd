"""Gateway-to-data-centre wire protocol, shared by the gateway and the collector.

Nothing here imports from the gateway or the data-centre packages, so both can
depend on it.
"""
