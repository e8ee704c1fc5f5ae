// The five connections behind ChannelClient (client.js). Each link factory takes the client
// and returns {subscribe(ch), unsubscribe(ch), publish(entry), stop()}; it reports frames
// with client.frame(obj, bytes) and calls client.opened() whenever it is (again) connected.
//
// - ws, webrtc: one multi-channel connection; subscribe/unsubscribe/publish are frames.
// - sse: an EventSource on ?channel=A&channel=B&cursor=TOKEN (its own Last-Event-ID reconnect
//   resumes every channel); a change of channels reopens it; publishes are POSTs.
// - poll: a fetch loop carrying the cursor token; publishes are POSTs.
// - mqtt: MQTT 5 over WebSocket (the vendored mqtt.js), a topic per channel, a backfill from
//   /mqtt/replay after each connect, publishes to the inbound topic with a Response Topic.
// The token never goes in a URL (URLs are logged and leak through Referer; OWASP, and the
// server refuses ?access_token=): fetches send `Authorization: Bearer`; a WebSocket offers it
// as the subprotocol `bearer.<token>` next to `transport-lab` (the one header a browser's
// WebSocket can set; RFC 6455 §4.1); an EventSource, which can set no header, opens with a
// single-use ticket (30 s) from POST /api/tickets, fetched again for every (re)open.

import { Backoff, auth, parse, url, wsUrl } from "./util.js";
import { mqtt } from "./mqtt-link.js";

const subscribeFrame = (c, channel) => {
  const cur = c.cursors.get(channel);
  return { type: "subscribe", channel, after: cur?.seq ?? null, epoch: cur?.epoch ?? null };
};

/** A single-use ticket for an EventSource (POST /api/tickets, docs/security.md). */
async function ticket(c, base) {
  const res = await fetch(url(base, "/api/tickets", []), { method: "POST", headers: auth(c), cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`ticket: HTTP ${res.status} ${body.error ?? ""}`);
  return body.ticket;
}

/** POST a publish (SSE and long polling); network failures retry with the same id. */
function httpPublisher(c, base) {
  const backoff = new Backoff(300, 3000);
  return async function send(entry) {
    for (;;) {
      if (!c.outbox.has(entry.id)) return;
      try {
        const res = await fetch(url(base, `/api/channels/${encodeURIComponent(entry.channel)}/messages`, []), {
          method: "POST",
          headers: { "content-type": "application/json", ...auth(c) },
          body: JSON.stringify({ data: entry.data, id: entry.id }),
        });
        const body = await res.json().catch(() => ({}));
        if (res.ok) c.frame(body);
        else if (res.status >= 500 && res.status !== 501) throw new Error(`HTTP ${res.status}`);
        else c.frame({ type: "error", id: entry.id, reason: body.error, detail: body.detail });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, backoff.next()));
      }
    }
  };
}

/** A link over one bidirectional message connection (WebSocket, data channel). */
function framed(c, openConn, { pingMs = 3000, idleMs = 9000 } = {}) {
  const backoff = new Backoff();
  let conn = null;
  let live = false;
  let last = 0;
  let timer = null;
  let stopped = false;
  const send = (obj) => live && conn.send(JSON.stringify(obj));

  function lost(detail) {
    live = false;
    conn?.close();
    conn = null;
    if (stopped) return;
    c.setState("reconnecting", detail);
    timer = setTimeout(open, backoff.next());
  }
  function open() {
    if (stopped) return;
    if (c.state !== "reconnecting") c.setState("connecting");
    conn = openConn({
      onopen() {
        live = true;
        last = Date.now();
        backoff.reset();
        const channels = [...c.cursors.keys()];
        if (channels.length === 0) send({ type: "ping" }); // opens a multi-channel connection
        for (const ch of channels) send(subscribeFrame(c, ch));
        c.opened();
      },
      onmessage(text) {
        last = Date.now();
        c.frame(parse(text), text.length);
      },
      onclose(detail) {
        if (conn) lost(detail);
      },
    });
  }
  const tick = setInterval(() => {
    if (!live) return;
    if (Date.now() - last > idleMs) return lost(`silent for ${idleMs / 1000} s`);
    send({ type: "ping" });
  }, pingMs);
  open();
  return {
    subscribe: (ch) => send(subscribeFrame(c, ch)),
    unsubscribe: (ch) => send({ type: "unsubscribe", channel: ch }),
    publish: (e) => send({ type: "publish", channel: e.channel, data: e.data, id: e.id }),
    stop() {
      stopped = true;
      clearInterval(tick);
      clearTimeout(timer);
      live = false;
      conn?.close();
      conn = null;
    },
  };
}

function ws(c) {
  return framed(c, (h) => {
    const target = url(c.endpoints.ws, "/ws", [["channel", ""]]);
    const sock = new WebSocket(wsUrl(target), c.token ? ["transport-lab", `bearer.${c.token}`] : []);
    sock.onopen = h.onopen;
    sock.onmessage = (ev) => h.onmessage(ev.data);
    sock.onclose = (ev) => h.onclose(`close ${ev.code} ${ev.reason}`);
    return { send: (t) => sock.readyState === 1 && sock.send(t), close: () => ((sock.onclose = null), sock.close()) };
  });
}

