// The sensor table: latest value and age of every sensor, sortable and filterable.

import { deviceName, formatAge, formatDateTime, formatValue } from "./format.js";

const COLLATOR = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

// A sensor counts as stale once it missed this many nominal steps.
const STALE_STEPS = 3;

function compareText(a, b) {
  return COLLATOR.compare(a, b);
}

function latestValue(sensor) {
  return sensor.latest ? sensor.latest.value : null;
}

function latestTime(sensor) {
  return sensor.latest ? sensor.latest.timestamp : null;
}

// Missing values sort last in both directions.
function compareNullable(a, b, direction) {
  if (a === null && b === null) {
    return 0;
  }
  if (a === null) {
    return 1;
  }
  if (b === null) {
    return -1;
  }
  return direction * (a - b);
}

const SORT_KEYS = {
  site: (a, b) =>
    compareText(a.site, b.site) ||
    compareText(deviceName(a), deviceName(b)) ||
    compareText(a.label, b.label),
  device: (a, b) =>
    compareText(deviceName(a), deviceName(b)) ||
    compareText(a.site, b.site) ||
    compareText(a.label, b.label),
  sensor: (a, b) =>
    compareText(a.label, b.label) ||
    compareText(a.site, b.site) ||
    compareText(deviceName(a), deviceName(b)),
};

