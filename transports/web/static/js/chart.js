// A small latency chart on a <canvas>: the last samples as bars on a log scale (so a 1 ms
// loopback and a 500 ms injected delay both stay readable), with the p50 (solid) and p99
// (dashed) as lines and a legend saying so. The scale follows the data: from the decade below
// the fastest sample to the decade above the slowest (at least 0.1–10 ms), up to 100 s; a
// sample beyond that is drawn to the top and counted in the corner ("▲ N > 100 s"), never
// clipped silently.

const FLOOR = 0.1; // ms: the lowest the scale goes
const CEILING = 100000; // ms: the highest
const LABEL_W = 44; // px for the y labels

/** The p-th percentile (nearest rank) of an ascending array. */
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** The decades [lo, hi] (ms) the chart shows for samples `sorted` (ascending). */
export function scale(sorted) {
  if (!sorted.length) return [1, 100];
  // From the 1st percentile, so one odd fast sample does not add an empty decade.
  const low = sorted[Math.floor(sorted.length / 100)];
  const lo = Math.max(FLOOR, 10 ** Math.floor(Math.log10(Math.max(FLOOR, low))));
  let hi = Math.min(CEILING, 10 ** Math.ceil(Math.log10(Math.max(FLOOR, sorted[sorted.length - 1]))));
  if (hi <= lo) hi = lo * 10;
  if (hi / lo < 100) hi = Math.min(CEILING, lo * 100);
  return [lo, hi];
}

const label = (ms) => (ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`);

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
    const px = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
    const font = Math.round(Math.max(11, px * 0.8));
    const sorted = [...samples].sort((a, b) => a - b);
    const [lo, hi] = scale(sorted);
    const top = font * 0.6; // room for the top label
    const y = (ms) => {
      const v = Math.log10(Math.min(hi, Math.max(lo, ms)));
      return top + (h - top) * (1 - (v - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
    };
    g.font = `${font}px system-ui, sans-serif`;
    g.textBaseline = "middle";
    g.fillStyle = ink;
    // A grid line per decade; labels on as many as fit without touching (top one always).
    const decades = [];
    for (let ms = lo; ms <= hi * 1.001; ms *= 10) decades.push(+ms.toPrecision(1));
    const gap = (h - top) / Math.max(1, decades.length - 1);
    const every = Math.max(1, Math.ceil((font * 1.6) / gap));
    decades.forEach((ms, i) => {
      const yy = Math.round(y(ms)) + 0.5;
      g.globalAlpha = 0.3;
      g.fillRect(LABEL_W, yy, w - LABEL_W, 1);
      if ((decades.length - 1 - i) % every === 0) {
        g.globalAlpha = 0.85;
        g.fillText(label(ms), 0, Math.min(h - font / 2, Math.max(font / 2, yy)));
      }
    });
    g.globalAlpha = 1;
    if (!samples.length) {
      g.fillText("no live messages yet", LABEL_W + 8, h / 2);
      return;
    }
    // The samples fill the plot's width (a fresh page with few samples is not a mostly empty
    // chart); at most one per pixel, newest on the right.
    const plotW = w - LABEL_W - 2;
    const shown = samples.slice(-Math.floor(plotW));
    const barW = plotW / Math.max(shown.length, 40);
    g.fillStyle = accent;
    let over = 0;
    shown.forEach((ms, i) => {
      if (ms > hi) over += 1;
      const yy = y(ms);
      const x = w - (shown.length - i) * barW;
      g.fillRect(x, yy, Math.max(1, barW - (barW > 3 ? 1 : 0)), h - yy);
    });
    g.lineWidth = 2;
    g.strokeStyle = ink;
    for (const [p, dash] of [
      [50, []],
      [99, [6, 4]],
    ]) {
      g.setLineDash(dash);
      const yy = y(percentile(sorted, p));
      g.beginPath();
      g.moveTo(LABEL_W, yy);
      g.lineTo(w, yy);
      g.stroke();
    }
    // Legend, top right on a white box so bars do not hide it.
    const items = [["p50", []], ["p99", [6, 4]]];
    const text = over ? `▲ ${over} > ${label(hi)}` : "";
    const itemW = font * 4.2;
    const boxW = itemW * items.length + (text ? g.measureText(text).width + font : 0) + 6;
    const bx = w - boxW - 2;
    g.setLineDash([]);
    g.fillStyle = "rgba(255,255,255,0.85)";
    g.fillRect(bx, 1, boxW, font * 1.4);
    items.forEach(([name, dash], i) => {
      const x = bx + 4 + i * itemW;
      g.setLineDash(dash);
      g.beginPath();
      g.moveTo(x, font * 0.7 + 1);
      g.lineTo(x + font * 1.4, font * 0.7 + 1);
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = ink;
      g.fillText(name, x + font * 1.7, font * 0.7 + 1);
    });
    if (text) {
      g.fillStyle = "#D55E00";
      g.fillText(text, bx + 4 + itemW * items.length, font * 0.7 + 1);
    }
  }
}
