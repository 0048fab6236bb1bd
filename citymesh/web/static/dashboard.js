// Entry point of the dashboard: loads sensors and gateways, wires the live stream.

import { LiveStream, fetchGateways, fetchSensors } from "./api.js";
import { GroupChart } from "./group_chart.js";
import { HistoryChart } from "./history_chart.js";
import { formatDateTime } from "./format.js";
import { GatewayPanel } from "./gateway_panel.js";
import { SensorTable } from "./sensor_table.js";

// A new series shows up in a points event before the sensor list has it.
// One reload after this delay covers a burst of new series.
const SENSOR_RELOAD_DELAY_MS = 1000;

const byId = (id) => document.getElementById(id);

const state = {
  sensors: new Map(),
  gateways: new Map(),
  selected: null,
  sensorReloadTimer: null,
  lastUpdateMs: null,
};

const table = new SensorTable({
  table: byId("sensor-table"),
  filterInput: byId("sensor-filter"),
  emptyNote: byId("sensors-empty"),
  onSelect: (series) => selectSensor(series),
});

const gatewayPanel = new GatewayPanel({
  table: byId("gateway-table"),
  emptyNote: byId("gateway-empty"),
});

const history = new HistoryChart({
  element: byId("history-chart"),
  title: byId("history-title"),
  note: byId("history-note"),
  rangeGroup: document.querySelector(".range-buttons"),
});

const groupCharts = [
  new GroupChart({
    element: byId("co2-chart"),
    emptyNote: byId("co2-empty"),
    quantity: "co2",
    spanS: 86400,
    kind: "lines",
  }),
  new GroupChart({
    element: byId("vehicles-chart"),
    emptyNote: byId("vehicles-empty"),
    quantity: "vehicles",
    spanS: 2 * 86400,
    kind: "bars",
  }),
  new GroupChart({
    element: byId("pedestrians-chart"),
    emptyNote: byId("pedestrians-empty"),
    quantity: "pedestrians",
    spanS: 2 * 86400,
    kind: "bars",
  }),
];

function gatewayKey(tenant, gateway) {
  return `${tenant}/${gateway}`;
}

function selectSensor(series) {
  const sensor = state.sensors.get(series);
  if (!sensor) {
    return;
  }
  state.selected = series;
  table.setSelected(series);
  history.show(sensor);
}

// The first CO2 sensor in table order, else the first sensor at all.
function defaultSensor(sensors) {
  const rows = [...document.querySelectorAll("#sensor-rows tr[data-series]")];
  const ordered = rows.map((row) => state.sensors.get(row.dataset.series));
  return ordered.find((sensor) => sensor.quantity === "co2") ?? ordered[0] ?? sensors[0];
}

async function loadSensors(forceCharts = false) {
  const sensors = await fetchSensors();
  state.sensors = new Map(sensors.map((sensor) => [sensor.series, sensor]));
  table.setSensors(sensors);
  table.setOfflineGateways(offlineGateways());
  await Promise.all(groupCharts.map((chart) => chart.setSensors(sensors, forceCharts)));
  if (state.selected && state.sensors.has(state.selected)) {
    table.setSelected(state.selected);
    history.sensor = state.sensors.get(state.selected);
  } else if (sensors.length > 0) {
    selectSensor(defaultSensor(sensors).series);
  }
}

function scheduleSensorReload() {
  if (state.sensorReloadTimer !== null) {
    return;
  }
  state.sensorReloadTimer = setTimeout(() => {
    state.sensorReloadTimer = null;
    loadSensors().catch((error) => console.error(error));
  }, SENSOR_RELOAD_DELAY_MS);
}

function handlePoints(points) {
  let unknown = false;
  for (const point of points) {
    const { series, timestamp, value } = point;
    if (typeof series !== "string" || typeof timestamp !== "number") {
      continue;
    }
    if (!state.sensors.has(series)) {
      unknown = true;
      continue;
    }
    table.updateLatest(series, timestamp, value);
    history.addPoint(series, timestamp, value);
    for (const chart of groupCharts) {
      chart.addPoint(series, timestamp, value);
    }
  }
  table.resortIfNeeded();
  if (unknown) {
    scheduleSensorReload();
  }
  state.lastUpdateMs = Date.now();
}

function offlineGateways() {
  const offline = new Set();
  for (const [key, gateway] of state.gateways) {
    if (!gateway.online) {
      offline.add(key);
    }
  }
  return offline;
}

function renderGateways() {
  const all = [...state.gateways.values()];
  const online = all.filter((gateway) => gateway.online);
  const element = byId("gateways");
  element.textContent = `Gateways online: ${online.length} of ${all.length}`;
  const offline = all.filter((gateway) => !gateway.online).map((g) => g.gateway);
  element.title = offline.length ? `Offline: ${offline.sort().join(", ")}` : "";
  element.dataset.allOnline = String(offline.length === 0);
  table.setOfflineGateways(offlineGateways());
  gatewayPanel.setGateways(all);
}

function handleGateway(event) {
  const key = gatewayKey(event.tenant, event.gateway);
  const known = state.gateways.get(key) ?? { tenant: event.tenant, gateway: event.gateway };
  const update = { online: event.online, last_seen: event.last_seen };
  if (event.status) {
    update.status = event.status;
  }
  state.gateways.set(key, { ...known, ...update });
  renderGateways();
}

async function loadGateways() {
  const gateways = await fetchGateways();
  state.gateways = new Map(gateways.map((g) => [gatewayKey(g.tenant, g.gateway), g]));
  renderGateways();
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  open: "Live",
  reconnecting: "Reconnecting…",
  closed: "Disconnected, retrying…",
};

function handleStreamState(streamState, reconnected) {
  const element = byId("connection");
  element.dataset.state = streamState;
  byId("connection-text").textContent = CONNECTION_TEXT[streamState];
  if (streamState === "open" && reconnected) {
    // Points written while the stream was down never reach this page, so reload.
    refreshAll(true);
  }
}

function refreshAll(forceCharts) {
  Promise.all([loadSensors(forceCharts), loadGateways()])
    .then(() => history.refresh())
    .catch((error) => console.error(error));
}

function tick() {
  const now = Date.now();
  table.tick(now);
  const element = byId("last-update");
  element.textContent = state.lastUpdateMs
    ? `Last data ${formatDateTime(state.lastUpdateMs)}`
    : "";
}

async function start() {
  const stream = new LiveStream({
    onPoints: handlePoints,
    onGateway: handleGateway,
    onState: handleStreamState,
  });
  // Open the stream first so no point written during the initial load is missed.
  // The table ignores points older than the ones the load returns.
  stream.start();
  const results = await Promise.allSettled([loadSensors(), loadGateways()]);
  for (const result of results) {
    if (result.status === "rejected") {
      console.error(result.reason);
      byId("connection-text").textContent = `Failed to load: ${result.reason.message}`;
    }
  }
  setInterval(tick, 1000);
  document.body.dataset.ready = "true";
}

start();
