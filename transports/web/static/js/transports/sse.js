// Server-Sent Events panel: the browser's EventSource with its own retry and Last-Event-ID
// (WHATWG HTML §9.2): after a dropped stream the browser reconnects by itself after the
// server's `retry:` delay and sends the last `id:` it saw, so the server resumes exactly there.
// We only step in when the browser gives up (readyState CLOSED after an HTTP error), after a
// `reset` (the epoch in our URL is stale: reopen with the new one), and when the stream stays
// silent longer than `idleMs()` while the publisher is running (EventSource cannot see the
// server's comment heartbeats, so with no messages there is nothing to watch).

import { Backoff, parse, withQuery } from "./common.js";

export function connectSse(url, panel, { idleMs = () => Infinity } = {}) {
  const backoff = new Backoff(500, 5000);
  let es = null;
  let stopped = false;
  let lastEvent = 0;
  let retry = null;

  function drop() {
    if (!es) return;
    es.onopen = es.onerror = es.onmessage = null;
    es.close();
    es = null;
  }

  function reopen(detail, delay = backoff.next()) {
    drop();
    if (stopped) return;
    panel.setState("reconnecting", detail);
    retry = setTimeout(open, delay);
  }

  function open() {
    retry = null;
    panel.attempt();
    const { after, epoch } = panel.cursor();
    if (panel.state !== "reconnecting") panel.setState("connecting");
    const source = new EventSource(withQuery(url, { after, epoch }));
    es = source;
    lastEvent = Date.now();
    source.onopen = () => {
      lastEvent = Date.now();
      backoff.reset();
      panel.setState("open");
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) reopen("stream failed");
      else panel.setState("reconnecting", "stream dropped, browser retrying");
    };
    source.onmessage = (ev) => {
      lastEvent = Date.now();
      panel.frame(parse(ev.data));
    };
    for (const name of ["hello", "gap", "close"]) {
      source.addEventListener(name, (ev) => {
        lastEvent = Date.now();
        panel.frame(parse(ev.data));
      });
    }
    source.addEventListener("reset", (ev) => {
      panel.frame(parse(ev.data));
      reopen("reopening with the new epoch", 0);
    });
  }

  const tick = setInterval(() => {
    const idle = idleMs();
    if (es && es.readyState === EventSource.OPEN && Date.now() - lastEvent > idle) {
      reopen(`silent for ${(idle / 1000).toFixed(1)} s`);
    }
  }, 500);

  open();
  return {
    stop() {
      stopped = true;
      clearInterval(tick);
      clearTimeout(retry);
      drop();
    },
  };
}
