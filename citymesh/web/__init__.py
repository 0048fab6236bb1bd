"""Static files of the live web dashboard and the plotly.js bundle it loads.

The HTTP app serves `static_dir()` under `/static` and `plotly_js_path()` at
`/static/vendor/plotly.min.js`, so the page needs no network access beyond the
data centre itself.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from citymesh.errors import ConfigError

logger = logging.getLogger(__name__)


def static_dir() -> Path:
    """Return the directory containing index.html, the dashboard scripts and CSS."""
    return Path(str(resources.files(__name__).joinpath("static")))


def plotly_js_path() -> Path:
    """Return the path of plotly.min.js as bundled in the installed plotly package.

    Raises ConfigError when the plotly package is missing or ships no bundle.
    """
    try:
        package_data = resources.files("plotly").joinpath("package_data")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the plotly package is not installed; the dashboard loads plotly.min.js "
            "from it (pip install plotly)"
        ) from exc
    path = Path(str(package_data.joinpath("plotly.min.js")))
    if not path.is_file():
        raise ConfigError(
            f"plotly.min.js not found at {path}; reinstall the plotly package"
        )
    logger.debug("serving plotly.js from %s", path)
    return path
