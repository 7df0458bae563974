// Intents: for each intent of the served model, its golden-set precision and recall, what it is confused with,
// visitors' messages of the last 14 days, messages waiting for review, its answers' example questions and the
// examples agents proposed. Agents propose examples here; admins approve or reject them.

import { api, isAdmin } from "./api.js";
import { $, announce, h, setText } from "./dom.js";
import { t } from "./i18n.js";
import { currentView } from "./view.js";

const STATUS = { proposed: t("Waiting for an admin"), approved: t("Approved"), rejected: t("Rejected") };

let rows = [];
let open = null; // the intent shown in detail

export function initIntentPage() {
  $("intent-stats-filter").addEventListener("input", renderTable);
  $("examples-form").addEventListener("submit", propose);
}

const percent = (value) => (value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`);

export async function loadIntentPage() {
  try {
    rows = await api("GET", "intents/overview");
  } catch (error) {
    if (error.status !== 401) setText("intent-stats-error", error.message);
    return;
  }
  setText("intent-stats-error", "");
  if (currentView() !== "intents") return;
  renderTable();
  if (open) showIntent(open);
}

function renderTable() {
  const query = $("intent-stats-filter").value.trim().toLowerCase();
  const shown = rows.filter((row) => !query || row.name.includes(query));
  $("intent-stats").replaceChildren(
    h("thead", {}, h("tr", {}, [t("Intent"), t("Precision"), t("Recall"), t("Golden messages"), t("Confused with"),
      t("Last 14 days"), t("To review"), t("Examples waiting")].map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, shown.map((row) => h("tr", { dataset: { intent: row.name } },
      h("th", { scope: "row" }, h("button", { type: "button", className: "quiet", onclick: () => showIntent(row.name) },
        row.name)),
      h("td", {}, percent(row.precision)),
      h("td", {}, percent(row.recall)),
      h("td", {}, row.support ?? "–"),
      h("td", {}, row.confused_with.slice(0, 3).map((c) => `${c.intent} (${c.messages})`).join(", ") || "–"),
      h("td", {}, String(row.chosen)),
      h("td", {}, String(row.to_review)),
      h("td", {}, String(row.examples.filter((e) => e.status === "proposed").length))))));
}

function showIntent(name) {
  const row = rows.find((r) => r.name === name);
  if (!row) return;
  open = name;
  $("intent-detail").hidden = false;
  setText("intent-detail-title", name);
  setText("intent-detail-figures", t(
    "Precision {precision}, recall {recall} on the golden set; {chosen} visitor messages in the last 14 days; {review} waiting for review.",
    { precision: percent(row.precision), recall: percent(row.recall), chosen: row.chosen, review: row.to_review }));
  $("intent-answer-examples").replaceChildren(...row.answer_examples.map((text) => h("li", {}, text)));
  $("intent-examples").replaceChildren(...row.examples.map(exampleItem));
  setText("examples-explain", isAdmin() ? t("Your examples are approved at once; the next redistillation learns them.")
    : t("An admin approves your examples; the next redistillation then learns them."));
  setText("examples-error", "");
}

function exampleItem(example) {
  return h("li", { className: "example", dataset: { example: example.id, status: example.status } },
    h("span", {}, example.text), " ",
    h("span", { className: `pill small proposal-status status-${example.status}` }, STATUS[example.status]),
    h("span", { className: "muted small" }, ` ${example.agent !== null && example.agent !== undefined ? t("by {name}", { name: example.agent })
      : t("by a former agent")}`),
    isAdmin() && example.status === "proposed" ? [" ",
      h("button", { type: "button", className: "approve", onclick: () => decide(example, "approve") },
        t("Approve “{text}”", { text: example.text })),
      h("button", { type: "button", className: "quiet", onclick: () => decide(example, "reject") }, t("Reject"))] : null);
}

async function decide(example, action) {
  try {
    await api("POST", `examples/${example.id}/${action}`);
    announce(action === "approve" ? t("Example approved.") : t("Example rejected."));
    await loadIntentPage();
  } catch (error) {
    if (error.status !== 401) setText("examples-error", error.message);
  }
}

async function propose(event) {
  event.preventDefault();
  const texts = $("examples-text").value.split("\n").map((line) => line.trim()).filter(Boolean);
  if (!open || !texts.length) return;
  try {
    await api("POST", `intents/${encodeURIComponent(open)}/examples`, { texts });
    $("examples-text").value = "";
    announce(t("{n} example(s) proposed for {intent}.", { n: texts.length, intent: open }));
    await loadIntentPage();
  } catch (error) {
    if (error.status !== 401) setText("examples-error", error.message);
  }
}
