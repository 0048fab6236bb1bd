// Client of the citymesh REST API (/api/v1) and its Server-Sent Events stream.

const API = "/api/v1";

/** Maximum number of points one chart trace requests. The step is sized to stay under it. */
export const MAX_POINTS = 1000;

export class ApiError extends Error {
  constructor(url, status, detail) {
    super(`GET ${url} failed with HTTP ${status}: ${detail}`);
    this.url = url;
    this.status = status;
  }
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const detail = (await response.text()).slice(0, 200);
    throw new ApiError(url, response.status, detail);
  }
  return response.json();
}

/** Fetch every sensor with its metadata and latest point. */
export function fetchSensors() {
  return getJson(`${API}/sensors`);
}

/** Fetch every gateway with its online state. */
export function fetchGateways() {
  return getJson(`${API}/gateways`);
}

/**
 * Choose the bucket width in seconds so that [fromMs, untilMs] yields at most
 * MAX_POINTS points, or null when the raw points are few enough.
 */
export function stepFor(fromMs, untilMs, nominalStepS) {
  const spanS = Math.max(1, (untilMs - fromMs) / 1000);
  const nominal = nominalStepS && nominalStepS > 0 ? nominalStepS : 1;
  if (spanS / nominal <= MAX_POINTS) {
    return null;
  }
  return Math.ceil(spanS / MAX_POINTS);
}

/**
 * Fetch the points of `series` in [fromMs, untilMs], bucketed to `stepS` seconds
 * when given. Buckets are averaged, which keeps hourly counts in their unit.
 */
export function fetchPoints(series, fromMs, untilMs, stepS) {
  const params = new URLSearchParams({
    from: String(Math.floor(fromMs)),
    until: String(Math.ceil(untilMs)),
  });
  if (stepS) {
    params.set("step", String(stepS));
    params.set("agg", "avg");
  }
  return getJson(`${API}/series/${encodeURIComponent(series)}/points?${params}`);
}

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

/**
 * The live stream: wraps EventSource and reports state changes and events.
 *
 * EventSource retries a dropped connection by itself, but gives up for good on
 * an HTTP error or a wrong content type. In that case this class opens a new
 * one after a capped exponential delay with full jitter, so many open
 * dashboards do not reconnect in lockstep after a server restart.
 */
export class LiveStream {
  constructor({ onPoints, onGateway, onState }) {
    this.onPoints = onPoints;
    this.onGateway = onGateway;
    this.onState = onState;
    this.source = null;
    this.failures = 0;
    this.retryTimer = null;
    this.wasOpen = false;
  }

  start() {
    this.source = new EventSource(`${API}/stream`);
    this.source.addEventListener("open", () => {
      const reconnected = this.wasOpen || this.failures > 0;
      this.failures = 0;
      this.wasOpen = true;
      this.onState("open", reconnected);
    });
    this.source.addEventListener("error", () => this.handleError());
    this.source.addEventListener("points", (event) => {
      const data = parseEventData(event);
      if (data && Array.isArray(data.points)) {
        this.onPoints(data.points);
      }
    });
    this.source.addEventListener("gateway", (event) => {
      const data = parseEventData(event);
      if (data) {
        this.onGateway(data);
      }
    });
  }

  handleError() {
    if (this.source.readyState === EventSource.CONNECTING) {
      this.onState("reconnecting", false);
      return;
    }
    this.source.close();
    this.failures += 1;
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.failures);
    const delay = Math.round(Math.random() * ceiling);
    this.onState("closed", false, delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), delay);
  }
}

function parseEventData(event) {
  try {
    return JSON.parse(event.data);
  } catch (error) {
    console.warn("ignoring malformed %s event: %s", event.type, error);
    return null;
  }
}
