// The dashboard: figures per day over a chosen period (tiles, charts, a table) and the served model's card
// (teacher versus student).

import { api } from "./api.js";
import { barChart, compareBars, lineChart } from "./charts.js";
import { $, h, setText } from "./dom.js";
import { fixed, percent } from "./format.js";
import { t } from "./i18n.js";
import { currentView } from "./view.js";

let soonTimer = null;

export function initDashboard() {
  $("dash-refresh").addEventListener("click", loadDashboard);
  $("dash-days").addEventListener("change", loadDashboard);
}

export function resetDashboard() {
  clearTimeout(soonTimer);
}

/** While it is on screen, reload a while after live traffic (not on every message). */
export function dashboardSoon() {
  if (currentView() !== "dashboard") return;
  clearTimeout(soonTimer);
  soonTimer = setTimeout(loadDashboard, 3000);
}

export async function loadDashboard() {
  const days = $("dash-days").value;
  let stats;
  try {
    stats = await api("GET", `stats?days=${encodeURIComponent(days)}`);
  } catch (error) {
    if (error.status !== 401) setText("dash-error", error.message);
    return;
  }
  setText("dash-error", "");
  renderDashboard(stats);
}

function weighted(rows, value, weight) {
  let sum = 0;
  let total = 0;
  for (const row of rows) {
    if (row[value] === null || row[value] === undefined || !row[weight]) continue;
    sum += row[value] * row[weight];
    total += row[weight];
  }
  return total ? sum / total : null;
}

function renderDashboard({ days: rows, model }) {
  const days = rows.map((r) => r.day);
  const col = (name) => rows.map((r) => r[name]);
  const conversations = rows.reduce((n, r) => n + r.conversations, 0);
  const handoffs = rows.reduce((n, r) => n + r.handoffs, 0);
  const rated = rows.reduce((n, r) => n + r.rated, 0);
  const tiles = [
    [t("Conversations"), String(conversations)],
    [t("Visitor messages"), String(rows.reduce((n, r) => n + r.visitor_messages, 0))],
    [t("Handoff rate"), conversations ? percent(handoffs / conversations) : "–"],
    [t("Fallback rate"), percent(weighted(rows, "fallback_rate", "bot_messages"))],
    [t("Avg. confidence"), fixed(weighted(rows, "average_confidence", "visitor_messages"))],
    [t("CSAT"), rated ? `${fixed(weighted(rows, "csat", "rated"), 1)} / 5` : "–",
      rated ? t("{n} rated", { n: rated }) : t("no ratings")],
  ];
  $("dash-tiles").replaceChildren(...tiles.map(([name, value, note]) => h("div", { className: "tile" },
    h("span", { className: "tile-name" }, name), h("span", { className: "tile-value" }, value),
    note ? h("span", { className: "tile-note" }, note) : null)));

  const period = t("{from} to {to}", { from: days[0], to: days[days.length - 1] });
  const figure = (title, chart, legend = []) => h("figure", { className: "chart-card" },
    h("figcaption", {}, h("span", {}, title),
      legend.length ? h("ul", { className: "legend" }, legend.map(([key, label]) =>
        h("li", {}, h("span", { className: `swatch swatch-${key}`, "aria-hidden": "true" }), label))) : null),
    chart);
  $("charts").replaceChildren(
    figure(t("Conversations per day"), barChart({
      id: "chart-conversations", title: t("Conversations and handoffs per day"),
      description: t("Conversations started and handoffs to an agent per day, {period}.", { period }), days,
      yLabel: t("Count"),
      series: [{ key: "conversations", label: t("conversations"), values: col("conversations") },
        { key: "handoffs", label: t("handoffs"), values: col("handoffs") }],
    }), [["conversations", t("Conversations")], ["handoffs", t("Handoffs")]]),
    figure(t("Handoff and fallback rates"), lineChart({
      id: "chart-rates", title: t("Handoff and fallback rates per day"),
      description: t("Handoffs per conversation and fallbacks per bot message, {period}. Days without traffic are gaps.",
        { period }),
      days, yLabel: t("Rate"), format: (v) => percent(v), min: 0, max: 1,
      series: [{ key: "handoff", label: t("handoff rate"), values: col("handoff_rate").map((v) => (v === null ? null : Math.min(1, v))) },
        { key: "fallback", label: t("fallback rate"), values: col("fallback_rate") }],
    }), [["handoff", t("Handoff rate")], ["fallback", t("Fallback rate")]]),
    figure(t("Average confidence"), lineChart({
      id: "chart-confidence", title: t("Average confidence of visitor messages per day"),
      description: t("Mean top-intent confidence of visitors' messages, {period}.", { period }), days,
      yLabel: t("Confidence"), format: (v) => fixed(v), min: 0, max: 1,
      series: [{ key: "confidence", label: t("average confidence"), values: col("average_confidence") }],
    })),
    figure(t("Customer satisfaction"), lineChart({
      id: "chart-csat", title: t("Average CSAT per day"),
      description: t("Mean visitor rating (1 to 5) of the conversations started each day, {period}.", { period }), days,
      yLabel: t("CSAT (1–5)"), format: (v) => fixed(v, 1), min: 1, max: 5,
      series: [{ key: "csat", label: t("CSAT"), values: col("csat") }],
    })),
  );

  renderModelCard(model);

  const header = [t("Day"), t("Conversations"), t("Visitor msgs"), t("Bot msgs"), t("Handoffs"), t("Handoff rate"),
    t("Fallback rate"), t("Avg. confidence"), t("CSAT"), t("Rated")];
  $("dash-table").replaceChildren(h("table", { className: "data-table" },
    h("caption", { className: "visually-hidden" }, t("Daily figures, {period}", { period })),
    h("thead", {}, h("tr", {}, header.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("th", { scope: "row" }, r.day), h("td", {}, String(r.conversations)), h("td", {}, String(r.visitor_messages)),
      h("td", {}, String(r.bot_messages)), h("td", {}, String(r.handoffs)), h("td", {}, percent(r.handoff_rate)),
      h("td", {}, percent(r.fallback_rate)), h("td", {}, fixed(r.average_confidence)), h("td", {}, fixed(r.csat, 1)),
      h("td", {}, String(r.rated)))))));
}

