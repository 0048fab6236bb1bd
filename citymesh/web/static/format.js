// Formatting of values, units, ages and times for the dashboard.

// plotly.js 4.1 decodes numeric entities but only a few named ones (no &quot;).
const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;" };

/**
 * Escape text for plotly.js, which renders trace names and titles as a subset
 * of HTML. The DOM code itself only ever assigns textContent.
 */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]);
}

/** Format a reading with a precision that suits its magnitude. */
export function formatNumber(value, kind) {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return "–";
  }
  const magnitude = Math.abs(value);
  let digits = 2;
  if (kind === "count" || magnitude >= 100) {
    digits = 0;
  } else if (magnitude >= 10) {
    digits = 1;
  }
  return value.toLocaleString(undefined, {
    minimumFractionDigits: 0,
    maximumFractionDigits: digits,
  });
}

/** Format a unit for display next to a number: "1/h" reads as "/h". */
export function displayUnit(unit) {
  if (!unit) {
    return "";
  }
  return unit.startsWith("1/") ? unit.slice(1) : unit;
}

/** Return the y-axis title for a unit, empty for rates such as "1/h" that the panel title names. */
export function axisTitle(unit) {
  return unit && !unit.startsWith("1/") ? unit : "";
}

/** Format a value with its unit, e.g. "612 ppm", "21.4 °C", "35/h". */
export function formatValue(value, unit, kind) {
  const number = formatNumber(value, kind);
  const shown = displayUnit(unit);
  if (!shown || number === "–") {
    return number;
  }
  return shown.startsWith("/") ? `${number}${shown}` : `${number} ${shown}`;
}

/** Format the time since `timestampMs` as "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAge(timestampMs, nowMs) {
  if (timestampMs === null || timestampMs === undefined) {
    return "never";
  }
  const seconds = Math.round((nowMs - timestampMs) / 1000);
  if (seconds < 0) {
    // The gateway clock is ahead of the browser's. Show that rather than hide it.
    return "in the future";
  }
  if (seconds < 120) {
    return `${seconds} s ago`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) {
    return `${minutes} min ago`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return `${hours} h ago`;
  }
  return `${Math.floor(hours / 24)} d ago`;
}

/** Format an epoch-ms timestamp as a full date and time in the browser's zone. */
export function formatDateTime(timestampMs) {
  return new Date(timestampMs).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
}

function pad(number, width = 2) {
  return String(number).padStart(width, "0");
}

/**
 * Convert epoch ms to the wall-clock string plotly.js puts on a date axis.
 *
 * plotly.js has no time zones and shows numbers and ISO strings as given, so
 * the local wall-clock time is written out to make the axis read local time.
 */
export function toPlotlyTime(timestampMs) {
  const d = new Date(timestampMs);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    pad(d.getMilliseconds(), 3)
  );
}

const PLOTLY_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?$/;

/** Convert a plotly.js axis value (local wall-clock string or ms) back to epoch ms. */
export function fromPlotlyTime(value) {
  if (typeof value === "number") {
    return fromPlotlyTime(toPlotlyTimeUtc(value));
  }
  const match = PLOTLY_TIME_RE.exec(String(value).trim());
  if (!match) {
    return null;
  }
  const [, year, month, day, hour, minute, second, fraction] = match;
  const millis = fraction ? Math.round(Number(`0.${fraction}`) * 1000) : 0;
  return new Date(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour ?? 0),
    Number(minute ?? 0),
    Number(second ?? 0),
    millis,
  ).getTime();
}

// plotly.js reads a bare number on a date axis as UTC wall-clock ms.
function toPlotlyTimeUtc(wallClockMs) {
  return new Date(wallClockMs).toISOString().replace("T", " ").replace("Z", "");
}

/**
 * Build a display name per series for chart legends: the device name, with
 * site and gateway added where two devices would otherwise share a name.
 */
export function legendNames(sensors) {
  const counts = new Map();
  for (const sensor of sensors) {
    const name = deviceName(sensor);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  const names = new Map();
  for (const sensor of sensors) {
    const name = deviceName(sensor);
    const unique = counts.get(name) === 1 ? name : `${name} (${sensor.site}/${sensor.gateway})`;
    names.set(sensor.series, unique);
  }
  return names;
}

/** Return the human name of a sensor's device, falling back to its id. */
export function deviceName(sensor) {
  const name = (sensor.device_name ?? "").trim();
  return name || sensor.device;
}
