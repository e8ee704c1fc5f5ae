// The dashboard: one panel per transport, each a real browser client of that transport, all
// following the same feed from the same starting seq. Reads /api/info (what is served and
// where), /api/faults (the fault lab, when `serve --faults` runs it: each panel then connects
// through its transport's fault proxy) and polls /api/stats for the server's byte counters.
// "Restart server" asks `serve --faults` to restart the feed server behind the proxies
// (POST /api/faults/server/restart); the panels show what each transport makes of it.

import { LABELS, Panel, notServed } from "./panel.js";
import { connectMqtt } from "./transports/mqtt.js";
import { connectPoll } from "./transports/poll.js";
import { connectSse } from "./transports/sse.js";
import { connectWebRtc } from "./transports/webrtc.js";
import { connectWs } from "./transports/ws.js";

const ORDER = ["ws", "sse", "poll", "webrtc", "mqtt"];
const CONNECT_ORDER = ["mqtt", "webrtc", "ws", "sse", "poll"];
const PATHS = { ws: "/ws", sse: "/sse", poll: "/poll", webrtc: "/webrtc/offer", mqtt: "/mqtt" };

// The admin token: `serve` prints the dashboard URL with #token=… (a fragment is never sent
// to the server, so it is not in any request line or log). Kept for this tab only
// (sessionStorage) and removed from the address bar, so it is not bookmarked or shared.
const TOKEN_KEY = "transport-lab-admin-token";
function adminToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}
const TOKEN = adminToken();

/** A state-changing request: JSON body and the admin token (no simple-request CSRF). */
function post(body) {
  const headers = { "content-type": "application/json" };
  if (TOKEN) headers.authorization = `Bearer ${TOKEN}`;
  return { method: "POST", headers, body: JSON.stringify(body) };
}

async function getJson(url, init) {
  const res = await fetch(url, { cache: "no-store", ...init });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.detail ?? body?.error ?? `HTTP ${res.status}`);
  return body;
}

/** Where a panel connects: through its fault proxy when the fault lab runs, else here. */
function endpoint(name, info, faults) {
  const t = info.transports[name];
  const lab = faults?.transports?.[name];
  // WebRTC through the lab: signalling whose answer points at the lab's UDP relay.
  if (name === "webrtc" && lab?.offer_url) return lab.offer_url;
  const proxy = lab?.url;
  if (proxy && /^https?:/.test(proxy)) return new URL(PATHS[name], proxy).toString();
  if (name === "mqtt") return t.bridge_url ?? t.ws_url ?? new URL("/mqtt", location.href).toString();
  return t.url ?? new URL(PATHS[name], location.href).toString();
}

function connect(name, url, panel, info, publisher) {
  const t = info.transports[name];
  switch (name) {
    case "ws":
      return connectWs(url, panel);
    case "sse":
      // EventSource cannot see comment heartbeats: watch for silence only while publishing.
      return connectSse(url, panel, {
        idleMs: () => (publisher.rate > 0 ? 4000 + 3000 / publisher.rate : Infinity),
      });
    case "poll":
      return connectPoll(url, panel, { timeout: 10 });
    case "webrtc":
      return connectWebRtc(url, panel, { idleMs: 2500 * (t.ping_interval ?? 2) + 1000 });
    case "mqtt":
      return connectMqtt(url, panel, {
        topicFilter: t.topic_filter ?? `${t.prefix ?? "transport-lab"}/#`,
        // the replay endpoint next to the bridge (through the same proxy when there is one)
        replayUrl: t.replay_url ? new URL("/mqtt/replay", url.replace(/^ws/, "http")).toString() : null,
      });
  }
}

function faultControls(root, name, faults, status) {
  const box = root.querySelector(".faults");
  const latency = box.querySelector("input");
  const buttons = [...box.querySelectorAll("button")];
  const served = faults?.transports?.[name];
  for (const b of buttons) {
    b.disabled = !served;
    b.title = served ? `${b.dataset.action} the ${LABELS[name]} path` : "fault lab not running: start with `transport-lab serve --faults`";
    b.addEventListener("click", async () => {
      const body = { action: b.dataset.action };
      if (body.action === "latency") body.latency_ms = Number(latency.value) || 200;
      try {
        const res = await getJson(`/api/faults/${name}`, post(body));
        status(name, `fault ${body.action}${body.latency_ms ? ` ${body.latency_ms} ms` : ""}`, res);
      } catch (err) {
        status(name, `fault ${body.action} failed: ${err.message}`);
      }
    });
  }
  latency.disabled = !served;
}

/** Resolves after the next frame has been rendered (rAF runs before paint; the timeout
 * after it runs once that frame is done), i.e. when the start-up layout work is over. */
const afterFirstPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `panel` has left "connecting" (and the main thread is idle), or after `ms`. */
async function settled(panel, ms) {
  const until = Date.now() + ms;
  while (panel.state === "connecting" && Date.now() < until) await pause(20);
  await new Promise((resolve) => requestIdleCallback(resolve, { timeout: 200 }));
}

