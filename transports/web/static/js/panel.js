// One transport's panel: the client-side bookkeeping (cursor, dedupe, gaps, latency) and its
// rendering. The connectors in ./transports/ feed it frames; it never touches the network.
//
// The same rules as the Python follow(): a message with seq <= the cursor is a duplicate and is
// dropped; a seq jump is a gap (counted by how many seqs are missing); a `reset` control starts
// a new epoch at seq 0; a `gap` control is the server saying history no longer reaches back.
//
// Latency is arrival − sent_at of *live* messages only. A message the server already had when
// this connection asked for it (published while the page connected, or during an outage and
// resumed from history) is "replayed": its arrival − sent_at is its age, not what the
// transport took, so it is counted as replayed and kept out of p50/p99 and the chart — the
// rule of `transport-lab follow` too. Where the server's hello says its last seq at connect
// (WebSocket, SSE, WebRTC) that decides; otherwise (long polling, MQTT) a message sent before
// the connection attempt began is replayed.

import { LatencyChart, percentile } from "./chart.js";

const WINDOW = 500; // latency samples kept for the rolling percentiles and the chart
const RATE_SPAN = 5; // seconds over which the receive rate is averaged
const EVENTS_KEPT = 200; // the event log scrolls; older entries than this are dropped

export const LABELS = {
  ws: "WebSocket",
  sse: "Server-Sent Events",
  poll: "Long polling",
  webrtc: "WebRTC data channel",
  mqtt: "MQTT over WebSocket",
};

