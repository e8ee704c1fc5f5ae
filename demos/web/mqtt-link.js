// The MQTT link of ChannelClient: MQTT 5 over WebSocket (subprotocol "mqtt") to the server's
// /mqtt bridge with the vendored mqtt.js (global `mqtt`, loaded by the page).
//
// One topic per channel, `<prefix>/<channel>`, QoS 1, a clean session: after every connect we
// subscribe first and then backfill each channel from /mqtt/replay?channel=C&after=SEQ, while
// holding back the live messages that arrive meanwhile, so nothing published in between is
// missed and the overlap is dropped by seq (client.js). The retained `<prefix>/_meta/<channel>`
// hello tells the channel's epoch: a new one means the server lost that history (a reset).
// A publish goes to the inbound topic `<prefix>/_in/<user>/<channel>` with an MQTT 5 Response
// Topic (§4.10); the server validates it, stores it with a seq and answers the ack there.

import { auth, parse, url } from "./util.js";

export function mqtt(c) {
  const lib = globalThis.mqtt;
  const { mqtt: brokerUrl, mqttHttp, mqttPrefix: prefix } = c.endpoints;
  const clientId = "tl-demo-" + Math.random().toString(36).slice(2, 10);
  const reply = `${prefix}/_ack/${clientId}`;
  const decoder = new TextDecoder();
  const held = new Map(); // channel -> live frames held while its backfill runs
  let connected = false;

  if (!lib) {
    c.setState("error", "the mqtt browser bundle did not load");
    return { subscribe() {}, unsubscribe() {}, publish() {}, stop() {} };
  }
  let client = null;
  let user = "anonymous";

  // Writers connect as the demo's shared broker user (the broker's ACL lets named users
  // write their own inbound topic only) and carry their personal token in the data;
  // observers connect anonymously, and the broker lets them read only.
  (async () => {
    let creds = null;
    if (c.token && c.token.split(".")[1] === "w") {
      const res = await fetch(url(mqttHttp, "/demos/api/mqtt", []), { headers: auth(c) });
      if (res.ok) creds = await res.json();
    }
    if (creds) user = creds.username;
    client = lib.connect(brokerUrl, {
      protocolVersion: 5,
      clean: true,
      clientId,
      keepalive: 5,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      resubscribe: false,
      ...(creds ? { username: creds.username, password: creds.password } : {}),
    });
    wire(client);
  })().catch((e) => c.setState("reconnecting", e.message));

  async function backfill(channel) {
    held.set(channel, []);
    try {
      const cur = c.cursors.get(channel);
      if (!cur) return;
      if (cur.seq === null) {
        // Live only: start at the channel's newest seq.
        const res = await fetch(url(mqttHttp, `/api/channels/${encodeURIComponent(channel)}`, []), { headers: auth(c) });
        const info = await res.json();
        if (cur.seq === null) Object.assign(cur, { epoch: info.epoch ?? null, seq: info.last_seq ?? 0 });
        return;
      }
      for (let round = 0; round < 50; round++) {
        const params = [["channel", channel], ["after", cur.seq], ["epoch", cur.epoch], ["limit", 1000]];
        const res = await fetch(url(mqttHttp, "/mqtt/replay", params), { headers: auth(c), cache: "no-store" });
        const body = await res.json();
        if (!res.ok) throw new Error(`replay: ${body.error}`);
        if (cur.epoch === null) cur.epoch = body.epoch;
        cur.liveFrom = body.last_seq;
        for (const f of body.messages) c.frame(f);
        if (body.messages.length < 1000) return;
      }
    } finally {
      const live = held.get(channel) ?? [];
      held.delete(channel);
      for (const [f, n] of live) c.frame(f, n);
    }
  }

  function topics(channel) {
    return [`${prefix}/${channel}`, `${prefix}/_meta/${channel}`];
  }

  function wire(client) {
  client.on("connect", async () => {
    connected = true;
    const channels = [...c.cursors.keys()];
    client.subscribe([reply, ...channels.flatMap(topics)], { qos: 1 }, async (err) => {
      if (err) return c.setState("reconnecting", err.message);
      try {
        await Promise.all(channels.map(backfill));
        c.opened();
      } catch (e) {
        c.setState("reconnecting", e.message);
        client.stream?.destroy?.();
      }
    });
  });
  client.on("message", (topic, payload) => {
    const text = decoder.decode(payload);
    const obj = parse(text);
    if (!obj) return;
    if (topic === reply) return c.frame(obj);
    const meta = `${prefix}/_meta/`;
    if (topic.startsWith(meta)) {
      const channel = topic.slice(meta.length);
      const cur = c.cursors.get(channel);
      if (cur && cur.epoch && obj.epoch && obj.epoch !== cur.epoch) {
        c.frame({ type: "reset", channel, previous: cur.epoch, epoch: obj.epoch });
        backfill(channel);
      }
      return;
    }
    const channel = obj.channel ?? topic.slice(prefix.length + 1);
    const frame = { ...obj, channel };
    const bytes = text.length + topic.length + 5;
    if (held.has(channel)) held.get(channel).push([frame, bytes]);
    else c.frame(frame, bytes);
  });
  client.on("close", () => {
    connected = false;
    if (c.state === "open") c.setState("reconnecting", "connection closed");
  });
  client.on("offline", () => c.setState("reconnecting", "offline"));
  client.on("error", (e) => c.on.error?.({ reason: "mqtt", detail: e.message }));
  }

  return {
    subscribe(channel) {
      if (connected) client.subscribe(topics(channel), { qos: 1 }, () => backfill(channel));
    },
    unsubscribe(channel) {
      if (connected) client.unsubscribe(topics(channel));
    },
    publish(entry) {
      if (!connected) return; // sent again by c.opened() after the next connect
      const topic = `${prefix}/_in/${user}/${entry.channel}`;
      const data = user === "anonymous" ? entry.data : { ...entry.data, token: c.token };
      const body = JSON.stringify({ data, id: entry.id });
      client.publish(topic, body, { qos: 1, properties: { responseTopic: reply } });
    },
    stop() {
      connected = false;
      client?.end(true);
    },
  };
}
