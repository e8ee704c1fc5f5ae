// A small browser client for channels (docs/wire.md, "Channels"): one cursor per channel,
// subscribe/unsubscribe at run time, publish with an ack, reconnect with resume.
//
//   import { Channels } from "/js/channels.js";
//   const hub = new Channels({ transport: "ws", onEvent: (e) => console.log(e) });
//   hub.subscribe("chat:lobby");
//   const ack = await hub.publish("chat:lobby", { text: "hi" });   // {channel, epoch, seq, id}
//
// `transport: "ws"` keeps one WebSocket: frames name their channel, subscribe/publish are
// frames, and a reconnect sends every channel's cursor as the `cursor` token. `"sse"` uses
// an EventSource on `/sse?channel=…` (the browser's own reconnect resumes every channel by
// Last-Event-ID) and publishes with `POST /api/channels/{channel}/messages`.
// A publish carries a client message id; after a reconnect an unanswered publish is sent
// again with the same id, and the server answers with the first attempt's ack.
// Events: {type: "message", channel, message} | "gap" {channel, after, first} |
// "reset" {channel, epoch} | "join"/"leave" {channel, client, user} | "state" {state}.

import { Backoff, parse } from "./transports/common.js";

const DEFAULT = "default";

function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cursor token: "SEQ.EPOCH" (or "" for live only) per channel, joined by ",". */
export function cursorToken(cursors) {
  return [...cursors.values()]
    .map((c) => (c === null ? "" : c.epoch ? `${c.seq}.${c.epoch}` : String(c.seq)))
    .join(",");
}

export class Channels {
  constructor({ base = location.origin, transport = "ws", token = null, onEvent = () => {} } = {}) {
    this.base = base;
    this.transport = transport;
    this.token = token;
    this.onEvent = onEvent;
    this.cursors = new Map(); // channel -> {seq, epoch} | null (live only, no message yet)
    this.pending = new Map(); // id -> {frame, resolve, reject}
    this.stats = { delivered: 0, duplicates: 0, gaps: 0, connects: 0 };
    this.backoff = new Backoff(200, 5000);
    this.conn = null;
    this.closed = false;
    this.timer = null;
  }

  subscribe(channel, cursor = null) {
    if (this.cursors.has(channel)) return;
    this.cursors.set(channel, cursor);
    if (this.transport === "ws" && this.conn?.readyState === WebSocket.OPEN) {
      const c = cursor ?? { seq: null, epoch: null };
      this._send({ type: "subscribe", channel, after: c.seq, epoch: c.epoch });
    } else {
      this._reopen(0);
    }
  }

  unsubscribe(channel) {
    if (!this.cursors.delete(channel)) return;
    if (this.transport === "ws" && this.conn?.readyState === WebSocket.OPEN) {
      this._send({ type: "unsubscribe", channel });
    } else {
      this._reopen(0);
    }
  }

