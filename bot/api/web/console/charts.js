// Small hand-drawn SVG charts for the dashboard: grouped bars and lines over days, with axes, tick labels,
// axis titles, a <title> tooltip on every data point and data-day / data-value attributes on each mark.
// Every label is set with textContent: nothing here parses HTML.

import { t } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
const W = 560;
const H = 230;
const M = { top: 14, right: 14, bottom: 44, left: 52 };
let uid = 0;

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

/** Evenly spaced tick values from min to a "nice" max that covers the data. */
function scale(values, { min = 0, max = null, integer = false, ticks = 4 } = {}) {
  if (max !== null) {
    const step = (max - min) / ticks;
    return { min, max, ticks: Array.from({ length: ticks + 1 }, (_, i) => min + i * step) };
  }
  const top = Math.max(0, ...values.filter((v) => v !== null && v !== undefined));
  let step = niceStep(top / ticks);
  if (integer) step = Math.max(1, Math.round(step));
  const upper = Math.max(step, Math.ceil(top / step) * step);
  const list = [];
  for (let v = min; v <= upper + step / 1000; v += step) list.push(v);
  return { min, max: upper, ticks: list };
}

function shortDay(day) {
  return day.slice(5); // YYYY-MM-DD → MM-DD
}

/** The frame every chart shares: title/desc for assistive tech, grid, y ticks, x day labels, axis titles. */
function frame({ id, title, description, days, yScale, yLabel, format }) {
  const key = `${id}-${++uid}`;
  const root = svg("svg", {
    id, class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", preserveAspectRatio: "xMidYMid meet",
    "aria-labelledby": `${key}-title ${key}-desc`,
  }, svg("title", { id: `${key}-title` }, title), svg("desc", { id: `${key}-desc` }, description));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const band = plotW / Math.max(1, days.length);
  const x = (i) => M.left + band * (i + 0.5);
  const y = (v) => M.top + plotH - ((v - yScale.min) / (yScale.max - yScale.min || 1)) * plotH;

  const grid = svg("g", { class: "grid", "aria-hidden": "true" });
  for (const tick of yScale.ticks) {
    grid.append(svg("line", { x1: M.left, x2: W - M.right, y1: y(tick), y2: y(tick) }));
    grid.append(svg("text", { class: "tick y-tick", x: M.left - 6, y: y(tick) + 3.5, "text-anchor": "end" },
      format(tick)));
  }
  const every = Math.ceil(days.length / 8);
  days.forEach((day, i) => {
    if ((days.length - 1 - i) % every !== 0) return; // always label the last day (today)
    grid.append(svg("text", { class: "tick x-tick", x: x(i), y: H - M.bottom + 15, "text-anchor": "middle" },
      shortDay(day)));
  });
  grid.append(svg("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));
  grid.append(svg("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
  grid.append(svg("text", { class: "axis-title", x: M.left + plotW / 2, y: H - 6, "text-anchor": "middle" },
    t("Day (UTC)")));
  grid.append(svg("text", {
    class: "axis-title", x: 0, y: 0, "text-anchor": "middle",
    transform: `translate(13 ${M.top + plotH / 2}) rotate(-90)`,
  }, yLabel));
  root.append(grid);
  return { root, x, y, band };
}

/**
 * Grouped bars, one group per day.
 * series: [{key, label, values: number[]}]
 */
export function barChart({ id, title, description, days, series, yLabel, format = String }) {
  const yScale = scale(series.flatMap((s) => s.values), { integer: true });
  const { root, x, y, band } = frame({ id, title, description, days, yScale, yLabel, format });
  const groupW = Math.min(band * 0.8, 36);
  const barW = groupW / series.length;
  series.forEach((s, si) => {
    const g = svg("g", { class: `series series-${s.key}` });
    s.values.forEach((value, i) => {
      const v = value ?? 0;
      const top = y(v);
      g.append(svg("rect", {
        class: `bar bar-${s.key}`, x: x(i) - groupW / 2 + si * barW, y: top, width: Math.max(1, barW - 1),
        height: Math.max(0, y(0) - top), "data-day": days[i], "data-value": v,
      }, svg("title", {}, `${days[i]}: ${s.label} ${format(v)}`)));
    });
    root.append(g);
  });
  return root;
}

/**
 * Lines with a dot per day that has a value; days without one (null) leave a gap.
 * series: [{key, label, values: (number|null)[]}]
 */
export function lineChart({ id, title, description, days, series, yLabel, format = String, min = 0, max = null }) {
  const yScale = scale(series.flatMap((s) => s.values), { min, max });
  const { root, x, y } = frame({ id, title, description, days, yScale, yLabel, format });
  for (const s of series) {
    const g = svg("g", { class: `series series-${s.key}` });
    let d = "";
    let pen = false;
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)} ${y(value).toFixed(1)} `;
      pen = true;
    });
    if (d) g.append(svg("path", { class: `line line-${s.key}`, d: d.trim() }));
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) return;
      g.append(svg("circle", {
        class: `point point-${s.key}`, cx: x(i), cy: y(value), r: 3.5, "data-day": days[i], "data-value": value,
      }, svg("title", {}, `${days[i]}: ${s.label} ${format(value)}`)));
    });
    root.append(g);
  }
  return root;
}

/** Two horizontal bars (teacher vs student accuracy) on a 0–100 % scale. */
export function compareBars({ id, title, rows }) {
  const width = 300;
  const rowH = 22;
  const left = 70;
  const height = rows.length * rowH + 8;
  const root = svg("svg", {
    id, class: "chart compare", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title,
  });
  rows.forEach((row, i) => {
    const top = 4 + i * rowH;
    const span = width - left - 52;
    const value = row.value ?? 0;
    root.append(svg("text", { class: "tick", x: left - 6, y: top + 13, "text-anchor": "end" }, row.label));
    root.append(svg("rect", { class: "track", x: left, y: top + 3, width: span, height: 12, rx: 2 }));
    root.append(svg("rect", {
      class: `bar bar-${row.key}`, x: left, y: top + 3, width: span * value, height: 12, rx: 2,
      "data-value": value,
    }, svg("title", {}, `${row.label}: ${row.text}`)));
    root.append(svg("text", { class: "tick value", x: left + span + 6, y: top + 13 }, row.text));
  });
  return root;
}
