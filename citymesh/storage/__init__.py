"""Time-series storage: the store interface and its implementations."""

from citymesh.storage.base import (
    LatestValue,
    PointsBlock,
    SeriesData,
    SeriesMeta,
    TimeSeriesStore,
)

__all__ = ["LatestValue", "PointsBlock", "SeriesData", "SeriesMeta", "TimeSeriesStore"]
