// Small SVG charts (no library): a time series line and horizontal bars. Each chart is an
// <svg role="img"> with a text summary as its accessible name; the numbers are also printed.
import { s } from "./dom.js";
import { num } from "./fmt.js";

const W = 320;

/**
 * points: [{at: Date|string, value: number}] over [start, end]; band: [low, high] shaded as
 * the normal range. Gaps longer than `gapMs` break the line (the band was off).
 */
export function lineChart(points, { start, end, band = null, label = "", unit = "", digits = 0, height = 90, gapMs = 45 * 60e3 } = {}) {
  const H = height;
  const pad = { l: 30, r: 6, t: 6, b: 16 };
  const pts = points
    .map((p) => ({ x: new Date(p.at).getTime(), y: Number(p.value) }))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .sort((a, b) => a.x - b.x);
  const x0 = new Date(start).getTime();
  const x1 = new Date(end).getTime();
  const ys = pts.map((p) => p.y).concat(band ?? []);
  let lo = ys.length ? Math.min(...ys) : 0;
  let hi = ys.length ? Math.max(...ys) : 1;
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const m = (hi - lo) * 0.1;
  lo -= m;
  hi += m;
  const X = (x) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (W - pad.l - pad.r);
  const Y = (y) => pad.t + (1 - (y - lo) / (hi - lo)) * (H - pad.t - pad.b);
  let d = "";
  let prev = null;
  for (const p of pts) {
    d += `${prev === null || p.x - prev > gapMs ? "M" : "L"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`;
    prev = p.x;
  }
  const last = pts.at(-1);
  const summary = `${label}: ${last ? `${num(last.y, digits)} ${unit}`.trim() : "–"}`;
  const ticks = [0, 6, 12, 18, 24].map((hrs) => x0 + (hrs / 24) * (x1 - x0));
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart line-chart", role: "img", "aria-label": summary, preserveAspectRatio: "none" },
    s("title", {}, summary),
    band ? s("rect", { class: "band", x: pad.l, width: W - pad.l - pad.r, y: Y(band[1]), height: Math.max(0, Y(band[0]) - Y(band[1])) }) : null,
    s("line", { class: "axis", x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b }),
    s("text", { class: "tick", x: pad.l - 3, y: Y(hi - m) + 4, "text-anchor": "end" }, num(hi - m, 0)),
    s("text", { class: "tick", x: pad.l - 3, y: Y(lo + m) + 4, "text-anchor": "end" }, num(lo + m, 0)),
    ticks.map((tx, i) =>
      s("text", { class: "tick", x: X(tx), y: H - 3, "text-anchor": i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle" },
        new Date(tx).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }))),
    s("path", { class: "series", d }),
    last ? s("circle", { class: "last", cx: X(last.x), cy: Y(last.y), r: 2.5 }) : null,
  );
}

/** entries: [{label, value, text?}]; bars scaled to the largest value (or `max`). */
export function barChart(entries, { max = null, label = "", format = (v) => num(v, 0) } = {}) {
  const row = 22;
  const H = Math.max(1, entries.length) * row + 4;
  const top = max ?? Math.max(1e-9, ...entries.map((e) => Number(e.value) || 0));
  const lw = 110;
  const summary = `${label}: ${entries.map((e) => `${e.label} ${e.text ?? format(e.value)}`).join(", ")}`;
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart bar-chart", role: "img", "aria-label": summary },
    s("title", {}, summary),
    entries.map((e, i) => {
      const w = Math.max(0, ((Number(e.value) || 0) / top) * (W - lw - 60));
      const y = 2 + i * row;
      return s("g", {},
        s("text", { class: "bar-label", x: lw - 6, y: y + 14, "text-anchor": "end" }, e.label),
        s("rect", { class: `bar ${e.cls ?? ""}`, x: lw, y: y + 3, width: w, height: row - 8, rx: 2 }),
        s("text", { class: "bar-value", x: lw + w + 4, y: y + 14 }, e.text ?? format(e.value)));
    }),
  );
}
