// Chat: rooms are channels (chat:ROOM, typing:ROOM). Joining a room subscribes from seq 0,
// so the room's history (the last 200 messages) arrives first; presence comes from
// GET /api/channels/chat:ROOM and then join/leave frames. Every message is published with a
// client message id; it shows "unsent" until the ack, and a publish re-sent after a cut
// (same id) is stored once by the server, so it is shown once.

import { newId } from "/demos/web/client.js";
import { startShell } from "/demos/web/shell.js";

const ROOMS = ["lobby", "random", "workshop"];
const $ = (s) => document.querySelector(s);
let room = new URLSearchParams(location.search).get("room") ?? "lobby";
const members = new Map(); // client id -> user
const typing = new Map(); // user -> until (ms)

function li(cls, from, text, meta) {
  const el = document.createElement("li");
  el.className = cls;
  el.innerHTML = `<span class="from"></span><span class="text"></span><span class="meta"></span>`;
  el.querySelector(".from").textContent = from;
  el.querySelector(".text").textContent = text;
  el.querySelector(".meta").textContent = meta;
  return el;
}

function scroll() {
  $("#log").scrollTop = $("#log").scrollHeight;
}

function onMessage(m) {
  if (m.channel === `typing:${room}`) {
    if (m.data.from !== shell.user) typing.set(m.data.from, m.data.typing ? Date.now() + 4000 : 0);
    return;
  }
  if (m.channel !== `chat:${room}`) return;
  const log = $("#log");
  if (log.querySelector(`li[data-seq="${m.seq}"]`)) return; // our own, already marked by its ack
  const mine = m.data.from === shell.user ? [...log.querySelectorAll("li.unsent")].find((e) => e.dataset.text === m.data.text) : null;
  if (mine) return sent(mine, m.seq);
  const el = li(m.data.from === shell.user ? "msg sent" : "msg", m.data.from, m.data.text, `#${m.seq}`);
  el.dataset.seq = m.seq;
  log.append(el);
  scroll();
}

function sent(el, seq) {
  el.className = "msg sent";
  el.dataset.seq = seq;
  el.querySelector(".meta").textContent = `#${seq}`;
}

function renderPresence() {
  const ul = $("#presence");
  ul.replaceChildren(...[...new Set(members.values())].sort().map((u) => Object.assign(document.createElement("li"), { textContent: u })));
}

async function loadPresence() {
  const res = await fetch(`/api/channels/${encodeURIComponent(`chat:${room}`)}`);
  const body = await res.json();
  for (const m of body.members ?? []) members.set(m.client, m.user);
  renderPresence();
}

function join(next) {
  const c = shell.client;
  c.unsubscribe(`chat:${room}`);
  c.unsubscribe(`typing:${room}`);
  room = next;
  members.clear();
  $("#log").replaceChildren();
  $("#gap").hidden = true;
  $("#room-title").textContent = `#${room}`;
  c.subscribe(`chat:${room}`, { seq: 0 }); // from the start of the room's history
  c.subscribe(`typing:${room}`, null); // live only
  for (const b of document.querySelectorAll("#rooms button")) b.classList.toggle("on", b.dataset.room === room);
  setTimeout(loadPresence, 300);
}

const shell = await startShell({
  channels: [{ name: `chat:${room}` }, { name: `typing:${room}`, cursor: null }],
  on: {
    message: onMessage,
    presence(f) {
      if (f.channel !== `chat:${room}`) return;
      if (f.type === "join") members.set(f.client, f.user);
      else members.delete(f.client);
      renderPresence();
    },
    gap(g) {
      $("#gap").hidden = false;
      $("#gap").textContent = `history no longer reaches back: ${g.missed} older message(s) not shown`;
    },
  },
});
shell.onSwitch(() => {
  members.clear();
  setTimeout(loadPresence, 500);
});
shell.start();
loadPresence();

for (const r of ROOMS) {
  const b = Object.assign(document.createElement("button"), { textContent: `#${r}` });
  b.dataset.room = r;
  b.classList.toggle("on", r === room);
  b.onclick = () => r !== room && join(r);
  const item = document.createElement("li");
  item.append(b);
  $("#rooms").append(item);
}

const canWrite = shell.role === "writer" || shell.role === "admin";
$("#text").disabled = !canWrite;
$("#role-note").textContent = canWrite
  ? `You are ${shell.user}. Messages carry a client id: one sent during a cut stays "unsent" and is delivered once when the link is back.`
  : `Read-only (${shell.role}): this token may read the room but the server refuses its publishes (403 forbidden).`;

let typingSent = 0;
$("#text").addEventListener("input", () => {
  if (!canWrite || Date.now() - typingSent < 2000) return;
  typingSent = Date.now();
  shell.client.publish(`typing:${room}`, { typing: true }).catch(() => {});
});

$("#say").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("#text").value.trim();
  if (!text) return;
  $("#text").value = "";
  const id = newId();
  const el = li("msg unsent", shell.user, text, "");
  el.dataset.id = id;
  el.dataset.text = text;
  $("#log").append(el);
  scroll();
  shell.client
    .publish(`chat:${room}`, { text }, id)
    .then((ack) => el.isConnected && (el.dataset.seq ? null : sent(el, ack.seq)))
    .catch((err) => {
      el.className = "msg failed";
      el.querySelector(".meta").textContent = `refused: ${err.reason ?? err.message}`;
    });
});

setInterval(() => {
  const now = Date.now();
  const who = [...typing].filter(([, until]) => until > now).map(([u]) => u);
  $("#typing").textContent = who.length ? `${who.join(", ")} ${who.length > 1 ? "are" : "is"} typing…` : "\u00a0";
}, 500);
