"""DPA node addresses, kept apart from iqrfpy so that settings load without it."""

from __future__ import annotations

COORDINATOR = 0
BROADCAST = 255
MAX_NODE_ADDRESS = 239
