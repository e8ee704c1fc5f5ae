// The demos' channel client: one API over all five transports (docs/wire.md, docs/demos.md).
//
//   const c = new ChannelClient({ transport: "ws", token, endpoints, on: { message, ... } });
//   c.subscribe("chat:lobby", { seq: 0 });       // from the start of history; null = live only
//   await c.publish("chat:lobby", { text: "hi" }); // resolves with the ack {channel, epoch, seq}
//
// This file holds what every transport shares: one cursor per channel (epoch + last seq),
// dedupe, gap/reset handling, the outbox of un-acked publishes (each with a client message
// id, re-sent with the SAME id after a reconnect: the server stores it once and answers the
// first ack again), and the cost counters. links.js holds the five connections.
//
// `lossy: true` (the cursors demo on an unordered, unreliable WebRTC channel) keeps only the
// newest position: an older seq arriving late is dropped as stale, a missing one is not waited for.

import { LINKS } from "./links.js";

export const newId = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

export class ChannelClient {
  constructor({ transport, token = null, endpoints, lossy = false, ordered = true, on = {} }) {
    this.transport = transport;
    this.token = token;
    this.endpoints = endpoints;
    this.lossy = lossy;
    this.ordered = ordered;
    this.on = on;
    this.cursors = new Map(); // channel -> {epoch, seq} ; seq null = live only, not started
    this.outbox = new Map(); // id -> {channel, data, resolve, reject, sentAt}
    this.state = "idle";
    this.stats = { received: 0, bytes: 0, dups: 0, stale: 0, gaps: 0, missed: 0, reconnects: 0, lat: [] };
    this.link = null;
    this.paused = false;
  }

  // ---- public API ------------------------------------------------------------------------
  start() {
    this.paused = false;
    this.link = LINKS[this.transport](this);
    return this;
  }

  /** Close the connection but keep cursors and the outbox (the "train tunnel"). */
  pause() {
    this.paused = true;
    this.link?.stop();
    this.link = null;
    this.setState("offline");
  }

  resume() {
    if (this.paused) this.start();
  }

  close() {
    this.pause();
    for (const p of this.outbox.values()) p.reject(new Error("client closed"));
    this.outbox.clear();
  }

  subscribe(channel, cursor = { seq: 0 }) {
    if (this.cursors.has(channel)) return;
    this.cursors.set(channel, cursor ? { epoch: cursor.epoch ?? null, seq: cursor.seq } : { epoch: null, seq: null });
    this.link?.subscribe(channel);
  }

  unsubscribe(channel) {
    if (!this.cursors.delete(channel)) return;
    this.link?.unsubscribe(channel);
  }

  publish(channel, data, id = newId()) {
    return new Promise((resolve, reject) => {
      const entry = { id, channel, data, resolve, reject, sentAt: performance.now() };
      this.outbox.set(id, entry);
      this.on.outbox?.(this.outbox);
      this.link?.publish(entry);
    });
  }

  /** The cursor token of `channels` (docs/wire.md): "", "SEQ" or "SEQ.EPOCH" each. */
  token_of(channels) {
    return channels
      .map((name) => {
        const c = this.cursors.get(name);
        if (!c || c.seq === null) return "";
        return c.epoch ? `${c.seq}.${c.epoch}` : String(c.seq);
      })
      .join(",");
  }

  // ---- called by the links ---------------------------------------------------------------
  setState(state, detail = "") {
    if (state === "reconnecting" && this.state === "open") this.stats.reconnects += 1;
    this.state = state;
    this.on.state?.(state, detail);
  }

  /** The link is up: re-send everything not yet acknowledged, with the same ids. */
  opened() {
    this.setState("open");
    for (const entry of this.outbox.values()) this.link?.publish(entry);
  }

  frame(obj, bytes) {
    if (!obj || typeof obj !== "object") return;
    if (typeof obj.seq === "number" && obj.type === undefined) return this.message(obj, bytes);
    const cur = obj.channel ? this.cursors.get(obj.channel) : null;
    switch (obj.type) {
      case "hello":
        if (cur) {
          cur.liveFrom = obj.last_seq; // what follows up to here is replay: no latency figure
          if (cur.epoch === null) cur.epoch = obj.epoch;
          if (cur.seq === null) cur.seq = obj.last_seq;
        }
        break;
      case "reset":
        if (cur) Object.assign(cur, { epoch: obj.epoch, seq: 0 });
        this.on.reset?.(obj);
        break;
      case "gap": {
        const missed = obj.first - obj.after - 1;
        this.stats.gaps += 1;
        this.stats.missed += missed;
        if (cur) cur.seq = obj.first - 1;
        this.on.gap?.({ ...obj, missed });
        break;
      }
      case "ack":
        this.acked(obj);
        break;
      case "error":
        this.refused(obj);
        break;
      case "join":
      case "leave":
        this.on.presence?.(obj);
        break;
      default:
        this.on.control?.(obj);
    }
  }

  message(m, bytes) {
    const cur = this.cursors.get(m.channel);
    if (!cur) return; // unsubscribed meanwhile
    if (cur.seq !== null && m.seq <= cur.seq) {
      if (this.lossy) this.stats.stale += 1;
      else this.stats.dups += 1; // the overlap of a backfill and a live stream: dropped here
      return;
    }
    if (cur.seq === null) cur.seq = m.seq - 1;
    if (!this.lossy && m.seq > cur.seq + 1) this.stats.missed += m.seq - cur.seq - 1;
    cur.seq = m.seq;
    this.stats.received += 1;
    this.stats.bytes += bytes ?? JSON.stringify(m).length;
    if (typeof m.sent_at === "number" && m.seq > (cur.liveFrom ?? -1)) {
      const lat = Date.now() - m.sent_at * 1000;
      this.stats.lat.push(lat);
      if (this.stats.lat.length > 200) this.stats.lat.shift();
    }
    this.on.message?.(m);
  }

  acked(ack) {
    const entry = this.outbox.get(ack.id);
    if (!entry) return;
    this.outbox.delete(ack.id);
    entry.resolve({ ...ack, rtt: performance.now() - entry.sentAt });
    this.on.outbox?.(this.outbox);
  }

  refused(err) {
    const entry = err.id ? this.outbox.get(err.id) : null;
    if (entry) {
      this.outbox.delete(err.id);
      entry.reject(Object.assign(new Error(`${err.reason}: ${err.detail ?? ""}`), { reason: err.reason }));
      this.on.outbox?.(this.outbox);
    } else {
      this.on.error?.(err);
    }
  }

  /** p50 of the recent latencies (ms), or null. */
  p50() {
    const a = [...this.stats.lat].sort((x, y) => x - y);
    return a.length ? a[Math.floor(a.length / 2)] : null;
  }
}
