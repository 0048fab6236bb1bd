// The gateway panel: per gateway, its link state and store-and-forward counters.

import { formatAge, formatDateTime } from "./format.js";

const COLLATOR = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function count(value) {
  return Number.isFinite(value) ? value.toLocaleString() : "–";
}

function seconds(value) {
  if (!Number.isFinite(value)) {
    return "–";
  }
  if (value < 120) {
    return `${Math.round(value)} s`;
  }
  if (value < 7200) {
    return `${Math.round(value / 60)} min`;
  }
  return `${(value / 3600).toFixed(1)} h`;
}

function skew(status) {
  if (!Number.isFinite(status.clock_skew_ms)) {
    return "–";
  }
  const text = `${status.clock_skew_ms >= 0 ? "+" : ""}${(status.clock_skew_ms / 1000).toFixed(1)} s`;
  return status.clock_skewed ? `${text} (clock off)` : text;
}

// Columns: header, cell text from (gateway, status, now) and a class name.
const COLUMNS = [
  ["Gateway", (g) => `${g.tenant}/${g.gateway}`, "col-name"],
  ["State", (g) => (g.online ? "online" : "offline"), "col-state"],
  ["Backlog", (g, s) => count(s.backlog), "col-backlog"],
  ["Oldest buffered", (g, s) => (s.backlog ? seconds(s.backlog_oldest_age_s) : "–"), "col-oldest"],
  ["Dropped", (g, s) => count(s.readings_dropped), "col-dropped"],
  ["Reconnects", (g, s) => count(s.reconnects), "col-reconnects"],
  ["Last ack", (g, s, now) => (s.last_ack_ms ? formatAge(s.last_ack_ms, now) : "never"), "col-ack"],
  ["Clock", (g, s) => skew(s), "col-clock"],
];

export class GatewayPanel {
  constructor({ table, emptyNote }) {
    this.table = table;
    this.body = table.tBodies[0];
    this.emptyNote = emptyNote;
    this.gateways = [];
    const head = table.tHead.rows[0];
    for (const [title] of COLUMNS) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = title;
      head.append(th);
    }
  }

  /** Show `gateways`, each with its last status report (may be empty). */
  setGateways(gateways) {
    this.gateways = [...gateways].sort(
      (a, b) => COLLATOR.compare(a.tenant, b.tenant) || COLLATOR.compare(a.gateway, b.gateway),
    );
    this.render(Date.now());
  }

  render(now) {
    this.emptyNote.hidden = this.gateways.length > 0;
    const rows = this.gateways.map((gateway) => {
      const status = gateway.status ?? {};
      const row = document.createElement("tr");
      row.dataset.gateway = `${gateway.tenant}/${gateway.gateway}`;
      row.dataset.online = String(Boolean(gateway.online));
      row.dataset.clockSkewed = String(Boolean(status.clock_skewed));
      for (const [, cell, className] of COLUMNS) {
        const td = document.createElement("td");
        td.className = className;
        td.textContent = cell(gateway, status, now);
        row.append(td);
      }
      if (status.last_ack_ms) {
        row.title = `Last acknowledgement ${formatDateTime(status.last_ack_ms)}`;
      }
      return row;
    });
    this.body.replaceChildren(...rows);
  }
}
