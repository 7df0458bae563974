// Answers: what the bot says for each intent, edited here without redistillation. Every save is a revision
// with its author, time and diff; any revision can be restored. An admin's change is served at once; an
// agent's is a proposal an admin approves in the answer's history.

import { api, isAdmin } from "./api.js";
import { $, announce, h, setText, timeElement } from "./dom.js";
import { ago, decidedBy } from "./format.js";
import { t } from "./i18n.js";
import { currentView } from "./view.js";

const STATUS = { proposed: t("Waiting for an admin"), approved: t("Approved"), rejected: t("Rejected") };
const STATE = { served: t("Served"), retired: t("Retired"), proposed: t("Proposed"), rejected: t("Never served: rejected") };

let list = [];
let intents = [];
let open = null; // the history of the answer being edited; null for a new answer or none

export function initAnswers() {
  $("answers-refresh").addEventListener("click", loadAnswers);
  $("answers-filter").addEventListener("input", renderList);
  $("answer-new").addEventListener("click", () => edit(null));
  $("answer-form").addEventListener("submit", save);
  $("answer-retire").addEventListener("click", retire);
}

export async function loadAnswers() {
  try {
    [list, intents] = await Promise.all([api("GET", "answers"), api("GET", "intents")]);
  } catch (error) {
    if (error.status !== 401) setText("answers-error", error.message);
    return;
  }
  setText("answers-error", "");
  if (currentView() === "answers") renderList();
}

function renderList() {
  const query = $("answers-filter").value.trim().toLowerCase();
  const shown = list.filter(({ template }) => !query || [template.id, template.intent, template.text]
    .some((field) => field.toLowerCase().includes(query)));
  $("answers-list").replaceChildren(...shown.map(({ template, state, pending }) => h("li", {},
    h("button", { type: "button", className: "answer-row", dataset: { id: template.id, state },
      "aria-current": open?.answer.template.id === template.id ? "true" : null,
      onclick: () => openAnswer(template.id) },
      h("span", { className: "answer-id" }, template.id),
      h("span", { className: "chip intent" }, template.intent),
      state !== "served" ? h("span", { className: `pill small state-${state}` }, STATE[state]) : null,
      pending ? h("span", { className: "badge", title: t("Changes waiting for an admin") }, String(pending)) : null,
      h("span", { className: "answer-text muted small" }, template.text)))));
  $("answers-empty").hidden = shown.length > 0;
}

