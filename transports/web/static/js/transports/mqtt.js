// MQTT panel: MQTT 5 over WebSocket (subprotocol "mqtt", MQTT v5 §6) to the server's /mqtt
// bridge, using the vendored browser bundle of the npm `mqtt` package (global `mqtt`).
// QoS 1 with a persistent session (clean start off + session expiry, MQTT v5 §3.1.2.4 and
// §3.1.2.11.2): while we are away the broker queues our messages, and on reconnect it delivers
// them — MQTT's resume. The broker has no notion of our seq cursor, so a session that was lost
// (expired, broker restarted without persistence) shows up as a seq gap. Keepalive
// PINGREQ/PINGRESP (§3.1.2.10) is the heartbeat; mqtt.js reconnects by itself.

import { toWs } from "./common.js";

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

export function connectMqtt(url, panel, { topicFilter, keepalive = 5, sessionExpiry = 600 } = {}) {
  if (typeof mqtt === "undefined") {
    panel.setState("error", "the mqtt browser bundle did not load");
    return { stop() {} };
  }
  const decoder = new TextDecoder();
  let first = true;
  panel.setState("connecting");
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
    if (!connack.sessionPresent) {
      // A new session starts at whatever the broker delivers next: take the first message
      // as the base on the very first connect; a lost session later is reported as a gap.
      if (first) panel.startAt(panel.epoch, null);
      client.subscribe(topicFilter, { qos: 1 });
    }
    first = false;
    panel.setState("open");
  });
  client.on("message", (_topic, payload) => {
    let obj = null;
    try {
      obj = JSON.parse(decoder.decode(payload));
    } catch {
      return;
    }
    if (obj && obj.type === "hello" && panel.epoch && obj.epoch && obj.epoch !== panel.epoch) {
      panel.frame({ type: "reset", previous: panel.epoch, epoch: obj.epoch });
      panel.startAt(obj.epoch, null);
      return;
    }
    panel.frame(obj);
  });
  client.on("close", () => panel.state === "open" && panel.setState("reconnecting", "connection closed"));
  client.on("offline", () => panel.setState("reconnecting", "offline"));
  client.on("error", (err) => panel.log(`mqtt error: ${err.message}`, "bad"));
  return {
    stop() {
      client.end(true);
    },
  };
}
