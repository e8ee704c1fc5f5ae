// MQTT panel: MQTT 5 over WebSocket (subprotocol "mqtt", MQTT v5 §6) to the server's /mqtt
// bridge, using the vendored browser bundle of the npm `mqtt` package (global `mqtt`).
// QoS 1 with a persistent session (clean start off + session expiry, MQTT v5 §3.1.2.4 and
// §3.1.2.11.2): while we are away the broker queues our messages, and on reconnect it delivers
// them — MQTT's resume. The broker has no notion of our seq cursor, so a session that was lost
// (expired, broker restarted without persistence) shows up as a seq gap. Keepalive
// PINGREQ/PINGRESP (§3.1.2.10) is the heartbeat; mqtt.js reconnects by itself.
//
// When the broker has no session for us (first visit, or it was lost), we subscribe and then
// backfill from the server's history (GET /mqtt/replay?after=&epoch=) while holding back the
// live messages that arrive meanwhile, so the panel starts at the same seq as the others and a
// lost session costs no message. The retained `<prefix>/_meta` hello only tells the epoch.

import { toWs, withQuery } from "./common.js";

function clientId() {
  // Stable per browser tab, so a page reload resumes the same session.
  const key = "transport-lab-mqtt-client-id";
  let id = sessionStorage.getItem(key);
  if (!id) {
    id = "tl-dash-" + Math.random().toString(36).slice(2, 10);
    sessionStorage.setItem(key, id);
  }
  return id;
}

async function backfill(replayUrl, panel, limit = 1000, rounds = 50) {
  for (let i = 0; i < rounds; i++) {
    const { after, epoch } = panel.cursor();
    const res = await fetch(withQuery(replayUrl, { after, epoch, limit }), { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(`replay: HTTP ${res.status} ${body.error ?? ""}`);
    // History by definition: published before this page subscribed (replayed, not latency).
    for (const frame of body.messages) panel.frame(frame, Date.now(), true);
    if (body.messages.length < limit || (panel.lastSeq ?? 0) >= body.last_seq) return;
  }
}

export function connectMqtt(
  url,
  panel,
  { topicFilter, replayUrl, keepalive = 5, sessionExpiry = 600 } = {},
) {
  if (typeof mqtt === "undefined") {
    panel.setState("error", "the mqtt browser bundle did not load");
    return { stop() {} };
  }
  const decoder = new TextDecoder();
  let held = null; // live messages held back while a backfill runs
  let overlap = -1; // seqs up to here came from the backfill: the broker may still bring them
  panel.setState("connecting");
  panel.attempt();
  const client = mqtt.connect(toWs(url), {
    protocolVersion: 5,
    clean: false,
    clientId: clientId(),
    keepalive,
    reconnectPeriod: 1000,
    connectTimeout: 5000,
    resubscribe: false,
    properties: { sessionExpiryInterval: sessionExpiry },
  });
  client.on("connect", (connack) => {
    panel.setState("open");
    if (connack.sessionPresent) return;
    if (panel.lastSeq === null || !replayUrl) {
      // Nothing to resume from: the first message delivered is the start.
      client.subscribe(topicFilter, { qos: 1 });
      return;
    }
    held = [];
    client.subscribe(topicFilter, { qos: 1 }, async (err) => {
      try {
        if (err) throw err;
        await backfill(replayUrl, panel);
        panel.log(`no broker session: backfilled from history to seq ${panel.lastSeq}`);
      } catch (e) {
        panel.log(`backfill failed: ${e.message}`, "bad");
      } finally {
        const live = held ?? [];
        held = null;
        // The backfill reads history directly and can run ahead of the broker path; the
        // two overlap by design, so those seqs are not counted as duplicates.
        overlap = panel.lastSeq ?? -1;
        for (const [obj, at] of live) if (!(obj?.seq <= overlap)) panel.frame(obj, at);
      }
    });
  });
  client.on("message", (_topic, payload) => {
    let obj = null;
    try {
      obj = JSON.parse(decoder.decode(payload));
    } catch {
      return;
    }
    if (obj && obj.type === "hello") {
      // Retained: its last_seq is as old as the last broker (re)connect, not a cursor.
      if (panel.epoch && obj.epoch && obj.epoch !== panel.epoch) {
        panel.frame({ type: "reset", previous: panel.epoch, epoch: obj.epoch });
        panel.startAt(obj.epoch, null);
        overlap = -1;
      }
      return;
    }
    // Held messages keep the time they arrived: the hold is the page ordering them behind
    // the backfill, not time the transport took.
    if (held) held.push([obj, Date.now()]);
    else if (!(obj?.seq <= overlap)) panel.frame(obj);
  });
  client.on("close", () => panel.state === "open" && panel.setState("reconnecting", "connection closed"));
  client.on("reconnect", () => panel.attempt());
  client.on("offline", () => panel.setState("reconnecting", "offline"));
  client.on("error", (err) => panel.log(`mqtt error: ${err.message}`, "bad"));
  return {
    stop() {
      client.end(true);
    },
  };
}