function clock(t = Date.now()) {
  const d = new Date(t);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export class Panel {
  constructor(name, root) {
    this.name = name;
    this.root = root;
    this.epoch = null;
    this.lastSeq = null;
    this.received = 0;
    this.gaps = 0;
    this.missing = 0;
    this.dups = 0;
    this.connects = 0;
    this.reconnects = 0;
    this.resets = 0; // epoch changes seen (a server restart without durable history)
    this.replayed = 0; // messages that were history when they were asked for (see above)
    this.attemptAt = Date.now(); // when the current connection attempt began
    this.liveAfter = null; // the server's last seq when it accepted this connection (hello)
    this.eventsDrawn = -1;
    this.state = "idle";
    this.latencies = [];
    this.arrivals = [];
    this.events = [];
    this.lostAt = null;
    this.serverBytes = null;
    this.chart = new LatencyChart(root.querySelector("canvas"));
    this.$ = (sel) => root.querySelector(sel);
    root.dataset.transport = name;
    this.render();
  }

  /** The cursor a connector resumes from: {after, epoch}. */
  cursor() {
    return { after: this.lastSeq, epoch: this.epoch };
  }

  /** A connector calls this as it starts each connection attempt. */
  attempt() {
    this.attemptAt = Date.now();
    this.liveAfter = null;
  }

  /** Was `obj` already in the server's history when this connection asked for it? */
  isReplayed(obj) {
    if (this.liveAfter !== null) return obj.seq <= this.liveAfter;
    return typeof obj.sent_at === "number" && obj.sent_at * 1000 < this.attemptAt;
  }

  /** Start every panel at the same place so all five carry the same messages. */
  startAt(epoch, lastSeq) {
    this.epoch = epoch;
    this.lastSeq = lastSeq;
  }

  setState(state, detail = "") {
    if (state === this.state && !detail) return;
    const was = this.state;
    this.state = state;
    if (state === "open") {
      this.connects += 1;
      if (this.connects > 1) {
        this.reconnects += 1;
        const down = this.lostAt ? ` after ${((Date.now() - this.lostAt) / 1000).toFixed(2)} s` : "";
        this.log(`reconnected${down}, resuming after seq ${this.lastSeq ?? "live"}`, "ok");
      } else {
        this.log("connected", "ok");
      }
      this.lostAt = null;
    } else if ((state === "reconnecting" || state === "closed") && was === "open") {
      this.lostAt = Date.now();
      this.log(`connection lost${detail ? ": " + detail : ""}`, "bad");
    } else if (detail) {
      this.log(detail, state === "error" ? "bad" : "");
    }
    this.render();
  }

  log(text, kind = "") {
    this.events.unshift({ t: Date.now(), text, kind });
    this.events.length = Math.min(this.events.length, EVENTS_KEPT);
    this.eventsVersion = (this.eventsVersion ?? 0) + 1;
  }

  /** One decoded frame (a message or a control object) from the connector, which arrived
   * at `now` (ms since the epoch; a connector that held the frame back passes its arrival);
   * `history` when the connector fetched it from the server's history (MQTT's backfill). */
  frame(obj, now = Date.now(), history = false) {
    if (obj === null || typeof obj !== "object") return;
    if (typeof obj.type === "string") return this.control(obj);
    if (!Number.isInteger(obj.seq)) return;
    const seq = obj.seq;
    if (this.lastSeq !== null && seq <= this.lastSeq) {
      this.dups += 1;
      return;
    }
    if (this.lastSeq !== null && seq > this.lastSeq + 1) {
      this.gaps += 1;
      this.missing += seq - this.lastSeq - 1;
      this.log(`gap: seq ${this.lastSeq + 1}..${seq - 1} missing`, "bad");
    }
    this.lastSeq = seq;
    this.received += 1;
    if (history || this.isReplayed(obj)) {
      this.replayed += 1;
    } else if (typeof obj.sent_at === "number") {
      this.latencies.push(now - obj.sent_at * 1000);
      if (this.latencies.length > WINDOW) this.latencies.splice(0, this.latencies.length - WINDOW);
    }
    this.arrivals.push(now);
  }

  control(obj) {
    switch (obj.type) {
      case "hello":
        if (this.epoch === null) this.epoch = obj.epoch;
        if (this.lastSeq === null && Number.isInteger(obj.last_seq)) this.lastSeq = obj.last_seq;
        if (Number.isInteger(obj.last_seq)) this.liveAfter = obj.last_seq;
        break;
      case "reset":
        this.log(`epoch changed ${String(obj.previous).slice(0, 8)} → ${String(obj.epoch).slice(0, 8)}: seq restarts`, "bad");
        this.epoch = obj.epoch;
        this.lastSeq = 0;
        this.resets += 1;
        break;
      case "gap":
        this.gaps += 1;
        this.missing += Math.max(0, obj.first - obj.after - 1);
        this.lastSeq = obj.first - 1;
        this.log(`history gap: ${obj.after} → ${obj.first}`, "bad");
        break;
      case "close":
        this.log(`server closed: ${obj.reason}`, "bad");
        break;
      default: // ping/pong/subscribe acks: liveness only
    }
  }

  stats() {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const now = Date.now();
    while (this.arrivals.length && this.arrivals[0] < now - RATE_SPAN * 1000) this.arrivals.shift();
    return {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      rate: this.arrivals.length / RATE_SPAN,
    };
  }

  render() {
    const r = this.root;
    const { p50, p99, rate } = this.stats();
    Object.assign(r.dataset, {
      state: this.state,
      received: String(this.received),
      lastSeq: String(this.lastSeq ?? ""),
      epoch: this.epoch ?? "",
      gaps: String(this.gaps),
      missing: String(this.missing),
      dups: String(this.dups),
      reconnects: String(this.reconnects),
      resets: String(this.resets),
      replayed: String(this.replayed),
      p50: Number.isNaN(p50) ? "" : p50.toFixed(2),
      p99: Number.isNaN(p99) ? "" : p99.toFixed(2),
    });
    const fmt = (ms) => (Number.isNaN(ms) ? "–" : ms < 10 ? ms.toFixed(1) : ms.toFixed(0));
    this.$(".state").textContent = this.state;
    this.$(".received").textContent = this.received.toLocaleString("en");
    this.$(".rate").textContent = rate.toFixed(1);
    this.$(".p50").textContent = fmt(p50);
    this.$(".p99").textContent = fmt(p99);
    this.$(".seq").textContent = this.lastSeq ?? "–";
    this.$(".gaps").textContent = this.missing ? `${this.gaps} (${this.missing} lost)` : String(this.gaps);
    this.$(".dups").textContent = String(this.dups);
    this.$(".replayed").textContent = this.replayed.toLocaleString("en");
    this.$(".reconnects").textContent = String(this.reconnects);
    const b = this.serverBytes;
    this.$(".bytes").textContent = b
      ? `${bytes(b.bytes_out)} · ${b.frames_out.toLocaleString("en")} frames · ${b.active} ${b.active === 1 ? "connection" : "connections"} open`
      : "–";
    this.renderEvents();
    this.chart.draw(this.latencies);
  }

  /** Redraw the event log only when it changed, so a reader's scroll position is kept. */
  renderEvents() {
    if (this.eventsDrawn === (this.eventsVersion ?? 0)) return;
    this.eventsDrawn = this.eventsVersion ?? 0;
    this.$(".events").replaceChildren(
      ...this.events.map((e) => {
        const li = document.createElement("li");
        li.className = e.kind;
        const t = document.createElement("time");
        t.textContent = clock(e.t);
        li.append(t, " ", e.text);
        return li;
      }),
    );
  }
}

/** Bytes in decimal units: 950 B, 12.3 kB, 1.1 MB, 2.05 GB. */
export function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ${units[i]}`;
}

/** Mark a panel whose transport the server does not serve. */
export function notServed(root, name) {
  root.dataset.transport = name;
  root.dataset.state = "not served";
  root.classList.add("off");
  root.querySelector(".state").textContent = "not served";
  root.querySelector(".endpoint").textContent = "this server does not serve it (see /api/info)";
  for (const el of root.querySelectorAll(".faults button, .faults input")) el.disabled = true;
}