function webrtc(c) {
  return framed(
    c,
    (h) => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      // Unordered + no retransmissions = UDP-like delivery (RFC 8831 §6.1); the cursors demo's lesson.
      const opts = c.ordered ? { ordered: true } : { ordered: false, maxRetransmits: 0 };
      const ch = pc.createDataChannel("feed", opts);
      let closed = false;
      const close = (why) => {
        if (closed) return;
        closed = true;
        pc.close();
        h.onclose(why);
      };
      ch.onopen = h.onopen;
      ch.onmessage = (ev) => h.onmessage(ev.data);
      ch.onclose = () => close("channel closed");
      pc.onconnectionstatechange = () => {
        if (["disconnected", "failed"].includes(pc.connectionState)) close(`peer ${pc.connectionState}`);
      };
      (async () => {
        await pc.setLocalDescription(await pc.createOffer());
        await new Promise((resolve) => {
          if (pc.iceGatheringState === "complete") return resolve();
          pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
          setTimeout(resolve, 2000);
        });
        const res = await fetch(c.endpoints.webrtc, {
          method: "POST",
          headers: { "content-type": "application/json", ...auth(c) },
          body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
        });
        if (!res.ok) throw new Error(`signalling HTTP ${res.status}`);
        await pc.setRemoteDescription(await res.json());
      })().catch((e) => close(e.message));
      setTimeout(() => ch.readyState !== "open" && close("not open after 10 s"), 10000);
      return {
        send: (t) => ch.readyState === "open" && ch.send(t),
        close: () => {
          closed = true;
          pc.close();
        },
      };
    },
    { pingMs: 3000, idleMs: 12000 },
  );
}

function sse(c) {
  const post = httpPublisher(c, c.endpoints.sse);
  let es = null;
  let stopped = false;
  let timer = null;
  const backoff = new Backoff(500, 4000);
  let opening = 0; // a newer open() supersedes one still waiting for its ticket
  const retry = (why) => {
    c.setState("reconnecting", why);
    clearTimeout(timer);
    timer = setTimeout(open, backoff.next());
  };
  async function open() {
    const mine = ++opening;
    es?.close();
    es = null;
    if (stopped) return;
    const channels = [...c.cursors.keys()];
    if (channels.length === 0) return c.opened();
    const params = channels.map((ch) => ["channel", ch]);
    const token = c.token_of(channels);
    if (token.replace(/,/g, "")) params.push(["cursor", token]);
    if (c.token) {
      try {
        params.push(["ticket", await ticket(c, c.endpoints.sse)]);
      } catch (err) {
        if (mine === opening && !stopped) retry(err.message);
        return;
      }
      if (mine !== opening || stopped) return;
    }
    const source = new EventSource(url(c.endpoints.sse, "/sse", params));
    es = source;
    source.onopen = () => (backoff.reset(), c.opened());
    source.onerror = () => {
      if (es !== source) return;
      // A ticket works once: the browser's own retry would reuse a spent one, so every
      // reopen is ours, with a fresh ticket (and the cursors as they are now).
      if (c.token || source.readyState === EventSource.CLOSED) {
        source.close();
        retry("stream failed");
      } else c.setState("reconnecting", "browser retrying");
    };
    source.onmessage = (ev) => c.frame(parse(ev.data), ev.data.length + ev.lastEventId.length + 12);
    for (const name of ["hello", "gap", "join", "leave", "close"]) {
      source.addEventListener(name, (ev) => c.frame(parse(ev.data)));
    }
    // The URL's cursor is stale after a reset: reopen with the new epoch.
    source.addEventListener("reset", (ev) => (c.frame(parse(ev.data)), open()));
  }
  open();
  return {
    subscribe: open,
    unsubscribe: open,
    publish: post,
    stop() {
      stopped = true;
      clearTimeout(timer);
      es?.close();
    },
  };
}

function poll(c, timeout = 10) {
  const post = httpPublisher(c, c.endpoints.poll);
  const backoff = new Backoff();
  let stopped = false;
  let ctl = null;
  let changed = false;
  let first = true; // the first answer may be a replay: no latency figures for it
  const change = () => {
    changed = true;
    ctl?.abort();
  };
  (async () => {
    c.setState("connecting");
    while (!stopped) {
      const channels = [...c.cursors.keys()];
      if (channels.length === 0) {
        c.opened();
        await new Promise((r) => setTimeout(r, 300));
        continue;
      }
      const params = [...channels.map((ch) => ["channel", ch]), ["cursor", c.token_of(channels)], ["timeout", timeout]];
      ctl = new AbortController();
      changed = false;
      const guard = setTimeout(() => ctl.abort(), (timeout + 5) * 1000);
      try {
        const res = await fetch(url(c.endpoints.poll, "/poll", params), { signal: ctl.signal, headers: auth(c), cache: "no-store" });
        if (res.status === 204) continue;
        const text = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status} ${text.slice(0, 80)}`);
        if (c.state !== "open") c.opened();
        backoff.reset();
        const body = JSON.parse(text);
        if (first) {
          for (const ch of channels) if (c.cursors.get(ch)) c.cursors.get(ch).liveFrom = body.channels[ch]?.last_seq;
          first = false;
        }
        const per = body.messages.length ? text.length / body.messages.length : 0;
        for (const f of body.messages) c.frame(f, per);
        // The server's cursor token is authoritative (gaps and resets are folded into it).
        const parts = body.cursor.split(",");
        channels.forEach((ch, i) => {
          const cur = c.cursors.get(ch);
          const [seq, epoch] = parts[i].split(".");
          if (cur && seq !== "") Object.assign(cur, { seq: Math.max(cur.seq ?? 0, +seq), epoch: epoch ?? cur.epoch });
        });
      } catch (err) {
        if (stopped) return;
        if (changed) continue; // aborted to poll a new set of channels
        c.setState("reconnecting", err.name === "AbortError" ? "no answer" : err.message);
        await new Promise((r) => setTimeout(r, backoff.next()));
      } finally {
        clearTimeout(guard);
      }
    }
  })();
  return {
    subscribe: change,
    unsubscribe: change,
    publish: post,
    stop() {
      stopped = true;
      ctl?.abort();
    },
  };
}

export const LINKS = { ws, sse, poll, webrtc, mqtt };