async function openAnswer(id) {
  try {
    open = await api("GET", `answers/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status !== 401) setText("answers-error", error.message);
    return;
  }
  edit(open);
  renderList();
}

function intentChoices(selected) {
  const names = intents.includes(selected) || !selected ? intents : [selected, ...intents];
  return names.map((name) => h("option", { value: name, selected: name === selected }, name));
}

/** Fill the editor with an answer's served content (or empty, for a new one) and show its history. */
function edit(history) {
  open = history;
  const template = history?.answer.template ?? { id: "", intent: "", text: "", examples: [], buttons: [], action: null };
  $("answer-editor").hidden = false;
  setText("answer-editor-title", history ? t("Answer {id}", { id: template.id }) : t("New answer"));
  $("answer-id").value = template.id;
  $("answer-id").readOnly = Boolean(history);
  $("answer-intent").replaceChildren(...intentChoices(template.intent));
  $("answer-text").value = template.text;
  $("answer-examples").value = template.examples.join("\n");
  $("answer-buttons").value = template.buttons.map((b) => `${b.title} | ${b.payload}`).join("\n");
  $("answer-action").value = template.action ?? "";
  $("answer-save").textContent = isAdmin() ? (history ? t("Save and serve") : t("Create and serve"))
    : (history ? t("Propose change") : t("Propose answer"));
  $("answer-retire").hidden = !history || history.answer.state !== "served";
  const state = history ? STATE[history.answer.state] : "";
  setText("answer-state", !history ? "" : history.answer.revision
    ? t("{state} · revision {revision}", { state, revision: history.answer.revision })
    : t("{state} · revision 0 (the model's own)", { state }));
  setText("answer-form-error", "");
  renderHistory();
}

function readForm() {
  const lines = (id) => $(id).value.split("\n").map((line) => line.trim()).filter(Boolean);
  const buttons = lines("answer-buttons").map((line) => {
    const [title, payload = ""] = line.split("|").map((part) => part.trim());
    return { title, payload };
  });
  return {
    id: $("answer-id").value.trim(), intent: $("answer-intent").value, text: $("answer-text").value,
    examples: lines("answer-examples"), buttons, action: $("answer-action").value.trim() || null,
  };
}

async function change(method, path, body, done) {
  setText("answer-form-error", "");
  for (const button of $("answer-editor").querySelectorAll("button")) button.disabled = true;
  try {
    open = await api(method, path, body);
    announce(done(open));
    await loadAnswers();
    edit(open);
  } catch (error) {
    if (error.status !== 401) setText("answer-form-error", error.message);
  } finally {
    for (const button of $("answer-editor").querySelectorAll("button")) button.disabled = false;
  }
}

const outcome = (history) => (history.revisions[0]?.status === "approved"
  ? t("{id} is served.", { id: history.answer.template.id }) : t("{id}: change proposed.", { id: history.answer.template.id }));

function save(event) {
  event.preventDefault();
  const answer = readForm();
  if (open) change("PUT", `answers/${encodeURIComponent(open.answer.template.id)}`, { answer, base: open.answer.revision }, outcome);
  else change("POST", "answers", { answer, base: 0 }, outcome);
}

function retire() {
  const { id } = open.answer.template;
  change("POST", `answers/${encodeURIComponent(id)}/retire`, { base: open.answer.revision },
    (history) => (history.answer.state === "retired" ? t("{id} retired.", { id }) : t("{id}: retirement proposed.", { id })));
}

function diffView(lines) {
  return h("pre", { className: "diff" }, lines.slice(2).map((line) => h("span", {
    className: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : null,
  }, `${line}\n`)));
}

function renderHistory() {
  const items = (open?.revisions ?? []).map((revision) => {
    const id = open.answer.template.id;
    const decided = revision.decided_at && revision.decider !== revision.author
      ? [` · ${decidedBy(revision.status, revision.decider)} `, timeElement(revision.decided_at, ago(revision.decided_at))]
      : [];
    const restored = revision.restored_from !== null
      ? ` · ${revision.restored_from ? t("restores revision {revision}", { revision: revision.restored_from })
        : t("restores the model's own")}` : "";
    return h("li", { className: "revision", dataset: { revision: revision.id, status: revision.status } },
      h("p", { className: "meta small" }, h("strong", {}, t("Revision {id}", { id: revision.id })),
        h("span", { className: `pill small proposal-status status-${revision.status}` }, STATUS[revision.status]),
        ` ${revision.author !== null && revision.author !== undefined ? t("by {name}", { name: revision.author })
          : t("by an import")} `, timeElement(revision.created_at, ago(revision.created_at)),
        restored, ...decided),
      diffView(revision.diff),
      h("div", { className: "review-actions" },
        revision.template && revision.id !== open.answer.revision ? h("button", {
          type: "button", className: "restore",
          onclick: () => change("POST", `answers/${encodeURIComponent(id)}/revisions/${revision.id}/restore`,
            { base: open.answer.revision }, outcome),
        }, t("Restore revision {id}", { id: revision.id })) : null,
        isAdmin() && revision.status === "proposed" ? [
          h("button", { type: "button", className: "primary approve",
            onclick: () => change("POST", `answers/revisions/${revision.id}/approve`, undefined, outcome) },
          t("Approve revision {id}", { id: revision.id })),
          h("button", { type: "button", className: "reject",
            onclick: () => change("POST", `answers/revisions/${revision.id}/reject`, undefined,
              () => t("Revision {id} rejected.", { id: revision.id })) },
          t("Reject revision {id}", { id: revision.id }))] : null));
  });
  const seed = open?.seed && open.answer.revision !== 0
    ? h("li", { className: "revision" }, h("p", { className: "meta small" }, h("strong", {}, t("The model's own version"))),
      h("div", { className: "review-actions" }, h("button", { type: "button", className: "restore",
        onclick: () => change("POST", `answers/${encodeURIComponent(open.answer.template.id)}/revisions/0/restore`,
          { base: open.answer.revision }, outcome) }, t("Restore the model's own version"))))
    : null;
  $("answer-history").replaceChildren(...items, ...(seed ? [seed] : []));
  $("answer-history-section").hidden = !open;
}
