// Shared plotly.js settings and a render scheduler for the dashboard charts.

/* global Plotly */

export const COLORWAY = [
  "#2563eb",
  "#16a34a",
  "#dc2626",
  "#9333ea",
  "#ea580c",
  "#0891b2",
  "#ca8a04",
  "#db2777",
  "#4b5563",
  "#65a30d",
];

export const PLOTLY_CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
};

/** Build a plotly layout with the dashboard's fonts, margins and date x axis. */
export function baseLayout(overrides = {}) {
  return {
    autosize: true,
    margin: { l: 56, r: 16, t: 32, b: 40 },
    font: {
      family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
      size: 12,
      color: "#1f2937",
    },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    colorway: COLORWAY,
    hovermode: "x unified",
    showlegend: true,
    // Above the plot, so it does not overlap the date ticks on narrow screens.
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    xaxis: { type: "date", gridcolor: "#e5e7eb", linecolor: "#d1d5db", automargin: true },
    yaxis: { gridcolor: "#e5e7eb", zerolinecolor: "#d1d5db", automargin: true },
    ...overrides,
  };
}

/**
 * Coalesce many render requests into one call per `delayMs`, so a burst of
 * live points redraws a chart once.
 */
export class RenderScheduler {
  constructor(render, delayMs = 250) {
    this.render = render;
    this.delayMs = delayMs;
    this.timer = null;
  }

  request() {
    if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.render();
      }, this.delayMs);
    }
  }

  now() {
    clearTimeout(this.timer);
    this.timer = null;
    this.render();
  }
}

/** Draw or update a chart in place with Plotly.react, which diffs against the last figure. */
export function drawChart(element, traces, layout, config = {}) {
  return Plotly.react(element, traces, layout, { ...PLOTLY_CONFIG, ...config });
}

/**
 * Points of one trace: epoch-ms timestamps next to the plotly x strings and y
 * values, kept in ascending time order.
 */
export class PointBuffer {
  constructor() {
    this.clear();
  }

  clear() {
    this.timestamps = [];
    this.x = [];
    this.y = [];
  }

  /** Replace the contents with `[timestampMs, value]` pairs from the API. */
  load(points, toPlotlyTime) {
    this.clear();
    for (const [timestamp, value] of points) {
      this.timestamps.push(timestamp);
      this.x.push(toPlotlyTime(timestamp));
      this.y.push(value);
    }
  }

  /**
   * Append a live point if it is newer than the last one, or overwrite the value
   * of an equal timestamp; older points are dropped. Return whether it changed.
   */
  append(timestamp, value, toPlotlyTime) {
    const count = this.timestamps.length;
    const last = count > 0 ? this.timestamps[count - 1] : -Infinity;
    if (timestamp === last) {
      this.y[count - 1] = value;
      return true;
    }
    if (timestamp < last) {
      return false;
    }
    this.timestamps.push(timestamp);
    this.x.push(toPlotlyTime(timestamp));
    this.y.push(value);
    return true;
  }

  /** Drop points older than `fromMs`. */
  trimBefore(fromMs) {
    let drop = 0;
    while (drop < this.timestamps.length && this.timestamps[drop] < fromMs) {
      drop += 1;
    }
    if (drop > 0) {
      this.timestamps.splice(0, drop);
      this.x.splice(0, drop);
      this.y.splice(0, drop);
    }
  }

  /** Return the timestamp of the first point with a value, or null. */
  firstTimestamp() {
    const index = this.y.findIndex((value) => value !== null);
    return index < 0 ? null : this.timestamps[index];
  }
}

/**
 * Return the x and y arrays of `buffer` with a null point wherever two
 * neighbours are more than `maxGapMs` apart, so a line trace shows a gap
 * in the data as a break instead of a straight line across it.
 */
export function withGaps(buffer, maxGapMs) {
  const { timestamps, x, y } = buffer;
  if (!(maxGapMs > 0)) {
    return { x, y };
  }
  const outX = [];
  const outY = [];
  for (let i = 0; i < timestamps.length; i += 1) {
    if (i > 0 && timestamps[i] - timestamps[i - 1] > maxGapMs) {
      outX.push(x[i]);
      outY.push(null);
    }
    outX.push(x[i]);
    outY.push(y[i]);
  }
  return { x: outX, y: outY };
}
