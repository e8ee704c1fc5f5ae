// Stock ticker: each symbol is a channel (ticker:ACME ...), subscribed live-only when ticked
// and unsubscribed when unticked, at run time, on every transport. "High rate" asks the
// server's ticker for hundreds of messages per second (POST /demos/api/settings, writer).
// Compression: for each message the page measures what DEFLATE (CompressionStream
// "deflate-raw", RFC 1951) makes of it, and counts bytes as sent vs. "compressed when larger
// than the threshold" — small messages do not pay for compression, the order books do.

import { startShell } from "/demos/web/shell.js";

const SYMBOLS = ["ACME", "GLOBX", "INITECH", "UMBRL", "STARK", "WAYNE", "TYRELL", "CYBRD"];
const START = new URLSearchParams(location.search).get("symbols")?.split(",") ?? SYMBOLS.slice(0, 4);
const $ = (s) => document.querySelector(s);
const quotes = new Map();
const sizes = { small: [0, 0], big: [0, 0, 0] };
let arrivals = [];

async function deflated(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

async function measure(m) {
  const text = JSON.stringify(m);
  const n = new TextEncoder().encode(text).length;
  const threshold = +$("#threshold").value || 0;
  if (n <= threshold) {
    sizes.small[0] += 1;
    sizes.small[1] += n;
    return;
  }
  const z = await deflated(text);
  sizes.big[0] += 1;
  sizes.big[1] += n;
  sizes.big[2] += z;
  $("#last-big").textContent = `last big message: ${m.data.symbol} #${m.seq}, ${n} B as is, ${z} B compressed (${((100 * z) / n).toFixed(0)} %)`;
}

function onMessage(m) {
  if (!m.channel.startsWith("ticker:")) return;
  arrivals.push(performance.now());
  const q = quotes.get(m.data.symbol) ?? { n: 0 };
  Object.assign(q, m.data, { n: q.n + 1 });
  quotes.set(m.data.symbol, q);
  measure(m);
}

function render() {
  const rows = [...quotes.values()].filter((q) => shell.client.cursors.has(`ticker:${q.symbol}`));
  $("#quotes tbody").replaceChildren(
    ...rows.map((q) => {
      const tr = document.createElement("tr");
      tr.dataset.symbol = q.symbol;
      const cells = [q.symbol, q.price.toFixed(2), q.change.toFixed(3), q.bid.toFixed(2), q.ask.toFixed(2), q.n];
      for (const v of cells) tr.append(Object.assign(document.createElement("td"), { textContent: v }));
      tr.children[2].className = q.change >= 0 ? "up" : "down";
      return tr;
    }),
  );
  const now = performance.now();
  arrivals = arrivals.filter((t) => now - t < 2000);
  $("#mps").textContent = (arrivals.length / 2).toFixed(0);
  const row = (k, cells) => [...$(`#compress tr[data-k="${k}"]`).children].slice(1).forEach((td, i) => (td.textContent = cells[i]));
  const [sn, sb] = sizes.small;
  const [bn, bb, bz] = sizes.big;
  const pct = (a, b) => (b ? `${(100 - (100 * a) / b).toFixed(0)} %` : "–");
  row("small", [sn, sb, "–", "–"]);
  row("big", [bn, bb, bz, pct(bz, bb)]);
  row("all", [sn + bn, sb + bb, sb + bz, pct(sb + bz, sb + bb)]);
}

const shell = await startShell({
  channels: START.map((s) => ({ name: `ticker:${s}`, cursor: null })),
  on: { message: onMessage },
});
shell.start();
window.ticker = { sizes, quotes };

for (const s of SYMBOLS) {
  const label = document.createElement("label");
  const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: START.includes(s) });
  box.dataset.symbol = s;
  box.onchange = () => (box.checked ? shell.client.subscribe(`ticker:${s}`, null) : shell.client.unsubscribe(`ticker:${s}`));
  label.append(box, ` ${s}`);
  $("#symbols").append(label);
}
// Switching transports keeps the subscriptions: the shell carries the cursors over.
shell.onSwitch(() => {});

async function settings(body) {
  const res = await fetch("/demos/api/settings", {
    method: body ? "POST" : "GET",
    headers: { "content-type": "application/json", ...(shell.token ? { authorization: `Bearer ${shell.token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const now = await res.json();
  $("#rate-now").textContent = res.ok ? `server ticker: ${now.ticker_rate} msg/s` : `refused: ${now.error}`;
  $("#rate").textContent = now.ticker_rate > 50 ? "Normal rate (4 msg/s)" : "High rate (300 msg/s)";
  return now;
}
let current = await settings();
$("#rate").onclick = async () => (current = await settings({ ticker_rate: current.ticker_rate > 50 ? 4 : 300 }));
$("#rate").disabled = !["writer", "admin"].includes(shell.role);
setInterval(render, 250);
