// A small latency chart on a <canvas>: the last samples as bars on a log scale (so a 1 ms
// loopback and a 500 ms injected delay both stay readable), with the p50 and p99 as lines.


const LOG_MIN = 0.1; // ms at the bottom of the scale
const LOG_MAX = 10000; // ms at the top

/** The p-th percentile (nearest rank) of an ascending array. */
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function y(ms, h) {
  const v = Math.log10(Math.min(LOG_MAX, Math.max(LOG_MIN, ms)));
  const lo = Math.log10(LOG_MIN);
  const hi = Math.log10(LOG_MAX);
  return h - ((v - lo) / (hi - lo)) * h;
}

export class LatencyChart {
  constructor(canvas) {
    this.canvas = canvas;
  }

  draw(samples) {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr)) c.width = Math.round(w * dpr);
    if (c.height !== Math.round(h * dpr)) c.height = Math.round(h * dpr);
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(c);
    const ink = css.getPropertyValue("--ink").trim() || "#222";
    const accent = css.getPropertyValue("--accent").trim() || "#0072B2";
    // decade grid lines: 1 ms, 10 ms, 100 ms, 1 s
    g.font = "12px system-ui, sans-serif";
    g.fillStyle = ink;
    g.globalAlpha = 0.45;
    for (const ms of [1, 10, 100, 1000]) {
      const yy = Math.round(y(ms, h)) + 0.5;
      g.fillRect(28, yy, w - 28, 1);
      g.fillText(ms >= 1000 ? `${ms / 1000}s` : `${ms}`, 0, yy + 4);
    }
    g.globalAlpha = 1;
    const shown = samples.slice(-Math.floor(w - 30));
    g.fillStyle = accent;
    const x0 = w - shown.length;
    shown.forEach((ms, i) => {
      const top = y(ms, h);
      g.fillRect(x0 + i, top, 1, h - top);
    });
    if (samples.length) {
      const sorted = [...samples].sort((a, b) => a - b);
      g.lineWidth = 2;
      for (const [p, dash] of [
        [50, []],
        [99, [6, 4]],
      ]) {
        g.strokeStyle = ink;
        g.setLineDash(dash);
        const yy = y(percentile(sorted, p), h);
        g.beginPath();
        g.moveTo(28, yy);
        g.lineTo(w, yy);
        g.stroke();
      }
      g.setLineDash([]);
    }
  }
}
