// Shared cursors: positions on one channel (cursors:arena), live only, at 20-60 Hz. The
// server's bot publishes 30 per second; a writer's own pointer (or "move by itself") publishes
// at most 30 per second. Positions are the newest-wins kind of data: on "WebRTC unordered"
// (ordered: false, maxRetransmits: 0, RFC 8831 §6.1) a late or lost one is not waited for.

import { TRANSPORTS, startShell } from "/demos/web/shell.js";

const $ = (s) => document.querySelector(s);
const channel = "cursors:arena";
const arena = $("#arena");
const dots = new Map();
const arrivals = []; // performance.now() of each bot update
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];

function dot(who) {
  let el = dots.get(who);
  if (!el) {
    el = document.createElement("div");
    el.className = "cursor";
    el.style.background = PALETTE[dots.size % PALETTE.length];
    el.append(Object.assign(document.createElement("span"), { textContent: who }));
    arena.append(el);
    dots.set(who, el);
  }
  return el;
}

const options = [...TRANSPORTS, { id: "webrtc-u", transport: "webrtc", ordered: false, label: "WebRTC unordered" }];
const shell = await startShell({
  channels: [{ name: channel, cursor: null }],
  options,
  lossy: (opt) => opt.ordered === false,
  on: {
    message(m) {
      if (m.channel !== channel) return;
      const el = dot(m.data.from);
      el.style.left = `${m.data.x * 100}%`;
      el.style.top = `${m.data.y * 100}%`;
      if (m.data.from === "bot") arrivals.push(performance.now());
      if (arrivals.length > 2000) arrivals.splice(0, 1000);
    },
  },
});
shell.start();

const canWrite = ["writer", "admin"].includes(shell.role);
let last = 0;
function move(x, y) {
  if (!canWrite || performance.now() - last < 33) return;
  last = performance.now();
  shell.client.publish(channel, { x, y }).catch(() => {});
}
arena.addEventListener("pointermove", (ev) => {
  const r = arena.getBoundingClientRect();
  move(Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height)));
});
$("#auto").disabled = !canWrite;
setInterval(() => {
  if (!$("#auto").checked) return;
  const t = performance.now() / 1000;
  move(0.5 + 0.3 * Math.cos(t), 0.5 + 0.3 * Math.sin(t));
}, 33);

function figures(windowMs) {
  const now = performance.now();
  const recent = arrivals.filter((t) => now - t < windowMs);
  let stall = recent.length ? now - recent[recent.length - 1] : windowMs;
  for (let i = 1; i < recent.length; i++) stall = Math.max(stall, recent[i] - recent[i - 1]);
  return { count: recent.length, stall };
}

function draw() {
  const cv = $("#gaps");
  const g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const gaps = [];
  for (let i = Math.max(1, arrivals.length - 120); i < arrivals.length; i++) gaps.push(arrivals[i] - arrivals[i - 1]);
  const w = cv.width / 120;
  g.fillStyle = "#888";
  g.font = "11px sans-serif";
  g.fillText("500 ms", 2, 10);
  g.fillRect(0, 12, cv.width, 0.5);
  gaps.forEach((d, i) => {
    const h = Math.min(cv.height - 14, (d / 500) * (cv.height - 14));
    g.fillStyle = d > 200 ? "#d62728" : "#1f77b4";
    g.fillRect(i * w, cv.height - h, Math.max(1, w - 1), h);
  });
}

setInterval(() => {
  const two = figures(2000);
  $('[data-k="rate"]').textContent = (two.count / 2).toFixed(0);
  $('[data-k="stall"]').textContent = `${figures(5000).stall.toFixed(0)} ms`;
  $('[data-k="stale"]').textContent = shell.client.stats.stale;
  draw();
}, 250);
window.cursors = { arrivals, figures };
