"""Recorded public data sets shipped with citymesh, one folder per set."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

logger = logging.getLogger(__name__)


def data_dir() -> Path:
    """Return the directory that contains the data set folders.

    Raises FileNotFoundError when citymesh is imported from a zip archive,
    because the readers open the files by path.
    """
    resource = files(__name__)
    if not isinstance(resource, Path):
        raise FileNotFoundError(
            f"citymesh.data is at {resource!s}, which is not a directory on the "
            "file system; install citymesh as an unpacked package"
        )
    return resource