/** The "Restart server" button: enabled when the fault lab can restart the server. */
function restartControl(faults, panels) {
  const button = document.querySelector("#restart");
  const out = document.querySelector("#server output");
  const server = faults?.server;
  button.disabled = !server;
  button.title = server
    ? `stop the feed server and start a fresh one on the same port (${server.history})`
    : "needs `transport-lab serve --faults`";
  if (!server) return;
  out.textContent = server.history;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const asked = await getJson(server.restart_url, post({}));
      for (const p of Object.values(panels)) p.log(`server restart (epoch was ${String(asked.epoch).slice(0, 8)})`, "fault");
      out.textContent = "restarting…";
      // Bounded: the server answers "restarting" until the fresh one serves (seconds).
      for (let i = 0; i < 60; i++) {
        await pause(500);
        const now = await getJson("/api/faults").catch(() => null);
        const done = now?.server;
        if (done && !done.restarting && done.restarts > asked.restarts) {
          const r = done.last_restart;
          const epoch = r.epoch_before === r.epoch_after ? `same epoch ${r.epoch_after}` : `epoch ${r.epoch_before} → ${r.epoch_after}`;
          out.textContent = `restart ${done.restarts}: serving again after ${r.serving_again_s.toFixed(2)} s · ${epoch}`;
          return;
        }
      }
      out.textContent = "the server did not come back within 30 s";
    } catch (err) {
      out.textContent = `restart failed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

function publisherControls(publisher, onChange) {
  const form = document.querySelector("#publisher");
  const rate = form.querySelector("[name=rate]");
  const size = form.querySelector("[name=payload_bytes]");
  rate.value = publisher.rate;
  size.value = publisher.payload_bytes;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const now = await getJson("/api/publisher", post({ rate: Number(rate.value), payload_bytes: Number(size.value) }));
      onChange(now);
      form.querySelector("output").textContent = `publishing ${now.rate} msg/s × ${now.payload_bytes} B`;
    } catch (err) {
      form.querySelector("output").textContent = `rejected: ${err.message}`;
    }
  });
  form.querySelector("output").textContent = `publishing ${publisher.rate} msg/s × ${publisher.payload_bytes} B`;
}

async function main() {
  const info = await getJson("/api/info");
  // {"enabled": false} when the fault lab is off (no 404 in the console).
  const faults = await getJson("/api/faults")
    .then((f) => (f?.enabled === false ? null : f))
    .catch(() => null);
  const publisher = { ...info.publisher };
  document.querySelector("#epoch").textContent = info.epoch.slice(0, 12);
  document.querySelector("#faultlab").textContent = faults ? "fault lab on: panels connect through fault proxies" : "fault lab off";
  publisherControls(publisher, (now) => Object.assign(publisher, now));

  const grid = document.querySelector("#panels");
  const template = document.querySelector("#panel-template");
  const panels = {};
  for (const name of ORDER) {
    const root = template.content.firstElementChild.cloneNode(true);
    root.querySelector("h2").textContent = LABELS[name];
    root.classList.add(`t-${name}`);
    grid.append(root);
    if (!(name in info.transports)) {
      notServed(root, name);
      continue;
    }
    const panel = new Panel(name, root);
    panel.startAt(info.epoch, info.last_seq);
    root.querySelector(".endpoint").textContent = endpoint(name, info, faults);
    panels[name] = panel;
    faultControls(root, name, faults, (n, text) => {
      panels[n].log(text, "fault");
      panels[n].render();
    });
  }
  grid.append(document.querySelector("#legend-template").content.firstElementChild.cloneNode(true));
  restartControl(faults, panels);
  // Connect only once the page is laid out and painted: building five panels and their
  // charts blocks the main thread for ~100-150 ms, and a message arriving meanwhile waits
  // in the task queue, so the first live messages of the transports connected first showed
  // that wait as latency (fresh-page p99 4x steady).
  // MQTT goes first and alone: the MQTT.js bundle's first connect is ~100-150 ms of script
  // work (its Buffer shim, packet writer, garbage collection) that would otherwise hold up
  // the first live messages of the other panels. Bounded: the rest start after 2 s anyway.
  await afterFirstPaint();
  for (const name of CONNECT_ORDER.filter((n) => n in panels)) {
    const panel = panels[name];
    panel.connector = connect(name, endpoint(name, info, faults), panel, info, publisher);
    if (name === "mqtt") await settled(panel, 2000);
  }
  window.transportLab = { info, faults, panels, publisher };

  // The header's seq: the server's (polled each second) or, between polls, the newest seq a
  // panel of the same epoch has received, so it never lags the panels.
  let published = { epoch: info.epoch, seq: info.last_seq };
  const showPublished = () => {
    for (const p of Object.values(panels)) {
      if (p.epoch === published.epoch && (p.lastSeq ?? 0) > published.seq) published.seq = p.lastSeq;
    }
    document.querySelector("#published").textContent = published.seq.toLocaleString("en");
  };
  setInterval(() => {
    Object.values(panels).forEach((p) => p.render());
    showPublished();
  }, 250);
  setInterval(async () => {
    try {
      const stats = await getJson("/api/stats");
      if (stats.epoch !== published.epoch || stats.last_seq > published.seq) {
        published = { epoch: stats.epoch, seq: stats.last_seq };
      }
      showPublished();
      document.querySelector("#epoch").textContent = stats.epoch.slice(0, 12);
      for (const [name, p] of Object.entries(panels)) p.serverBytes = stats.transports[name] ?? null;
    } catch {}
  }, 1000);
}

main().catch((err) => {
  document.querySelector("#fatal").textContent = `Cannot start: ${err.message}`;
});
