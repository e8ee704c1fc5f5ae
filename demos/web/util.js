// Small helpers shared by the demo links.

export class Backoff {
  constructor(base = 250, cap = 4000) {
    Object.assign(this, { base, cap, n: 0 });
  }
  next() {
    return Math.round(Math.random() * Math.min(this.cap, this.base * 2 ** this.n++)); // full jitter
  }
  reset() {
    this.n = 0;
  }
}

export function url(base, path, params) {
  const u = new URL(path, base);
  for (const [k, v] of params) if (v !== null && v !== undefined) u.searchParams.append(k, String(v));
  return u.toString();
}

export const wsUrl = (http) => http.replace(/^http/, "ws");
export const auth = (c) => (c.token ? { authorization: `Bearer ${c.token}` } : {});
export const parse = (t) => {
  try {
    return JSON.parse(t);
  } catch {
    return null;
  }
};
