// What every demo page shares: the token, the transport switch, the cost bar.
//
//   const shell = await startShell({ title, channels: ["chat:lobby"], on: {...} });
//   shell.client.publish(...)
//
// Token: the server prints the page URL with #token=<invite> (a writer or observer invite).
// The page keeps it for the tab (sessionStorage, like the dashboard's admin token), removes it
// from the address bar, and mints a personal token for the name the user picks
// (POST /demos/api/token), so presence and "from" show that name.
// Transport: the buttons (or ?transport=) pick one of the five; switching closes the old
// connection and opens the new one AT THE SAME CURSORS — every transport carries the same
// (channel, epoch, seq), so nothing is missed or repeated across a switch.
// Fault lab: with `--faults` each transport connects through its own fault proxy (GET
// /api/faults), so cutting one transport there cuts exactly the pages using it.

import { ChannelClient } from "./client.js";

export const TRANSPORTS = [
  { id: "ws", transport: "ws", label: "WebSocket" },
  { id: "sse", transport: "sse", label: "SSE" },
  { id: "poll", transport: "poll", label: "Long polling" },
  { id: "webrtc", transport: "webrtc", label: "WebRTC" },
  { id: "mqtt", transport: "mqtt", label: "MQTT" },
];

async function getJson(path, init) {
  const res = await fetch(path, { cache: "no-store", ...init });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw Object.assign(new Error(body?.detail ?? `HTTP ${res.status}`), { status: res.status });
  return body;
}

function invite() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("tl-demo-invite", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("tl-demo-invite");
}

export const roleOf = (token) => (token ? ({ w: "writer", r: "observer" }[token.split(".")[1]] ?? "admin") : "anonymous");

async function personalToken(inviteToken, user) {
  if (!inviteToken) return null;
  const role = roleOf(inviteToken) === "observer" ? "observer" : "writer";
  const body = await getJson("/demos/api/token", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${inviteToken}` },
    body: JSON.stringify({ user, role }),
  });
  return body.token;
}

async function endpoints() {
  const info = await getJson("/api/info");
  const lab = (await getJson("/api/faults").catch(() => null))?.transports ?? {};
  const here = location.origin;
  const mqttHttp = lab.mqtt?.url ?? here;
  return {
    served: Object.keys(info.transports),
    faults: Object.keys(lab).length > 0,
    ws: lab.ws?.url ?? here,
    sse: lab.sse?.url ?? here,
    poll: lab.poll?.url ?? here,
    webrtc: lab.webrtc?.offer_url ?? info.transports.webrtc?.url ?? `${here}/webrtc/offer`,
    mqtt: mqttHttp.replace(/^http/, "ws") + "/mqtt",
    mqttHttp,
    mqttPrefix: info.transports.mqtt?.prefix ?? "transport-lab",
  };
}

function bar(root, options, pick) {
  root.innerHTML = `
    <nav class="switch" aria-label="transport"></nav>
    <span class="state" data-k="state">…</span>
    <span>p50 <b data-k="p50">–</b> ms</span>
    <span><b data-k="bpm">–</b> B/msg</span>
    <span>recv <b data-k="received">0</b></span>
    <span>dups <b data-k="dups">0</b></span>
    <span>gaps <b data-k="gaps">0</b></span>
    <span>reconnects <b data-k="reconnects">0</b></span>
    <span class="who" data-k="who"></span>`;
  const nav = root.querySelector(".switch");
  for (const t of options) {
    const b = document.createElement("button");
    b.textContent = t.label;
    b.dataset.transport = t.id;
    b.onclick = () => pick(t.id);
    nav.append(b);
  }
  return (client, id, who) => {
    const s = client.stats;
    const set = (k, v) => (root.querySelector(`[data-k="${k}"]`).textContent = v);
    for (const b of nav.children) b.classList.toggle("on", b.dataset.transport === id);
    set("state", client.state);
    root.querySelector('[data-k="state"]').className = `state ${client.state}`;
    const p50 = client.p50();
    set("p50", p50 === null ? "–" : p50.toFixed(1));
    set("bpm", s.received ? (s.bytes / s.received).toFixed(0) : "–");
    for (const k of ["received", "dups", "gaps", "reconnects"]) set(k, String(s[k]));
    set("who", who);
  };
}

export async function startShell({ channels = [], on = {}, options = TRANSPORTS, lossy = () => false }) {
  const params = new URLSearchParams(location.search);
  const inviteToken = invite();
  const user = params.get("user") || localStorage.getItem("tl-demo-user") || `user_${Math.random().toString(36).slice(2, 6)}`;
  localStorage.setItem("tl-demo-user", user);
  const [token, ends] = await Promise.all([personalToken(inviteToken, user).catch(() => null), endpoints()]);
  const role = roleOf(token ?? inviteToken);
  const shell = { user, role, token, endpoints: ends, client: null, id: null, on, listeners: [], channels };
  const render = bar(document.querySelector("#costbar"), options, (id) => shell.use(id));

  shell.use = (id) => {
    const opt = options.find((o) => o.id === id) ?? options[0];
    const old = shell.client;
    const client = new ChannelClient({
      transport: opt.transport,
      token,
      endpoints: ends,
      ordered: opt.ordered ?? true,
      lossy: lossy(opt),
      on,
    });
    if (old) {
      // Same cursors, same outbox: the new transport resumes exactly where the old one was.
      old.pause();
      for (const [ch, cur] of old.cursors) client.cursors.set(ch, { ...cur });
      client.outbox = old.outbox;
    } else {
      for (const ch of shell.channels) {
        const cur = ch.cursor === undefined ? { seq: 0 } : ch.cursor; // null = live only
        client.cursors.set(ch.name ?? ch, { epoch: cur?.epoch ?? null, seq: cur ? cur.seq : null });
      }
    }
    shell.client = client;
    shell.id = opt.id;
    client.start();
    for (const fn of shell.listeners) fn(client, opt);
  };
  shell.onSwitch = (fn) => shell.listeners.push(fn);
  setInterval(() => shell.client && render(shell.client, shell.id, `${user} · ${role}${ends.faults ? " · fault lab on" : ""}`), 300);
  window.demo = shell; // for the tests and the curious (devtools)
  shell.start = () => shell.use(params.get("transport") ?? options[0].id);
  return shell;
}
