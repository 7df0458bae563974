// Canned replies: typing "/" and a shortcut in the reply box offers the matching ones, filled with the open
// conversation's values; Enter or Tab (or a click) puts one in the box, to read over before sending. The
// Replies tab lists them and lets an agent keep their own (admins also the shared ones).

import { api, conversationPath, isAdmin } from "./api.js";
import { $, announce, h, setText } from "./dom.js";
import { openConversationId } from "./conversation.js";
import { t } from "./i18n.js";
import { currentView } from "./view.js";

const TOKEN = /(^|\s)\/([a-z0-9_-]*)$/; // "/shortcut" just before the caret
const FRESH_MS = 10000;

let filled = { id: null, at: 0, replies: [] };
let matches = [];
let chosen = 0;
let mine = [];
let editing = null; // the reply being edited in the Replies tab; null: a new one

export function initCanned() {
  const box = $("reply-text");
  box.addEventListener("input", suggest);
  box.addEventListener("keydown", onKey, true); // before the composer's own Ctrl+Enter
  box.addEventListener("blur", () => setTimeout(close, 150));
  $("canned-form").addEventListener("submit", save);
  $("canned-new").addEventListener("click", () => edit(null));
  $("canned-delete").addEventListener("click", remove);
}

async function repliesFor(id) {
  if (filled.id !== id || Date.now() - filled.at > FRESH_MS) {
    filled = { id, at: Date.now(), replies: await api("GET", conversationPath(id, "/canned")) };
  }
  return filled.replies;
}

async function suggest() {
  const box = $("reply-text");
  const token = TOKEN.exec(box.value.slice(0, box.selectionStart));
  const id = openConversationId();
  if (!token || !id) return close();
  let replies;
  try {
    replies = await repliesFor(id);
  } catch {
    return close();
  }
  matches = replies.filter((reply) => reply.shortcut.startsWith(token[2])).slice(0, 8);
  chosen = 0;
  render();
}

function render() {
  const list = $("canned-suggest");
  list.hidden = matches.length === 0;
  $("reply-text").setAttribute("aria-expanded", String(!list.hidden));
  list.replaceChildren(...matches.map((reply, index) => h("li", {
    role: "option", id: `canned-option-${index}`, "aria-selected": String(index === chosen),
    onmousedown: (event) => { event.preventDefault(); insert(reply); },
  }, h("strong", {}, `/${reply.shortcut}`), " ", h("span", { className: "muted" }, reply.filled))));
  if (!list.hidden) $("reply-text").setAttribute("aria-activedescendant", `canned-option-${chosen}`);
  else $("reply-text").removeAttribute("aria-activedescendant");
}

function close() {
  matches = [];
  render();
}

function onKey(event) {
  if ($("canned-suggest").hidden) return;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    chosen = (chosen + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
    render();
  } else if ((event.key === "Enter" && !event.ctrlKey && !event.metaKey) || event.key === "Tab") {
    insert(matches[chosen]);
  } else if (event.key === "Escape") {
    close();
  } else {
    return;
  }
  event.preventDefault();
  event.stopPropagation();
}

function insert(reply) {
  const box = $("reply-text");
  const before = box.value.slice(0, box.selectionStart).replace(/\/[a-z0-9_-]*$/, "");
  const after = box.value.slice(box.selectionStart);
  box.value = before + reply.filled + after;
  box.selectionStart = box.selectionEnd = (before + reply.filled).length;
  close();
  box.focus();
  announce(t("Canned reply /{shortcut} inserted.", { shortcut: reply.shortcut }));
}

// ---------------------------------------------------------------- the Replies tab

export async function loadCanned() {
  try {
    mine = await api("GET", "canned");
  } catch (error) {
    if (error.status !== 401) setText("canned-error", error.message);
    return;
  }
  setText("canned-error", "");
  filled = { id: null, at: 0, replies: [] };
  if (currentView() === "canned") renderList();
}

function renderList() {
  $("canned-list").replaceChildren(...mine.map((reply) => h("li", {},
    h("button", { type: "button", className: "answer-row", dataset: { shortcut: reply.shortcut },
      onclick: () => edit(reply) },
    h("span", { className: "answer-id" }, `/${reply.shortcut}`),
    h("span", { className: `pill small ${reply.shared ? "state-shared" : ""}` }, reply.shared ? t("Shared") : t("Yours")),
    h("span", { className: "answer-text muted small" }, reply.text)))));
  $("canned-empty").hidden = mine.length > 0;
  $("canned-shared-row").hidden = !isAdmin();
}

function edit(reply) {
  editing = reply;
  $("canned-editor").hidden = false;
  setText("canned-editor-title", reply ? `/${reply.shortcut}` : t("New canned reply"));
  $("canned-shortcut").value = reply?.shortcut ?? "";
  $("canned-text").value = reply?.text ?? "";
  $("canned-shared").checked = reply?.shared ?? false;
  $("canned-shared").disabled = Boolean(reply);
  const locked = reply?.shared && !isAdmin();
  for (const id of ["canned-shortcut", "canned-text", "canned-save", "canned-delete"]) $(id).disabled = locked;
  $("canned-delete").hidden = !reply;
  setText("canned-form-error", locked ? t("A shared reply: only an admin may change it.") : "");
  $("canned-shortcut").focus();
}

async function save(event) {
  event.preventDefault();
  const body = { shortcut: $("canned-shortcut").value.trim(), text: $("canned-text").value,
    shared: $("canned-shared").checked };
  try {
    const saved = editing ? await api("PUT", `canned/${editing.id}`, body) : await api("POST", "canned", body);
    announce(t("Canned reply /{shortcut} saved.", { shortcut: saved.shortcut }));
    await loadCanned();
    edit(saved);
  } catch (error) {
    if (error.status !== 401) setText("canned-form-error", error.message);
  }
}

async function remove() {
  if (!editing) return;
  try {
    await api("DELETE", `canned/${editing.id}`);
    announce(t("Canned reply /{shortcut} deleted.", { shortcut: editing.shortcut }));
    $("canned-editor").hidden = true;
    editing = null;
    await loadCanned();
  } catch (error) {
    if (error.status !== 401) setText("canned-form-error", error.message);
  }
}
