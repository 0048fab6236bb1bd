"""The `[retention]` section of the server settings, turned into RetentionRules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from citymesh.errors import ConfigError
from citymesh.storage.retention import (
    Aggregation,
    RetentionRules,
    Schema,
    check_method,
    check_pattern,
    parse_archives,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemaSettings(_Section):
    """One storage-schemas rule: a name pattern and its retentions."""

    name: str = ""
    pattern: str
    """Regular expression searched in the series name; the first match wins."""
    retentions: str
    """Archives finest first, `<step>:<retention>`, e.g. `1m:30d,10m:1y,1h:10y`."""

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return str(_as_value_error(check_pattern, value, "schema"))

    @field_validator("retentions")
    @classmethod
    def _valid_retentions(cls, value: str) -> str:
        return str(_as_value_error(parse_archives, value))


class AggregationSettings(_Section):
    """One storage-aggregation rule: a name pattern, a method and xFilesFactor."""

    name: str = ""
    pattern: str
    method: str = "average"
    """average, sum, min, max or last."""
    x_files_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        return str(_as_value_error(check_pattern, value, "aggregation"))

    @model_validator(mode="after")
    def _valid_method(self) -> AggregationSettings:
        _as_value_error(check_method, self.method, self.x_files_factor)
        return self


class RetentionSettings(_Section):
    """Retention schemas, aggregations and how often background work runs."""

    schemas: tuple[SchemaSettings, ...] = ()
    aggregations: tuple[AggregationSettings, ...] = ()
    maintenance_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """Seconds between compaction, rollup and expiry passes."""

    def to_rules(self) -> RetentionRules:
        """Return the rules as storage value objects."""
        return RetentionRules.build(
            [
                Schema(s.name or s.pattern, s.pattern, parse_archives(s.retentions))
                for s in self.schemas
            ],
            [
                Aggregation(a.name or a.pattern, a.pattern, a.method, a.x_files_factor)
                for a in self.aggregations
            ],
        )


def _as_value_error(check: Callable[..., object], value: Any, *args: Any) -> Any:
    """Run a check raising ConfigError and return `value`, for pydantic validators."""
    try:
        check(value, *args)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value