export class SensorTable {
  constructor({ table, filterInput, emptyNote, onSelect }) {
    this.table = table;
    this.body = table.tBodies[0];
    this.filterInput = filterInput;
    this.emptyNote = emptyNote;
    this.onSelect = onSelect;
    this.sensors = new Map();
    this.rows = new Map();
    this.sortKey = "site";
    this.sortDirection = 1;
    this.selected = null;
    this.offlineGateways = new Set();

    for (const button of table.tHead.querySelectorAll("button[data-sort]")) {
      button.addEventListener("click", () => this.sortBy(button.dataset.sort));
    }
    filterInput.addEventListener("input", () => this.applyFilter());
    this.body.addEventListener("click", (event) => this.selectFromEvent(event));
    this.body.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.selectFromEvent(event);
      }
    });
  }

  /** Replace the whole sensor list, keeping sort order, filter and selection. */
  setSensors(sensors) {
    this.sensors = new Map(sensors.map((sensor) => [sensor.series, sensor]));
    this.rows.clear();
    for (const sensor of sensors) {
      this.rows.set(sensor.series, this.buildRow(sensor));
    }
    this.emptyNote.hidden = sensors.length > 0;
    this.render();
  }

  /** Store a new point if it is the newest of its series, and return whether it was. */
  updateLatest(series, timestamp, value) {
    const sensor = this.sensors.get(series);
    if (!sensor) {
      return false;
    }
    if (sensor.latest && sensor.latest.timestamp > timestamp) {
      return false;
    }
    sensor.latest = { timestamp, value };
    const row = this.rows.get(series);
    this.fillValue(row, sensor);
    this.fillAge(row, sensor, Date.now());
    row.classList.remove("flash");
    // Reading offsetWidth restarts the CSS animation on a row updated twice in a row.
    void row.offsetWidth;
    row.classList.add("flash");
    return true;
  }

  /** Re-sort after values changed, but only when the order depends on them. */
  resortIfNeeded() {
    if (this.sortKey === "value" || this.sortKey === "age") {
      this.render();
    }
  }

  setOfflineGateways(keys) {
    this.offlineGateways = keys;
    for (const [series, row] of this.rows) {
      const sensor = this.sensors.get(series);
      row.classList.toggle("offline", keys.has(`${sensor.tenant}/${sensor.gateway}`));
    }
  }

  setSelected(series) {
    this.selected = series;
    for (const [key, row] of this.rows) {
      row.setAttribute("aria-selected", String(key === series));
    }
  }

  /** Refresh every age cell. The dashboard calls this once a second. */
  tick(nowMs) {
    for (const [series, row] of this.rows) {
      this.fillAge(row, this.sensors.get(series), nowMs);
    }
  }

  sortBy(key) {
    if (this.sortKey === key) {
      this.sortDirection = -this.sortDirection;
    } else {
      this.sortKey = key;
      this.sortDirection = 1;
    }
    for (const th of this.table.tHead.querySelectorAll("th")) {
      const button = th.querySelector("button[data-sort]");
      let state = "none";
      if (button && button.dataset.sort === key) {
        state = this.sortDirection === 1 ? "ascending" : "descending";
      }
      th.setAttribute("aria-sort", state);
    }
    this.render();
  }

  sortedSensors() {
    const sensors = [...this.sensors.values()];
    const direction = this.sortDirection;
    if (this.sortKey === "value") {
      sensors.sort((a, b) => compareNullable(latestValue(a), latestValue(b), direction));
    } else if (this.sortKey === "age") {
      // Ascending age puts the most recent reading first.
      sensors.sort((a, b) => compareNullable(latestTime(b), latestTime(a), direction));
    } else {
      const compare = SORT_KEYS[this.sortKey];
      sensors.sort((a, b) => direction * compare(a, b));
    }
    return sensors;
  }

  render() {
    const grouped = this.sortKey === "site" || this.sortKey === "device";
    const fragment = document.createDocumentFragment();
    let previousGroup = null;
    for (const sensor of this.sortedSensors()) {
      const row = this.rows.get(sensor.series);
      const group = `${sensor.site}\u0000${sensor.device}`;
      const repeat = grouped && group === previousGroup;
      row.classList.toggle("group-start", grouped && !repeat);
      row.classList.toggle("repeat", repeat);
      previousGroup = group;
      fragment.append(row);
    }
    this.body.replaceChildren(fragment);
    this.applyFilter();
  }

  applyFilter() {
    const words = this.filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const [series, row] of this.rows) {
      const sensor = this.sensors.get(series);
      const haystack = [
        sensor.site,
        sensor.gateway,
        sensor.device,
        deviceName(sensor),
        sensor.label,
        sensor.quantity,
      ]
        .join(" ")
        .toLowerCase();
      row.hidden = !words.every((word) => haystack.includes(word));
    }
  }

  buildRow(sensor) {
    const row = document.createElement("tr");
    row.dataset.series = sensor.series;
    row.tabIndex = 0;
    row.setAttribute("aria-selected", String(sensor.series === this.selected));
    row.title = sensor.series;

    const site = document.createElement("td");
    site.className = "col-site";
    site.textContent = sensor.site;

    const device = document.createElement("th");
    device.scope = "row";
    device.className = "col-device";
    device.textContent = deviceName(sensor);

    const label = document.createElement("td");
    label.className = "col-sensor";
    label.textContent = sensor.label || sensor.quantity;

    const value = document.createElement("td");
    value.className = "col-value";

    const age = document.createElement("td");
    age.className = "col-age";
    const time = document.createElement("time");
    age.append(time);

    row.append(site, device, label, value, age);
    this.fillValue(row, sensor);
    this.fillAge(row, sensor, Date.now());
    return row;
  }

  fillValue(row, sensor) {
    const cell = row.cells[3];
    cell.textContent = formatValue(latestValue(sensor), sensor.unit, sensor.kind);
  }

  fillAge(row, sensor, nowMs) {
    const time = row.cells[4].firstElementChild;
    const timestamp = latestTime(sensor);
    time.textContent = formatAge(timestamp, nowMs);
    if (timestamp === null) {
      time.removeAttribute("datetime");
      time.title = "";
      return;
    }
    time.dateTime = new Date(timestamp).toISOString();
    time.title = formatDateTime(timestamp);
    const stepMs = (sensor.step_s || 60) * 1000;
    row.classList.toggle("stale", nowMs - timestamp > STALE_STEPS * stepMs);
  }

  selectFromEvent(event) {
    const row = event.target.closest("tr[data-series]");
    if (row && this.body.contains(row)) {
      this.setSelected(row.dataset.series);
      this.onSelect(row.dataset.series);
    }
  }
}
