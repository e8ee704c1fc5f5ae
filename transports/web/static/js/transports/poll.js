// Long-polling panel: a fetch loop, each request carrying the cursor (?after=&epoch=). The
// server answers at once when there is news, else holds the request up to `timeout` seconds;
// an AbortController ends a request that outlives that by 5 s (a blackholed path).

import { Backoff, sleep, withQuery } from "./common.js";

export function connectPoll(url, panel, { timeout = 10 } = {}) {
  const backoff = new Backoff();
  let stopped = false;
  let ctl = null;

  async function loop() {
    panel.setState("connecting");
    while (!stopped) {
      // A new attempt until a request is answered; then every request continues it.
      if (panel.state !== "open") panel.attempt();
      const { after, epoch } = panel.cursor();
      ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), (timeout + 5) * 1000);
      try {
        const res = await fetch(withQuery(url, { after, epoch, timeout }), {
          signal: ctl.signal,
          cache: "no-store",
        });
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          if (body.error === "cursor_ahead") panel.startAt(null, null);
          throw new Error(`HTTP ${res.status} ${body.error ?? ""}`.trim());
        }
        if (panel.state !== "open") panel.setState("open");
        backoff.reset();
        if (res.status === 204) continue;
        const body = await res.json();
        for (const frame of body.messages ?? []) panel.frame(frame);
      } catch (err) {
        if (stopped) return;
        const why = err.name === "AbortError" ? `no answer in ${timeout + 5} s` : err.message;
        panel.setState("reconnecting", why);
        await sleep(backoff.next());
      } finally {
        clearTimeout(timer);
      }
    }
  }

  loop();
  return {
    stop() {
      stopped = true;
      ctl?.abort();
    },
  };
}
