// WebRTC panel: an RTCPeerConnection with one data channel "feed" created by the browser.
// Signalling is one round trip: we wait for ICE gathering to complete (no trickle), POST the
// offer as {"sdp","type"} and apply the answer. The first channel message is our cursor
// {"type":"subscribe","after","epoch"}. The server sends {"type":"ping"} periodically (SCTP
// heartbeats are invisible to pages), which feeds the idle watchdog; every reconnect is a new
// peer connection with fresh signalling.

import { Backoff, parse } from "./common.js";

function gathered(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms); // send what we have: host candidates come first
  });
}

export function connectWebRtc(url, panel, { idleMs = 8000, openMs = 10000, channel = {} } = {}) {
  const backoff = new Backoff();
  let pc = null;
  let stopped = false;
  let lastFrame = 0;
  let opened = 0;
  let retry = null;

  function lost(detail) {
    if (pc) {
      pc.onconnectionstatechange = null;
      for (const ch of [pc._feed]) if (ch) ch.onclose = ch.onmessage = ch.onopen = null;
      pc.close();
      pc = null;
    }
    if (stopped) return;
    panel.setState("reconnecting", detail);
    retry = setTimeout(open, backoff.next());
  }

  async function open() {
    retry = null;
    panel.attempt();
    if (panel.state !== "reconnecting") panel.setState("connecting");
    const peer = new RTCPeerConnection({ iceServers: [] });
    pc = peer;
    opened = Date.now();
    const ch = peer.createDataChannel("feed", { ordered: true, ...channel });
    peer._feed = ch;
    ch.onopen = () => {
      const { after, epoch } = panel.cursor();
      ch.send(JSON.stringify({ type: "subscribe", after, epoch }));
      lastFrame = Date.now();
      panel.setState("open");
    };
    ch.onmessage = (ev) => {
      lastFrame = Date.now();
      backoff.reset();
      panel.frame(parse(ev.data));
    };
    ch.onclose = () => pc === peer && lost("channel closed");
    peer.onconnectionstatechange = () => {
      const s = peer.connectionState;
      // "disconnected" = ICE consent checks failing (RFC 7675): on a lab link that means
      // the path is gone; waiting for "failed" would take another ~25 s.
      if (pc === peer && ["disconnected", "failed", "closed"].includes(s)) lost(`peer ${s}`);
    };
    try {
      await peer.setLocalDescription(await peer.createOffer());
      await gathered(peer, 2000);
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sdp: peer.localDescription.sdp, type: peer.localDescription.type }),
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(`HTTP ${res.status} ${body.error ?? ""}`.trim());
      }
      if (pc !== peer) return;
      await peer.setRemoteDescription(await res.json());
    } catch (err) {
      if (pc === peer) lost(`signalling: ${err.message}`);
    }
  }

  const tick = setInterval(() => {
    if (!pc) return;
    const ch = pc._feed;
    if (ch.readyState === "open" && Date.now() - lastFrame > idleMs) {
      lost(`silent for ${idleMs / 1000} s`);
    } else if (ch.readyState === "connecting" && Date.now() - opened > openMs) {
      lost(`channel not open after ${openMs / 1000} s`);
    }
  }, 500);

  open();
  return {
    stop() {
      stopped = true;
      clearInterval(tick);
      clearTimeout(retry);
      lost("stopped");
    },
  };
}
