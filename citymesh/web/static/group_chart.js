// Overview chart of every sensor of some quantities: one trace per device.

import { fetchPoints, stepFor } from "./api.js";
import { PointBuffer, RenderScheduler, baseLayout, drawChart } from "./chart_base.js";
import { axisTitle, displayUnit, escapeHtml, legendNames, toPlotlyTime } from "./format.js";

export class GroupChart {
  /**
   * `quantity` selects the series, `spanS` is the window shown, ending at the
   * newest point of the group; `kind` "lines" or "bars" sets the trace type.
   */
  constructor({ element, emptyNote, quantity, spanS, kind }) {
    this.element = element;
    this.emptyNote = emptyNote;
    this.quantity = quantity;
    this.spanMs = spanS * 1000;
    this.kind = kind;
    this.sensors = [];
    this.names = new Map();
    this.buffers = new Map();
    this.signature = "";
    this.fromMs = 0;
    this.loadId = 0;
    // Live points buffered while a load is in flight, else null.
    this.pending = null;
    this.scheduler = new RenderScheduler(() => this.render(), 500);
  }

  /** Take the current sensor list and reload when the set of matching series changed. */
  setSensors(allSensors, force = false) {
    const sensors = allSensors.filter((sensor) => sensor.quantity === this.quantity);
    const signature = sensors
      .map((sensor) => `${sensor.series}=${sensor.device_name}`)
      .sort()
      .join("\n");
    if (!force && signature === this.signature) {
      return Promise.resolve();
    }
    this.signature = signature;
    this.names = legendNames(sensors);
    this.sensors = [...sensors].sort((a, b) =>
      this.names.get(a.series).localeCompare(this.names.get(b.series), undefined, {
        numeric: true,
      }),
    );
    return this.load();
  }

  async load() {
    const loadId = ++this.loadId;
    this.emptyNote.hidden = this.sensors.length > 0;
    this.element.hidden = this.sensors.length === 0;
    if (this.sensors.length === 0) {
      this.buffers.clear();
      return;
    }

    const latest = this.sensors
      .map((sensor) => (sensor.latest ? sensor.latest.timestamp : 0))
      .reduce((a, b) => Math.max(a, b), 0);
    const now = Date.now();
    // Anchor at now unless the whole group stopped before the window.
    const untilMs = latest > 0 && now - latest > this.spanMs ? latest : now;
    const fromMs = untilMs - this.spanMs;
    this.pending = [];
    const results = await Promise.allSettled(
      this.sensors.map((sensor) => {
        // A registered sensor without any reading yet has no series to fetch.
        if (!sensor.latest) {
          return Promise.resolve({ points: [] });
        }
        const stepS = stepFor(fromMs, untilMs, sensor.step_s);
        return fetchPoints(sensor.series, fromMs, untilMs, stepS);
      }),
    );
    if (loadId !== this.loadId) {
      return;
    }

    this.fromMs = fromMs;
    const buffers = new Map();
    results.forEach((result, index) => {
      const buffer = new PointBuffer();
      if (result.status === "fulfilled") {
        buffer.load(result.value.points, toPlotlyTime);
      } else {
        console.error(result.reason);
      }
      buffers.set(this.sensors[index].series, buffer);
    });
    this.buffers = buffers;
    // Points that arrived live while the requests were in flight.
    const pending = this.pending;
    this.pending = null;
    for (const [series, timestamp, value] of pending) {
      this.addPoint(series, timestamp, value);
    }
    this.scheduler.now();
  }

  /** Extend the trace of `series` with a live point, if it belongs to this chart. */
  addPoint(series, timestamp, value) {
    if (this.pending !== null) {
      this.pending.push([series, timestamp, value]);
      return;
    }
    const buffer = this.buffers.get(series);
    if (!buffer || !buffer.append(timestamp, value, toPlotlyTime)) {
      return;
    }
    if (timestamp - this.spanMs > this.fromMs) {
      this.fromMs = timestamp - this.spanMs;
      for (const other of this.buffers.values()) {
        other.trimBefore(this.fromMs);
      }
    }
    this.scheduler.request();
  }

  /** Return the number of traces drawn. */
  traceCount() {
    return this.element.data ? this.element.data.length : 0;
  }

  render() {
    if (this.sensors.length === 0) {
      return;
    }
    const unit = displayUnit(this.sensors[0].unit);
    const traces = this.sensors.map((sensor) => {
      const buffer = this.buffers.get(sensor.series) ?? new PointBuffer();
      const name = escapeHtml(this.names.get(sensor.series));
      const trace = {
        name,
        x: buffer.x,
        y: buffer.y,
        hovertemplate: `%{y:.4~g} ${escapeHtml(unit)}`,
      };
      if (this.kind === "bars") {
        return { ...trace, type: "bar" };
      }
      return { ...trace, type: "scatter", mode: "lines", line: { width: 1.6 } };
    });
    const layout = baseLayout({
      barmode: "group",
      bargap: 0.15,
      yaxis: {
        title: { text: escapeHtml(axisTitle(this.sensors[0].unit)) },
        gridcolor: "#e5e7eb",
        zerolinecolor: "#d1d5db",
        automargin: true,
        rangemode: this.kind === "bars" ? "tozero" : "normal",
      },
      // Keep legend toggles and zoom while live points arrive.
      uirevision: this.signature,
    });
    drawChart(this.element, traces, layout);
  }
}
