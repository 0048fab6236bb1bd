// Mesh topology page: the routing tree of a gateway's IQRF network, drawn with plotly.js.

import { PLOTLY_CONFIG, baseLayout } from "./chart_base.js";
import { escapeHtml, formatDateTime } from "./format.js";

/* global Plotly */

const API = "/api/v1";
// The gateway reports its map when it changes; a poll picks that up.
const REFRESH_MS = 10000;
// Link quality classes: at least `min`, drawn in `color`.
const LINK_CLASSES = [
  { name: "good link (≥ 0.8)", min: 0.8, color: "#16a34a" },
  { name: "fair link (≥ 0.5)", min: 0.5, color: "#d97706" },
  { name: "weak link (< 0.5)", min: 0, color: "#dc2626" },
  { name: "link unknown", min: null, color: "#9ca3af" },
];
const ROLES = [
  { role: "coordinator", name: "coordinator", symbol: "square", color: "#1f2937", size: 18 },
  { role: "router", name: "routers", symbol: "diamond", color: "#2563eb", size: 12 },
  { role: "sensor", name: "sensor nodes", symbol: "circle", color: "#9333ea", size: 12 },
];

const byId = (id) => document.getElementById(id);

const state = { gateways: [], selected: null, timer: null };

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const detail = (await response.text()).slice(0, 200);
    throw new Error(`GET ${url} failed with HTTP ${response.status}: ${detail}`);
  }
  return response.json();
}

/**
 * Place nodes in columns by hops and order each column by its parents' rows,
 * so a subtree stays together. Nodes without a route go to a last column.
 */
export function treeLayout(nodes) {
  const byAddress = new Map(nodes.map((node) => [node.address, node]));
  const depth = (node) => (node.hops === undefined || node.hops === null ? null : node.hops);
  const maxHops = Math.max(0, ...nodes.map((n) => depth(n) ?? 0));
  const columns = new Map();
  for (const node of nodes) {
    const column = depth(node) ?? maxHops + 1;
    if (!columns.has(column)) {
      columns.set(column, []);
    }
    columns.get(column).push(node);
  }
  const positions = new Map();
  for (const column of [...columns.keys()].sort((a, b) => a - b)) {
    const members = columns.get(column);
    members.sort((a, b) => {
      const pa = positions.get(a.parent)?.y ?? 0;
      const pb = positions.get(b.parent)?.y ?? 0;
      return pa - pb || a.address - b.address;
    });
    const offset = (members.length - 1) / 2;
    members.forEach((node, index) => positions.set(node.address, { x: column, y: index - offset }));
  }
  return { positions, byAddress };
}

function linkClass(quality) {
  if (quality === undefined || quality === null) {
    return LINK_CLASSES[3];
  }
  return LINK_CLASSES.find((c) => c.min !== null && quality >= c.min);
}

function hoverText(node) {
  const parts = [
    `<b>node ${node.address}</b> (${escapeHtml(node.role)})`,
    node.mid !== undefined ? `MID ${node.mid.toString(16).toUpperCase().padStart(8, "0")}` : null,
    node.hops !== undefined ? `hops ${node.hops}, parent ${node.parent ?? "–"}` : "no route",
    node.link_quality !== undefined ? `link quality ${node.link_quality}` : null,
    node.quantities?.length ? escapeHtml(node.quantities.join(", ")) : null,
    node.online ? "online" : "OFFLINE",
  ];
  return parts.filter(Boolean).join("<br>");
}

/** Build the plotly traces of a map: links per quality class, nodes per role, offline nodes. */
export function topologyTraces(nodes) {
  const { positions, byAddress } = treeLayout(nodes);
  const traces = [];
  for (const linkStyle of LINK_CLASSES) {
    const x = [];
    const y = [];
    for (const node of nodes) {
      const parent = byAddress.get(node.parent);
      if (node.address === 0 || !parent || linkClass(node.link_quality) !== linkStyle) {
        continue;
      }
      const from = positions.get(parent.address);
      const to = positions.get(node.address);
      x.push(from.x, to.x, null);
      y.push(from.y, to.y, null);
    }
    if (x.length) {
      traces.push({
        type: "scatter",
        mode: "lines",
        name: linkStyle.name,
        x,
        y,
        line: { color: linkStyle.color, width: 2 },
        hoverinfo: "skip",
      });
    }
  }
  for (const role of ROLES) {
    const members = nodes.filter((n) => n.role === role.role && n.online);
    if (members.length) {
      traces.push(nodeTrace(members, positions, role.name, role.symbol, role.color, role.size));
    }
  }
  const offline = nodes.filter((n) => !n.online);
  if (offline.length) {
    traces.push(nodeTrace(offline, positions, "offline", "x", "#6b7280", 14));
  }
  return traces;
}

