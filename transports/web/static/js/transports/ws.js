// WebSocket panel: the browser's WebSocket, resuming with ?after=&epoch= on every reconnect.
// Browsers cannot send RFC 6455 pings, so an application-level {"type":"ping"} every few
// seconds (answered by the server with {"type":"pong"}) feeds an idle watchdog: a silently
// dead path (blackhole) is noticed after `idleMs` instead of after the OS TCP timeout.

import { Backoff, parse, toWs, withQuery } from "./common.js";

export function connectWs(url, panel, { pingMs = 2000, idleMs = 6000 } = {}) {
  const backoff = new Backoff();
  let ws = null;
  let stopped = false;
  let lastFrame = 0;
  let retry = null;

  function lost(detail) {
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {}
      ws = null;
    }
    if (stopped) return;
    panel.setState("reconnecting", detail);
    retry = setTimeout(open, backoff.next());
  }

  function open() {
    retry = null;
    panel.attempt();
    const { after, epoch } = panel.cursor();
    if (panel.state !== "reconnecting") panel.setState("connecting");
    const sock = new WebSocket(withQuery(toWs(url), { after, epoch }));
    ws = sock;
    sock.onopen = () => {
      lastFrame = Date.now();
      panel.setState("open");
    };
    sock.onmessage = (ev) => {
      lastFrame = Date.now();
      backoff.reset();
      panel.frame(parse(ev.data));
    };
    sock.onclose = (ev) => {
      if (ev.code === 4409) {
        // cursor_ahead: our cursor belongs to a history that no longer exists; go live.
        panel.startAt(null, null);
      }
      lost(`close ${ev.code}${ev.reason ? " " + ev.reason : ""}`);
    };
  }

  const tick = setInterval(() => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastFrame > idleMs) return lost(`silent for ${idleMs / 1000} s`);
    ws.send(JSON.stringify({ type: "ping" }));
  }, pingMs);

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
