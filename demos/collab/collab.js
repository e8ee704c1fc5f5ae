// Collaborative editing with Yjs (vendored, /demos/web/vendor/yjs.min.mjs). The page:
// 1. GETs the server's snapshot (/demos/api/doc/doc:NAME: the whole document as one Yjs
//    update, and the channel's epoch and seq) and applies it;
// 2. follows the channel from that cursor, applying each update (origin "remote");
// 3. publishes each local change as an update. A textarea edit becomes one delete + insert
//    at the changed span (common prefix/suffix), inside a Yjs transaction.
// After a `reset` (the server lost the channel's history, e.g. a restart), the page publishes
// its whole state: the server's copy and everyone else's merge it back.

import * as Y from "/demos/web/vendor/yjs.min.mjs";
import { startShell } from "/demos/web/shell.js";

const $ = (s) => document.querySelector(s);
const name = new URLSearchParams(location.search).get("doc") ?? "notes";
const channel = `doc:${name}`;
const doc = new Y.Doc();
const ytext = doc.getText("text");
const editor = $("#editor");
let applied = 0;

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function apply(update) {
  Y.applyUpdate(doc, unb64(update), "remote");
  applied += 1;
}

const shell = await startShell({
  channels: [],
  on: {
    message(m) {
      if (m.channel === channel) apply(m.data.update);
    },
    reset(r) {
      if (r.channel === channel) publish(Y.encodeStateAsUpdate(doc));
    },
    outbox: (box) => ($("#pending").textContent = box.size),
  },
});
$("#doc-title").textContent = channel;

const headers = shell.token ? { authorization: `Bearer ${shell.token}` } : {};
const res = await fetch(`/demos/api/doc/${encodeURIComponent(channel)}`, { headers });
const snap = await res.json();
if (res.ok) {
  apply(snap.update);
  shell.channels.push({ name: channel, cursor: { epoch: snap.epoch, seq: snap.seq } });
} else {
  $("#status").textContent = `cannot read the document: ${snap.error} (this page needs the invite link the server printed)`;
}
shell.start();

const canWrite = ["writer", "admin"].includes(shell.role);
editor.readOnly = !canWrite;

function publish(update) {
  shell.client.publish(channel, { update: b64(update) }).catch((e) => ($("#status").textContent = `refused: ${e.reason}`));
}
doc.on("update", (update, origin) => origin !== "remote" && publish(update));

function render() {
  const text = ytext.toString();
  if (editor.value === text) return;
  const { selectionStart: a, selectionEnd: b } = editor;
  editor.value = text;
  editor.setSelectionRange(a, b);
}
ytext.observe(render);
render();

editor.addEventListener("input", () => {
  const old = ytext.toString();
  const now = editor.value;
  let p = 0;
  while (p < old.length && p < now.length && old[p] === now[p]) p++;
  let s = 0;
  while (s < old.length - p && s < now.length - p && old[old.length - 1 - s] === now[now.length - 1 - s]) s++;
  doc.transact(() => {
    if (old.length - p - s > 0) ytext.delete(p, old.length - p - s);
    if (now.length - p - s > 0) ytext.insert(p, now.slice(p, now.length - s));
  });
});

setInterval(() => {
  $("#status").textContent = `${ytext.length} characters · ${applied} remote updates applied · ${canWrite ? "editing" : "read-only"}`;
}, 500);
window.collab = { doc, text: () => ytext.toString(), type: (s) => doc.transact(() => ytext.insert(ytext.length, s)) };
