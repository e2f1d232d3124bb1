// A stacked bar chart (calls per series per time bin) with errors in front, drawn as inline SVG.
// Redrawn on resize so text keeps its size at any width.

import { h, svg, fmtNumber, fill } from "./ui.js";

export const PALETTE = ["#2563eb", "#0d9488", "#7c3aed", "#d97706", "#db2777", "#0891b2", "#65a30d", "#9333ea", "#ea580c", "#475569"];
const ERROR_COLOR = "#dc2626";

// The top of the y axis: four equal steps of a round size (whole numbers below 10: these are counts).
function niceMax(v) {
  if (v <= 4) return 4;
  const raw = v / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const steps = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 10].map((m) => m * pow).filter((s) => s >= raw && (s >= 10 || Number.isInteger(s)));
  return 4 * Math.min(...steps);
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

function timeLabel(sec, withDate) {
  const d = new Date(sec * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withDate ? `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hm}` : hm;
}

/**
 * chart(container, { bins: [unix s], binSeconds, series: [{label, values[]}], errors: [], errorsLabel })
 * Returns the element (a figure with the SVG and a legend).
 */
export function stackedChart({ bins, binSeconds, series, errors, errorsLabel, emptyText, height = 240 }) {
  const plot = h("div", { class: "chart-plot" });
  const legend = h("div", { class: "chart-legend" },
    series.map((s, i) => h("span", { class: "legend-item" },
      swatch(PALETTE[i % PALETTE.length]), s.label)),
    h("span", { class: "legend-item" }, swatch(ERROR_COLOR), errorsLabel));
  const fig = h("figure", { class: "chart" }, plot, legend);

  function draw() {
    const width = Math.max(280, plot.clientWidth || 600);
    fill(plot, render(width));
  }

  function render(width) {
    const m = { l: 44, r: 10, t: 10, b: 26 };
    const pw = width - m.l - m.r;
    const ph = height - m.t - m.b;
    const n = bins.length;
    const totals = bins.map((_, i) => series.reduce((acc, s) => acc + (s.values[i] || 0), 0));
    const max = niceMax(Math.max(0, ...totals, ...errors));
    const y = (v) => m.t + ph - (v / max) * ph;
    const slot = n ? pw / n : pw;
    const barW = Math.max(1, Math.min(28, slot * 0.78));
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart-svg" });

    // Grid and y labels.
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4;
      const yy = Math.round(y(v)) + 0.5;
      root.append(svg("line", { x1: m.l, x2: width - m.r, y1: yy, y2: yy, class: k === 0 ? "axis" : "grid" }));
      root.append(svg("text", { x: m.l - 6, y: yy + 4, "text-anchor": "end", class: "tick" },
        fmtNumber(v, v < 10 ? 1 : 0)));
    }
    if (!n || totals.every((v) => v === 0)) {
      root.append(svg("text", { x: m.l + pw / 2, y: m.t + ph / 2, "text-anchor": "middle", class: "chart-empty" }, emptyText));
    }

    // Bars, stacked bottom-up in series order.
    const withDate = n > 0 && bins[n - 1] - bins[0] >= 86400;
    bins.forEach((time, i) => {
      const x = m.l + i * slot + (slot - barW) / 2;
      let base = 0;
      const g = svg("g", { class: "bin" });
      series.forEach((s, si) => {
        const v = s.values[i] || 0;
        if (!v) return;
        const top = y(base + v);
        g.append(svg("rect", { x, y: top, width: barW, height: Math.max(0.5, y(base) - top), fill: PALETTE[si % PALETTE.length] }));
        base += v;
      });
      // A full-height hover target with a native tooltip.
      const lines = [timeLabel(time, true) + ` (${binSeconds / 60} min)`]
        .concat(series.filter((s) => s.values[i]).map((s) => `${s.label}: ${fmtNumber(s.values[i])}`))
        .concat(errors[i] ? [`${errorsLabel}: ${fmtNumber(errors[i])}`] : []);
      g.append(svg("rect", { x: m.l + i * slot, y: m.t, width: slot, height: ph, class: "hover" }, svg("title", {}, lines.join("\n"))));
      root.append(g);
    });

    // Errors: a narrow red bar in front of each bin's stack.
    errors.forEach((v, i) => {
      if (!v) return;
      const w = Math.max(1, barW * 0.4);
      const x = m.l + i * slot + (slot - w) / 2;
      root.append(svg("rect", { x, y: y(v), width: w, height: Math.max(1, y(0) - y(v)), fill: ERROR_COLOR, class: "err-bar", "pointer-events": "none" }));
    });

    // X labels: about one per 110 px.
    if (n) {
      const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(pw / 110))));
      for (let i = 0; i < n; i += every) {
        root.append(svg("text", { x: m.l + i * slot + slot / 2, y: height - 8, "text-anchor": "middle", class: "tick" },
          timeLabel(bins[i], withDate)));
      }
    }
    return root;
  }

  const ro = new ResizeObserver(() => draw());
  ro.observe(plot);
  requestAnimationFrame(draw);
  return fig;
}

function swatch(color) {
  const s = h("span", { class: "swatch" });
  s.style.background = color;
  return s;
}

/** A horizontal meter: value against a limit (limit 0 = none). */
export function meter(value, limit) {
  const outer = h("div", { class: "meter" });
  const inner = h("div", { class: "meter-fill" });
  const pct = limit > 0 ? Math.min(100, (value / limit) * 100) : 0;
  inner.style.width = `${limit > 0 ? pct : 0}%`;
  inner.classList.add(pct >= 90 ? "hot" : pct >= 70 ? "warm" : "cool");
  outer.append(inner);
  return outer;
}
