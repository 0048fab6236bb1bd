"""Medians with min and max, ratios to citymesh, and the Markdown report."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Figure:
    """Median, min and max of one measure over the runs."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, samples: list[float]) -> Figure:
        """Summarise the samples of every run."""
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


def fmt(value: float) -> str:
    """Format a number with three significant digits and thousands separators."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


@dataclass
class Results:
    """Samples per (measure, system), in the order they were first recorded."""

    samples: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    units: dict[str, str] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(
        self, measure: str, system: str, value: float, unit: str, higher: bool
    ) -> None:
        """Record one run's value of a measure for a system."""
        self.samples[measure].setdefault(system, []).append(value)
        self.units[measure] = unit
        self.higher_is_better[measure] = higher

    def table(self, systems: list[str]) -> str:
        """Return a Markdown table: one row per measure, one column per system.

        Each cell is `median (min-max)`; a peer's cell ends with the citymesh
        ratio `citymesh / peer` for that measure.
        """
        header = "| measure | unit | " + " | ".join(systems) + " |"
        rule = "|---|---|" + "---|" * len(systems)
        rows = [header, rule]
        for measure, by_system in self.samples.items():
            ours = by_system.get("citymesh")
            cells = []
            for system in systems:
                values = by_system.get(system)
                if not values:
                    cells.append("n/a")
                    continue
                figure = Figure.of(values)
                cell = fmt(figure.median)
                if figure.runs > 1:
                    cell += f" ({fmt(figure.low)}-{fmt(figure.high)})"
                if system != "citymesh" and ours and figure.median:
                    ratio = statistics.median(ours) / figure.median
                    cell += f" · x{ratio:.2f}"
                cells.append(cell)
            unit = self.units[measure]
            better = "higher" if self.higher_is_better[measure] else "lower"
            rows.append(
                f"| {measure} | {unit}, {better} is better | "
                + " | ".join(cells)
                + " |"
            )
        return "\n".join(rows)
