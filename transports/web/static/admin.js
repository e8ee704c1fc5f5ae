// The admin view: polls /api/admin/connections once a second and renders it; publishes and
// disconnects with the admin token. The token comes in the URL fragment (#token=..., never
// sent to the server in a request line, so never in its access logs), is kept in
// sessionStorage and sent as `Authorization: Bearer` (RFC 6750 §2.1).
const KEY = "transport-lab-admin-token";
const params = new URLSearchParams(location.hash.slice(1));
if (params.get("token")) {
  sessionStorage.setItem(KEY, params.get("token"));
  history.replaceState(null, "", location.pathname + location.search);
}
const token = () => sessionStorage.getItem(KEY) || "";

async function api(path, body) {
  const init = { headers: { Authorization: `Bearer ${token()}` } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status} ${json.error || ""}: ${json.detail || ""}`);
  return json;
}

const $ = (sel) => document.querySelector(sel);
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function seconds(s) {
  return s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}
function status(text, ok) {
  const el = $("#status");
  el.textContent = text;
  el.className = ok ? "ok" : "bad";
}

function render(view) {
  $("#epoch").textContent = view.epoch;
  $("#last-seq").textContent = view.last_seq;
  const tbody = $("#transports tbody");
  tbody.replaceChildren();
  for (const [name, t] of Object.entries(view.transports)) {
    const row = tbody.insertRow();
    row.dataset.transport = name;
    row.dataset.open = t.open;
    cell(row, name);
    cell(row, t.open, "num");
    cell(row, t.accepted, "num");
    cell(row, t.rejected, "num");
    cell(row, Object.entries(t.closed).map(([r, n]) => `${r} ${n}`).join(", ") || "–");
  }
  const conns = $("#connections tbody");
  conns.replaceChildren();
  for (const c of view.connections) {
    const row = conns.insertRow();
    row.dataset.conn = c.conn;
    row.dataset.transport = c.transport;
    for (const v of [c.conn, c.transport, c.client, c.principal, c.channels.join(", ")]) cell(row, v);
    cell(row, seconds(c.duration_s), "num");
    cell(row, c.frames, "num");
    cell(row, c.bytes, "num");
    const td = row.insertCell();
    if (c.disconnectable) {
      const button = document.createElement("button");
      button.textContent = "Disconnect";
      button.className = "disconnect";
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api("/api/admin/disconnect", { conn: c.conn });
          status(`disconnected ${c.conn}`, true);
        } catch (err) {
          status(`disconnect failed: ${err.message}`, false);
        }
        refresh();
      });
      td.append(button);
    }
  }
  const gone = $("#disconnects tbody");
  gone.replaceChildren();
  for (const d of view.disconnects.slice(0, 20)) {
    const row = gone.insertRow();
    row.dataset.conn = d.conn;
    row.dataset.reason = d.reason;
    cell(row, new Date(d.at * 1000).toLocaleTimeString());
    for (const v of [d.conn, d.transport, d.client, d.reason]) cell(row, v);
    cell(row, seconds(d.duration_s), "num");
    cell(row, d.bytes, "num");
  }
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    render(await api("/api/admin/connections"));
    if (!$("#status").textContent.startsWith("disconnected")) status("live", true);
  } catch (err) {
    status(token() ? `error: ${err.message}` : "no admin token: open /admin#token=<token>", false);
  } finally {
    busy = false;
  }
}

$("#publish").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const out = form.querySelector("output");
  try {
    const data = JSON.parse(form.elements.data.value);
    const msg = await api("/api/publish", { topic: form.elements.topic.value, data });
    out.textContent = `published seq ${msg.seq}`;
  } catch (err) {
    out.textContent = `not published: ${err.message}`;
  }
});

refresh();
setInterval(refresh, 1000);
