"""IQRF mesh networks on the gateway: DPA through iqrfpy, a connector, a simulator."""