  publish(channel, data, id = newId()) {
    const frame = { type: "publish", channel, data, id };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { frame, resolve, reject });
      if (this.transport === "ws") {
        if (!this.conn) this._reopen(0);
        else if (this.conn.readyState === WebSocket.OPEN) this._send(frame);
      } else {
        this._post(frame);
      }
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this._drop();
  }

  // ---- receiving: the one place that dedupes, detects gaps and follows epochs -----------
  _frame(obj) {
    if (obj === null || typeof obj !== "object") return;
    if (!("type" in obj) && "seq" in obj) { // "type" first: an ack carries a seq too
      const channel = obj.channel ?? DEFAULT;
      if (!this.cursors.has(channel)) return; // not subscribed (the server never sends it)
      const cursor = this.cursors.get(channel);
      if (cursor !== null && obj.seq <= cursor.seq) {
        this.stats.duplicates += 1;
        return;
      }
      if (cursor !== null && obj.seq > cursor.seq + 1) {
        this.stats.gaps += 1;
        this.onEvent({ type: "gap", channel, after: cursor.seq, first: obj.seq });
      }
      this.cursors.set(channel, { seq: obj.seq, epoch: cursor?.epoch ?? null });
      this.stats.delivered += 1;
      this.onEvent({ type: "message", channel, message: obj });
      return;
    }
    const channel = obj.channel ?? DEFAULT;
    const cursor = this.cursors.get(channel);
    switch (obj.type) {
      case "hello":
        if (!this.cursors.has(channel)) return;
        this.cursors.set(
          channel,
          cursor === null ? { seq: obj.last_seq, epoch: obj.epoch } : { ...cursor, epoch: obj.epoch },
        );
        this.backoff.reset();
        break;
      case "reset":
        this.cursors.set(channel, { seq: 0, epoch: obj.epoch });
        this.onEvent({ type: "reset", channel, epoch: obj.epoch });
        break;
      case "gap":
        if (cursor) this.cursors.set(channel, { ...cursor, seq: obj.first - 1 });
        this.stats.gaps += 1;
        this.onEvent({ type: "gap", channel, after: obj.after, first: obj.first });
        break;
      case "ack":
      case "error":
        this._answer(obj);
        break;
      case "join":
      case "leave":
        this.onEvent({ type: obj.type, channel, client: obj.client, user: obj.user });
        break;
      default:
        break; // ping, pong, close, subscribed ... and control types added later
    }
  }

  _answer(obj) {
    const waiting = this.pending.get(obj.id);
    if (!waiting) return;
    this.pending.delete(obj.id);
    if (obj.type === "ack") waiting.resolve(obj);
    else waiting.reject(Object.assign(new Error(obj.reason), obj));
  }

  // ---- connections -------------------------------------------------------------------
  _url(path, cursorsInUrl) {
    const u = new URL(path, this.base);
    for (const name of this.cursors.keys()) u.searchParams.append("channel", name);
    if (this.cursors.size === 0) u.searchParams.set("channel", "");
    if (cursorsInUrl && [...this.cursors.values()].some((c) => c !== null)) {
      u.searchParams.set("cursor", cursorToken(this.cursors));
    }
    return u;
  }

  _open() {
    this.timer = null;
    if (this.closed) return;
    this.onEvent({ type: "state", state: "connecting" });
    if (this.transport === "sse") {
      // EventSource keeps this URL on its own reconnects and adds Last-Event-ID: the
      // cursor token of every channel, which the server put in each event's id.
      const es = new EventSource(this._url("/sse", true));
      this.conn = es;
      es.onopen = () => {
        this.stats.connects += 1;
        this.onEvent({ type: "state", state: "open" });
      };
      es.onmessage = (e) => this._frame(parse(e.data));
      for (const kind of ["hello", "reset", "gap", "join", "leave"]) {
        es.addEventListener(kind, (e) => this._frame(parse(e.data)));
      }
      es.onerror = () => {
        if (es.readyState === EventSource.CLOSED) this._reopen(); // the browser gave up
      };
      return;
    }
    const u = this._url("/ws", true);
    u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
    // The token rides in Sec-WebSocket-Protocol, the one header a browser may set on a
    // WebSocket, never in the URL (logged, leaked by Referer); the server answers
    // "transport-lab" (docs/security.md).
    const protocols = this.token ? ["transport-lab", `bearer.${this.token}`] : [];
    const ws = new WebSocket(u.toString(), protocols);
    this.conn = ws;
    ws.onopen = () => {
      this.stats.connects += 1;
      this.onEvent({ type: "state", state: "open" });
      for (const { frame } of this.pending.values()) this._send(frame); // same ids: no dupes
    };
    ws.onmessage = (e) => this._frame(parse(e.data));
    ws.onclose = () => {
      if (this.conn === ws) this._reopen();
    };
  }

  _send(frame) {
    this.conn.send(JSON.stringify(frame));
  }

  async _post(frame) {
    const headers = { "Content-Type": "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const url = new URL(`/api/channels/${encodeURIComponent(frame.channel)}/messages`, this.base);
    for (let attempt = 0; ; attempt += 1) {
      try {
        const response = await fetch(url, {
          method: "POST",
          headers,
          body: JSON.stringify({ data: frame.data, id: frame.id }),
        });
        const body = await response.json();
        this._answer(response.ok ? body : { type: "error", id: frame.id, reason: body.error, ...body });
        return;
      } catch (err) {
        if (attempt >= 3) {
          this._answer({ type: "error", id: frame.id, reason: "network", detail: String(err) });
          return;
        }
        await new Promise((r) => setTimeout(r, this.backoff.next()));
      }
    }
  }

  _drop() {
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    conn.onopen = conn.onmessage = conn.onclose = conn.onerror = null;
    conn.close();
  }

  _reopen(delay = this.backoff.next()) {
    this._drop();
    if (this.closed) return;
    this.onEvent({ type: "state", state: "reconnecting" });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._open(), delay);
  }
}
