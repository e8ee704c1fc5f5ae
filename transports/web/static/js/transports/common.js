// Shared by the connectors: reconnect delays and URL building.

/** Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): spreads a crowd of reconnecting browsers instead of synchronising them. */
export class Backoff {
  constructor(baseMs = 250, capMs = 5000) {
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.attempt = 0;
  }

  next() {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(Math.random() * ceiling);
  }

  reset() {
    this.attempt = 0;
  }
}

/** `url` with the non-null entries of `params` appended as a query string. */
export function withQuery(url, params) {
  const u = new URL(url, location.href);
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined) u.searchParams.set(k, String(v));
  }
  return u.toString();
}

/** http(s)://host/path -> ws(s)://host/path */
export function toWs(url) {
  const u = new URL(url, location.href);
  // The server already gives wss: URLs under TLS; only http(s) needs mapping.
  u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  return u.toString();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
