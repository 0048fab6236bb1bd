// History chart of one selected sensor: range presets, zoom-driven refetch, live tail.

import { fetchPoints, stepFor } from "./api.js";
import {
  PointBuffer,
  RenderScheduler,
  baseLayout,
  drawChart,
  withGaps,
} from "./chart_base.js";
import {
  deviceName,
  displayUnit,
  escapeHtml,
  formatDateTime,
  fromPlotlyTime,
  toPlotlyTime,
} from "./format.js";

// 2000-01-01 UTC: the protocol rejects older timestamps, so "all" starts here.
const EARLIEST_MS = 946684800000;

// Wait for the user to finish a zoom gesture before fetching.
const ZOOM_DEBOUNCE_MS = 300;

export class HistoryChart {
  constructor({ element, title, note, rangeGroup }) {
    this.element = element;
    this.title = title;
    this.note = note;
    this.rangeButtons = [...rangeGroup.querySelectorAll("button[data-range]")];
    this.sensor = null;
    // Seconds as a string, "all", or null while the user has zoomed.
    this.preset = "86400";
    this.lastPreset = "86400";
    this.fromMs = 0;
    this.untilMs = 0;
    this.stepS = null;
    // While following, live points extend the chart and slide the window.
    this.following = true;
    this.buffer = new PointBuffer();
    this.pending = null;
    this.loadId = 0;
    this.zoomTimer = null;
    this.listening = false;
    this.scheduler = new RenderScheduler(() => this.render());

    for (const button of this.rangeButtons) {
      button.addEventListener("click", () => this.setPreset(button.dataset.range));
    }
  }

  /** Show `sensor` over the selected preset range. */
  show(sensor) {
    this.sensor = sensor;
    this.preset ??= this.lastPreset;
    this.markPreset();
    this.title.textContent = `${deviceName(sensor)} · ${sensor.label || sensor.quantity}`;
    this.title.title = sensor.series;
    return this.loadPreset();
  }

  /** Reload the current view, e.g. after the live stream reconnected. */
  refresh() {
    if (!this.sensor) {
      return Promise.resolve();
    }
    if (this.preset !== null) {
      return this.loadPreset();
    }
    return this.load(this.fromMs, this.untilMs, this.following);
  }

  setPreset(preset) {
    this.preset = preset;
    this.lastPreset = preset;
    this.markPreset();
    return this.loadPreset();
  }

  markPreset() {
    for (const button of this.rangeButtons) {
      const pressed = button.dataset.range === this.preset;
      button.setAttribute("aria-pressed", String(pressed));
    }
  }

  // A preset ends now, or at the newest point when that is older than the
  // preset's span, so a sensor that stopped reporting still shows its data.
  async loadPreset() {
    if (!this.sensor) {
      return;
    }
    const latest = this.sensor.latest ? this.sensor.latest.timestamp : null;
    const untilMs = Math.max(latest ?? 0, Date.now());
    if (this.preset !== "all") {
      const spanMs = Number(this.preset) * 1000;
      const stopped = latest !== null && untilMs - latest > spanMs;
      const endMs = stopped ? latest : untilMs;
      await this.load(endMs - spanMs, endMs, true);
      return;
    }
    const firstMs = await this.findFirstTimestamp(untilMs);
    await this.load(firstMs ?? untilMs - 86400 * 1000, untilMs, true);
  }

  // A coarse request over all time finds the bucket where the data starts, and
  // a second one within that bucket narrows it to about a thousandth of it.
  async findFirstTimestamp(untilMs) {
    const sensor = this.sensor;
    let fromMs = EARLIEST_MS;
    let endMs = untilMs;
    let firstMs = null;
    for (let pass = 0; pass < 2; pass += 1) {
      const stepS = stepFor(fromMs, endMs, sensor.step_s);
      let body;
      try {
        body = await fetchPoints(sensor.series, fromMs, endMs, stepS);
      } catch (error) {
        this.showError(error);
        return firstMs;
      }
      const probe = new PointBuffer();
      probe.load(body.points, (ms) => ms);
      const found = probe.firstTimestamp();
      if (found === null || stepS === null) {
        return found ?? firstMs;
      }
      firstMs = found;
      fromMs = found;
      endMs = Math.min(untilMs, found + stepS * 1000);
    }
    return firstMs;
  }

  async load(fromMs, untilMs, following) {
    const loadId = ++this.loadId;
    const sensor = this.sensor;
    this.fromMs = fromMs;
    this.untilMs = untilMs;
    this.following = following;
    this.stepS = stepFor(fromMs, untilMs, sensor.step_s);
    this.pending = [];
    this.element.setAttribute("aria-busy", "true");

    let body;
    try {
      body = await fetchPoints(sensor.series, fromMs, untilMs, this.stepS);
    } catch (error) {
      if (loadId === this.loadId) {
        this.element.removeAttribute("aria-busy");
        this.pending = null;
        this.showError(error);
      }
      return;
    }
    if (loadId !== this.loadId) {
      return;
    }

    this.element.removeAttribute("aria-busy");
    this.buffer.load(body.points, toPlotlyTime);
    // Points that arrived live while the request was in flight.
    for (const [timestamp, value] of this.pending) {
      this.buffer.append(timestamp, value, toPlotlyTime);
    }
    this.pending = null;
    this.describe(body.points.length);
    this.scheduler.now();
  }

