// One transport's panel: the client-side bookkeeping (cursor, dedupe, gaps, latency) and its
// rendering. The connectors in ./transports/ feed it frames; it never touches the network.
//
// The same rules as the Python follow(): a message with seq <= the cursor is a duplicate and is
// dropped; a seq jump is a gap (counted by how many seqs are missing); a `reset` control starts
// a new epoch at seq 0; a `gap` control is the server saying history no longer reaches back.

import { LatencyChart, percentile } from "./chart.js";

const WINDOW = 500; // latency samples kept for the rolling percentiles and the chart
const RATE_SPAN = 5; // seconds over which the receive rate is averaged
const EVENTS_SHOWN = 6;

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
    this.events.length = Math.min(this.events.length, 50);
  }

  /** One decoded frame (a message or a control object) from the connector. */
  frame(obj) {
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
    const now = Date.now();
    if (typeof obj.sent_at === "number") {
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
    this.$(".reconnects").textContent = String(this.reconnects);
    const b = this.serverBytes;
    this.$(".bytes").textContent = b
      ? `${(b.bytes_out / 1024).toFixed(1)} kB · ${b.frames_out.toLocaleString("en")} frames · ${b.active} open`
      : "–";
    this.$(".events").replaceChildren(
      ...this.events.slice(0, EVENTS_SHOWN).map((e) => {
        const li = document.createElement("li");
        li.className = e.kind;
        const t = document.createElement("time");
        t.textContent = clock(e.t);
        li.append(t, " ", e.text);
        return li;
      }),
    );
    this.chart.draw(this.latencies);
  }
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