function nodeTrace(members, positions, name, symbol, color, size) {
  return {
    type: "scatter",
    mode: "markers+text",
    name,
    x: members.map((n) => positions.get(n.address).x),
    y: members.map((n) => positions.get(n.address).y),
    text: members.map((n) => String(n.address)),
    textposition: "top center",
    hovertext: members.map(hoverText),
    hoverinfo: "text",
    customdata: members.map((n) => n.address),
    marker: { symbol, color, size, line: { color: "#ffffff", width: 1 } },
  };
}

function renderTable(nodes) {
  const body = byId("node-rows");
  body.replaceChildren();
  for (const node of nodes) {
    const row = document.createElement("tr");
    row.dataset.address = String(node.address);
    const cells = [
      String(node.address),
      node.role,
      node.mid !== undefined ? node.mid.toString(16).toUpperCase().padStart(8, "0") : "–",
      node.parent ?? "–",
      node.hops ?? "–",
      node.link_quality ?? "–",
      (node.quantities || []).join(", ") || "–",
      node.last_seen_ms ? formatDateTime(node.last_seen_ms) : "–",
      node.online ? "online" : "offline",
    ];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    if (!node.online) {
      row.classList.add("offline");
    }
    body.append(row);
  }
}

async function showGateway(key) {
  const gateway = state.gateways.find((g) => `${g.tenant}/${g.gateway}` === key);
  if (!gateway) {
    return;
  }
  state.selected = key;
  const url = `${API}/gateways/${encodeURIComponent(gateway.tenant)}/${encodeURIComponent(gateway.gateway)}/topology`;
  const topology = await getJson(url);
  const nodes = topology.nodes;
  const online = nodes.filter((n) => n.online).length;
  byId("topology-summary").textContent =
    `${nodes.length} nodes, ${online} online, map of ${formatDateTime(topology.sent_ms)}`;
  const layout = baseLayout({
    hovermode: "closest",
    xaxis: { title: { text: "hops from the coordinator" }, dtick: 1, zeroline: false },
    yaxis: { visible: false },
    height: Math.max(420, 26 * Math.max(...countPerColumn(nodes))),
  });
  await Plotly.react(byId("topology-chart"), topologyTraces(nodes), layout, PLOTLY_CONFIG);
  renderTable(nodes);
  document.body.dataset.topologyReady = key;
}

function countPerColumn(nodes) {
  const counts = new Map();
  for (const node of nodes) {
    counts.set(node.hops ?? -1, (counts.get(node.hops ?? -1) || 0) + 1);
  }
  return [1, ...counts.values()];
}

async function refresh() {
  try {
    state.gateways = await getJson(`${API}/topology`);
    const select = byId("gateway-select");
    const keys = state.gateways.map((g) => `${g.tenant}/${g.gateway}`);
    if (select.options.length !== keys.length) {
      select.replaceChildren(
        ...keys.map((key) => {
          const option = document.createElement("option");
          option.value = key;
          option.textContent = key;
          return option;
        }),
      );
    }
    byId("topology-empty").hidden = keys.length > 0;
    const key = keys.includes(state.selected) ? state.selected : keys[0];
    if (key) {
      select.value = key;
      await showGateway(key);
    }
  } catch (error) {
    byId("topology-summary").textContent = `Failed to load: ${error.message}`;
  }
}

function start() {
  byId("gateway-select").addEventListener("change", (event) => {
    showGateway(event.target.value).catch((error) => {
      byId("topology-summary").textContent = `Failed to load: ${error.message}`;
    });
  });
  refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
}

if (typeof document !== "undefined" && byId("topology-chart")) {
  start();
}