function millions(n) {
  if (n === null || n === undefined) return "–";
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : String(n);
}

function renderModelCard(model) {
  const { teacher, student } = model;
  const row = (name, pick) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, pick(teacher)), h("td", {}, pick(student)));
  const ratio = (a, b) => (a && b ? a / b : null);
  const smaller = ratio(teacher.disk_mb, student.disk_mb);
  const fewer = ratio(teacher.params, student.params);
  const drop = teacher.accuracy !== null && student.accuracy !== null ? (teacher.accuracy - student.accuracy) * 100 : null;
  $("model-card").replaceChildren(
    h("h2", { id: "model-title" }, `${t("Model")} `, h("span", { className: "version" }, model.version)),
    h("p", { className: "muted small" }, t("Backend {backend}", { backend: model.backend }),
      model.test_messages ? ` · ${t("test set of {n} messages", { n: model.test_messages })}` : ""),
    model.speedup_same_runtime
      ? h("div", { className: "speedup" },
        h("span", { className: "big", id: "model-speedup" }, `${model.speedup_same_runtime.toFixed(1)}×`),
        h("span", {}, ` ${t("faster than the teacher in the same runtime (both int8 ONNX; p50 latency, one message, CPU)")}`),
        model.speedup_p50 ? h("p", { className: "muted small", id: "model-speedup-usual" },
          t("{speedup}× against the teacher as usually run (PyTorch fp32)", { speedup: model.speedup_p50.toFixed(1) })) : null)
      : h("div", { className: "speedup" },
        h("span", { className: "big", id: "model-speedup" }, model.speedup_p50 ? `${model.speedup_p50.toFixed(1)}×` : "–"),
        h("span", {}, ` ${t("faster than the teacher in PyTorch fp32 (p50 latency, one message, CPU; student served as {backend})",
          { backend: model.backend })}`)),
    compareBars({
      id: "chart-accuracy", title: t("Accuracy on the test set: teacher versus student"),
      rows: [{ key: "teacher", label: t("Teacher"), value: teacher.accuracy, text: percent(teacher.accuracy, 1) },
        { key: "student", label: t("Student"), value: student.accuracy, text: percent(student.accuracy, 1) }],
    }),
    h("table", { className: "model-table" },
      h("caption", { className: "visually-hidden" }, t("Teacher and student compared")),
      h("thead", {}, h("tr", {}, h("td", {}), h("th", { scope: "col" }, t("Teacher")), h("th", { scope: "col" }, t("Student (served)")))),
      h("tbody", {},
        row(t("Model"), (s) => s.model ?? "–"),
        row(t("Accuracy"), (s) => percent(s.accuracy, 1)),
        row(t("Parameters"), (s) => millions(s.params)),
        row(t("Size on disk"), (s) => (s.disk_mb === null ? "–" : `${s.disk_mb.toFixed(1)} MB`)),
        row(t("Latency p50"), (s) => (s.latency_ms_p50 === null ? "–" : `${s.latency_ms_p50.toFixed(1)} ms`)))),
    h("p", { className: "small" },
      drop === null ? "" : t("Accuracy {change} points", { change: `${drop >= 0 ? "−" : "+"}${Math.abs(drop).toFixed(1)}` }),
      smaller ? ` · ${t("{ratio}× smaller on disk", { ratio: smaller.toFixed(1) })}` : "",
      fewer ? ` · ${t("{ratio}× fewer parameters", { ratio: fewer.toFixed(1) })}` : ""));
}
