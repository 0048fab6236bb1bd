"""graphite-web 1.1.10 run in-process over whisper files, as the reference answer.

pip installs graphite-web under `<site-packages>/opt/graphite/webapp`, so that
directory goes on sys.path. Django is configured once per process with
tests/query/graphite_settings.py, and requests go through graphite-web's own
render view (option parsing, evaluation, maxDataPoints and JSON output).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# One whisper archive per series; ten days at one minute cover every test range.
WHISPER_ARCHIVES = {60: [(60, 14 * 1440)], 3600: [(3600, 4 * 366 * 24)]}


class GraphiteOracle:
    """graphite-web's render view over whisper files in one storage directory."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.whisper_dir = storage / "whisper"
        self.whisper_dir.mkdir(parents=True, exist_ok=True)
        (storage / "log").mkdir(exist_ok=True)
        webapp = importlib.metadata.distribution("graphite-web").locate_file(
            "opt/graphite/webapp"
        )
        if str(webapp) not in sys.path:
            sys.path.insert(0, str(webapp))
        os.environ["CITYMESH_GRAPHITE_STORAGE"] = str(storage)
        os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
        os.environ["GRAPHITE_SETTINGS_MODULE"] = "tests.query.graphite_settings"
        with warnings.catch_warnings():
            # Django 3.0 and graphite-web import modules that Python 3.11
            # deprecates (cgi, imp); that is theirs, not ours.
            warnings.simplefilter("ignore")
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", verbosity=0, interactive=False)

    def write(self, name: str, step: int, points: Mapping[int, float | None]) -> None:
        """Create the whisper file of a series and write its non-null points."""
        import whisper
        from graphite.storage import STORE
        from graphite.tags.utils import TaggedSeries

        if ";" in name:
            relative = TaggedSeries.encode(name, os.sep)
        else:
            relative = name.replace(".", os.sep)
        path = self.whisper_dir / (relative + ".wsp")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        whisper.create(str(path), WHISPER_ARCHIVES[step], xFilesFactor=0.0)
        rows = [(t, v) for t, v in points.items() if v is not None]
        if rows:
            whisper.update_many(str(path), rows)
        if ";" in name:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                STORE.tagdb.tag_series(name)

    def render(self, params: Mapping[str, str | Sequence[str]]) -> list[dict[str, Any]]:
        """Return graphite-web's JSON answer to a /render request."""
        from django.test import RequestFactory
        from graphite.render.views import renderView

        query = {key: value for key, value in params.items()}
        query.setdefault("format", "json")
        query["noCache"] = "1"
        request = RequestFactory().get("/render", query)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = renderView(request)
        body: list[dict[str, Any]] = json.loads(response.content)
        return body


def assert_same_json(
    expected: list[dict[str, Any]], actual: list[dict[str, Any]], target: str
) -> None:
    """Assert equal names, timestamps and values (within 1e-9 relative)."""
    expected_names = [series["target"] for series in expected]
    actual_names = [series["target"] for series in actual]
    assert actual_names == expected_names, f"{target}: names {actual_names}"
    for want, got in zip(expected, actual, strict=True):
        want_stamps = [point[1] for point in want["datapoints"]]
        got_stamps = [point[1] for point in got["datapoints"]]
        assert got_stamps == want_stamps, f"{target}: {want['target']} timestamps"
        want_values = np.array(
            [np.nan if p[0] is None else p[0] for p in want["datapoints"]], dtype=float
        )
        got_values = np.array(
            [np.nan if p[0] is None else p[0] for p in got["datapoints"]], dtype=float
        )
        assert np.array_equal(np.isnan(got_values), np.isnan(want_values)), (
            f"{target}: {want['target']} nulls differ:\n{want_values}\n{got_values}"
        )
        both = ~np.isnan(want_values)
        assert np.allclose(got_values[both], want_values[both], rtol=1e-9, atol=0.0), (
            f"{target}: {want['target']} values:\n{want_values}\n{got_values}"
        )
