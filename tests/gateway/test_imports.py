"""What `citymesh gateway` loads: nothing of the data-centre side."""

from __future__ import annotations

import json
import subprocess
import sys

# Packages a gateway board need not have loaded (or installed, for the
# third-party ones) to forward readings.
DATA_CENTRE = (
    "citymesh.api",
    "citymesh.collector",
    "citymesh.query",
    "citymesh.registry",
    "citymesh.server",
    "citymesh.storage",
    "citymesh.web",
    "citymesh.admin_cli",
    "citymesh.demo",
)
HEAVY = (
    "numpy",
    "duckdb",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "amqtt",
    "cryptography",
    "iqrfpy",
    "rich",
)

# The modules the gateway command imports to run a replay gateway.
GATEWAY_PATH = """
import json, sys
import citymesh.cli
import citymesh.config
import citymesh.gateway.runner
import citymesh.gateway.uplink
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_modules() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", GATEWAY_PATH],
        capture_output=True,
        text=True,
        check=True,
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def test_gateway_command_loads_no_data_centre() -> None:
    modules = _loaded_modules()
    loaded = [m for m in modules if m.startswith(DATA_CENTRE)]
    assert loaded == []


def test_gateway_command_loads_no_heavy_packages() -> None:
    modules = _loaded_modules()
    loaded = [m for m in modules if m.split(".")[0] in HEAVY]
    assert loaded == []