  /** Extend the chart with a live point of the shown series. */
  addPoint(series, timestamp, value) {
    if (!this.sensor || series !== this.sensor.series || !this.following) {
      return;
    }
    if (this.pending !== null) {
      this.pending.push([timestamp, value]);
      return;
    }
    // NOTE: a bucketed view gets raw live points appended at its end, so its
    // newest part is finer than the rest until the next fetch.
    if (!this.buffer.append(timestamp, value, toPlotlyTime)) {
      return;
    }
    if (timestamp > this.untilMs) {
      const span = this.untilMs - this.fromMs;
      this.untilMs = timestamp;
      if (this.preset !== "all") {
        this.fromMs = timestamp - span;
        this.buffer.trimBefore(this.fromMs);
      }
    }
    this.scheduler.request();
  }

  describe(count) {
    const from = formatDateTime(this.fromMs);
    const until = formatDateTime(this.untilMs);
    const step = this.stepS ? `, averaged over ${this.stepS} s` : "";
    this.note.textContent = `${count} points from ${from} to ${until}${step}.`;
  }

  showError(error) {
    console.error(error);
    this.note.textContent = `Could not load the history: ${error.message}`;
  }

  render() {
    const sensor = this.sensor;
    const unit = displayUnit(sensor.unit);
    const yTitle = unit ? `${sensor.label} (${unit})` : sensor.label;
    // Three missed steps break the line: a gateway outage shows as a gap.
    const stepMs = 1000 * (this.stepS ?? sensor.step_s ?? 0);
    const { x, y } =
      sensor.kind === "count" ? this.buffer : withGaps(this.buffer, 3 * stepMs);
    const trace = {
      name: escapeHtml(deviceName(sensor)),
      x,
      y,
      hovertemplate: `%{y:.4~g} ${escapeHtml(unit)}<extra></extra>`,
    };
    if (sensor.kind === "count") {
      Object.assign(trace, { type: "bar", marker: { color: "#2563eb" } });
    } else {
      Object.assign(trace, {
        type: "scatter",
        mode: "lines",
        line: { width: 1.6, color: "#2563eb" },
        connectgaps: false,
      });
    }
    const layout = baseLayout({
      showlegend: false,
      margin: { l: 56, r: 16, t: 8, b: 32 },
      xaxis: {
        type: "date",
        range: [toPlotlyTime(this.fromMs), toPlotlyTime(this.untilMs)],
        gridcolor: "#e5e7eb",
        linecolor: "#d1d5db",
        automargin: true,
      },
      yaxis: {
        title: { text: escapeHtml(yTitle) },
        gridcolor: "#e5e7eb",
        zerolinecolor: "#d1d5db",
        automargin: true,
        // Keep a y zoom while new points arrive. A new series or preset resets it.
        uirevision: `${sensor.series}|${this.lastPreset}`,
      },
    });
    // "autosize" makes a double click emit xaxis.autorange, which reloads the
    // preset. The default "reset+autosize" would emit the first range drawn.
    drawChart(this.element, [trace], layout, { doubleClick: "autosize" }).then(() =>
      this.listen(),
    );
  }

  // plotly.js attaches `.on` to the element only after the first draw.
  listen() {
    if (this.listening) {
      return;
    }
    this.listening = true;
    this.element.on("plotly_relayout", (event) => this.handleRelayout(event));
  }

  handleRelayout(event) {
    if (event["xaxis.autorange"]) {
      // A double click resets the zoom to the last preset.
      clearTimeout(this.zoomTimer);
      this.setPreset(this.lastPreset);
      return;
    }
    let start = event["xaxis.range[0]"];
    let end = event["xaxis.range[1]"];
    if (Array.isArray(event["xaxis.range"])) {
      [start, end] = event["xaxis.range"];
    }
    if (start === undefined || end === undefined) {
      return;
    }
    const fromMs = fromPlotlyTime(start);
    const untilMs = fromPlotlyTime(end);
    if (fromMs === null || untilMs === null || untilMs <= fromMs) {
      return;
    }
    this.preset = null;
    this.markPreset();
    const latest = this.sensor.latest ? this.sensor.latest.timestamp : Date.now();
    const tolerance = Math.max(60000, 0.02 * (untilMs - fromMs));
    const following = untilMs >= latest - tolerance;
    clearTimeout(this.zoomTimer);
    this.zoomTimer = setTimeout(
      () => this.load(fromMs, untilMs, following),
      ZOOM_DEBOUNCE_MS,
    );
  }
}
