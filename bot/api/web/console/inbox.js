// The inbox: filters, the conversation list (refetched on live events, highlighted when new, with unread dots)
// and the status counts. It knows which row is open (setActive), not what the conversation view shows.

import { api, download, getAgent, getToken, isAdmin } from "./api.js";
import { $, announce, h, setText, timeElement } from "./dom.js";
import { ago, fixed, readJson, visitorName } from "./format.js";
import { t } from "./i18n.js";
import { ConversationStatus, STATUSES, statusPill } from "./status.js";

const PAGE = 50;
const MAX_LIMIT = 200;
const FRESH_MS = 4000;

const filters = { status: "", low_confidence: false, thumbs_down: false, mine: false, intent: "", q: "", since: "", until: "" };
let limit = PAGE;
let rows = [];
let total = 0;
let counts = {};
let waitingIds = null; // ids seen waiting at the last fetch (null before the first): to announce new ones
let knownIds = null;
const fresh = new Map(); // id → until when its row is highlighted as new
const announcedWaiting = new Set(); // conversations already announced as waiting (status event or refetch)
let activeId = null; // the conversation open next to the list
let seq = 0; // only the answer to the latest request is shown
let due = 0; // when the scheduled refetch runs (0: none)
let refetchTimer = null;
let searchTimer = null;
let openRow = () => {};

/** Bind the filters and the list; open(id) is what clicking a row does. */
export function initInbox({ open }) {
  openRow = open;
  for (const button of document.querySelectorAll(".status-filter button")) {
    button.addEventListener("click", () => setStatusFilter(button.dataset.status));
  }
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    readFilters();
    loadInbox();
  });
  $("filter-q").addEventListener("input", () => {
    readFilters();
    clearTimeout(searchTimer);
    searchTimer = setTimeout(loadInbox, 300);
  });
  for (const id of ["filter-low", "filter-thumbs", "filter-mine", "filter-intent", "filter-since", "filter-until"]) {
    $(id).addEventListener("change", () => {
      readFilters();
      loadInbox();
    });
  }
  $("inbox-more").addEventListener("click", () => {
    limit = Math.min(MAX_LIMIT, limit + PAGE);
    loadInbox();
  });
  $("inbox-list").addEventListener("keydown", onInboxKey);
  $("export-jsonl").addEventListener("click", () => exportAs("jsonl"));
  $("export-csv").addEventListener("click", () => exportAs("csv"));
}

/** At logout: forget the rows and what was seen waiting, cancel pending fetches (filters stay). */
export function resetInbox() {
  rows = [];
  waitingIds = null;
  knownIds = null;
  clearTimeout(refetchTimer);
  clearTimeout(searchTimer);
  due = 0;
}

export function setActive(id) {
  activeId = id;
}

// ---- read and unread: the last message id seen per conversation, per agent, in localStorage

function seenKey() {
  return `console.seen.${getAgent()?.id ?? "?"}`;
}

function seen() {
  return readJson(localStorage.getItem(seenKey())) || {};
}

export function markSeen(id, messageId) {
  if (!messageId) return;
  const all = seen();
  if ((all[id] ?? 0) >= messageId) return;
  all[id] = messageId;
  const ids = Object.keys(all);
  if (ids.length > 2000) ids.slice(0, ids.length - 2000).forEach((old) => delete all[old]);
  localStorage.setItem(seenKey(), JSON.stringify(all));
}

function isUnread(conversation, seenIds) {
  const last = conversation.last_message?.id;
  if (!last || conversation.id === activeId) return false;
  const seenId = seenIds[conversation.id];
  if (seenId === undefined) return conversation.status !== ConversationStatus.RESOLVED;
  return last > seenId;
}

// ---- fetching

function inboxQuery() {
  const f = filters;
  const params = new URLSearchParams();
  if (f.status) params.set("status", f.status);
  if (f.low_confidence) params.set("low_confidence", "true");
  if (f.thumbs_down) params.set("thumbs_down", "true");
  if (f.mine) params.set("mine", "true");
  if (f.intent) params.set("intent", f.intent);
  if (f.q.trim()) params.set("q", f.q.trim());
  if (f.since) params.set("since", f.since);
  if (f.until) {
    const end = new Date(`${f.until}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1); // "to" includes that day
    params.set("until", end.toISOString().slice(0, 10));
  }
  params.set("limit", String(limit));
  return params;
}

async function exportAs(format) {
  setText("export-error", "");
  const params = inboxQuery();
  params.delete("limit");
  params.set("format", format);
  try {
    const name = await download(`exports/conversations?${params}`, `conversations.${format}`);
    announce(t("Downloaded {name}.", { name }));
  } catch (error) {
    if (error.status !== 401) setText("export-error", error.message);
  }
}

export async function loadInbox() {
  $("export").hidden = !isAdmin();
  const mySeq = ++seq;
  let page;
  try {
    page = await api("GET", `conversations?${inboxQuery()}`);
  } catch (error) {
    if (error.status !== 401 && mySeq === seq) setText("inbox-error", error.message);
    return;
  }
  if (mySeq !== seq || !getToken()) return; // a newer request went out meanwhile
  setText("inbox-error", "");
  const found = page.conversations;
  const ids = new Set(found.map((c) => c.id));
  const waiting = new Set(found.filter((c) => c.status === ConversationStatus.WAITING).map((c) => c.id));
  if (knownIds) {
    for (const c of found) {
      if (!knownIds.has(c.id)) fresh.set(c.id, Date.now() + FRESH_MS);
      if (c.status === ConversationStatus.WAITING && !waitingIds.has(c.id)) {
        announceWaiting(c.id);
      } else if (!knownIds.has(c.id)) {
        announce(t("New conversation in the inbox: {visitor}", { visitor: visitorName(c.id) }));
      }
    }
  }
  knownIds = ids;
  waitingIds = waiting;
  rows = found;
  total = page.total;
  counts = page.counts;
  renderCounts();
  renderInbox();
  if (fresh.size) {
    setTimeout(() => {
      for (const [id, until] of fresh) if (until <= Date.now()) fresh.delete(id);
      document.querySelectorAll(".conv-row.fresh").forEach((row) => {
        if (!fresh.has(row.dataset.conversationId)) row.classList.remove("fresh");
      });
    }, FRESH_MS + 50);
  }
}

function announceWaiting(id) {
  if (announcedWaiting.has(id)) return;
  announcedWaiting.add(id);
  announce(t("{visitor} is waiting for an agent.", { visitor: visitorName(id) }));
}

/** Refetch soon; a refetch already due earlier is kept (steady traffic cannot postpone it forever). */
export function scheduleInbox(ms = 250) {
  const at = Date.now() + ms;
  if (due && due <= at) return;
  due = at;
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(() => {
    due = 0;
    loadInbox();
  }, ms);
}

// ---- live events: patch the row at once, then refetch (counts, filters and new conversations come from the server)

export function onInboxMessage(id, message) {
  const row = rows.find((c) => c.id === id);
  if (row) {
    row.last_message = message;
    row.updated_at = message.created_at;
    if (message.role === "user") row.messages += 1;
    rows = [row, ...rows.filter((c) => c !== row)];
    renderInbox();
  }
  scheduleInbox(row ? 600 : 150);
}

export function onInboxStatus(id, status, agent, agentId) {
  const row = rows.find((c) => c.id === id);
  if (row) {
    Object.assign(row, { status, agent, agent_id: agentId });
    renderInbox();
  }
  if (status === ConversationStatus.WAITING) announceWaiting(id);
  else announcedWaiting.delete(id);
  scheduleInbox(150);
}

// ---- drawing

function renderCounts() {
  const known = counts || {};
  let all = 0;
  for (const status of STATUSES) {
    const n = known[status] ?? 0;
    all += n;
    setText(`count-${status}`, String(n));
  }
  setText("count-all", String(all));
  const waiting = known[ConversationStatus.WAITING] ?? 0;
  const badge = $("tab-waiting");
  badge.textContent = String(waiting);
  badge.hidden = waiting === 0;
  badge.title = t("{n} waiting for an agent", { n: waiting });
  document.title = waiting ? t("({n}) Support console", { n: waiting }) : t("Support console");
}

function previewOf(conversation) {
  const last = conversation.last_message;
  if (!last) return t("No messages yet");
  if (last.role === "bot") return t("Bot: {text}", { text: last.text });
  if (last.role === "agent") {
    // an agent's name is the server's: only the fallback is translated
    return last.agent != null ? `${last.agent}: ${last.text}` : t("Agent: {text}", { text: last.text });
  }
  return last.text;
}

function inboxRow(c, seenIds) {
  const unread = isUnread(c, seenIds);
  const flags = [];
  if (c.low_confidence) flags.push(h("span", { className: "flag low", title: t("Lowest confidence of a visitor message") },
    t("low {confidence}", { confidence: fixed(c.lowest_confidence) })));
  if (c.thumbs_down) flags.push(h("span", { className: "flag thumbs", title: t("The visitor gave a thumbs-down") }, t("thumbs-down")));
  if (c.reviewed) flags.push(h("span", { className: "flag reviewed", title: t("Reviewed") }, t("✓ reviewed")));
  if (c.csat) flags.push(h("span", { className: "flag csat", title: t("Visitor's rating (1–5)") }, t("CSAT {score}", { score: c.csat })));
  if (c.status === ConversationStatus.WAITING && c.agent) flags.push(h("span", { className: "flag offered", title: t("Offered to this agent in turn; anyone may take it") }, t("Offered to {agent}", { agent: c.agent })));
  if (c.offline_message) flags.push(h("span", { className: "flag offline", title: t("Handed over outside office hours: the visitor was asked for an e-mail address") }, t("Offline message")));
  if (c.language) flags.push(h("span", { className: "flag language", title: t("The visitor writes in a language the bot does not know") }, t("Language: {language}", { language: c.language })));
  flags.push(h("span", { className: "flag count", title: t("Visitor messages") }, t("{n} msg", { n: c.messages })));
  const classes = ["conv-row", `row-${c.status}`];
  if (unread) classes.push("unread");
  if (c.id === activeId) classes.push("active");
  if ((fresh.get(c.id) ?? 0) > Date.now()) classes.push("fresh");
  return h("li", {},
    h("button", {
      type: "button", className: classes.join(" "), dataset: { conversationId: c.id },
      "aria-current": c.id === activeId ? "true" : null,
      onclick: () => openRow(c.id),
    },
    h("span", { className: "row-top" },
      unread ? h("span", { className: "dot", title: t("New messages") }, h("span", { className: "visually-hidden" }, t("unread"))) : null,
      h("span", { className: "who" }, visitorName(c.id)),
      statusPill(c, "small"),
      h("span", { className: "when" }, timeElement(c.updated_at, ago(c.updated_at)))),
    h("span", { className: "preview" }, previewOf(c)),
    h("span", { className: "flags" }, flags)));
}

export function renderInbox() {
  const list = $("inbox-list");
  const focused = document.activeElement?.closest?.(".conv-row")?.dataset.conversationId;
  const seenIds = seen();
  list.replaceChildren(...rows.map((c) => inboxRow(c, seenIds)));
  if (!rows.length) list.append(h("li", { className: "empty small" }, t("No conversations match.")));
  if (focused) list.querySelector(`.conv-row[data-conversation-id="${CSS.escape(focused)}"]`)?.focus();
  const shown = rows.length;
  setText("inbox-summary", total > shown ? t("Showing {shown} of {total}", { shown, total })
    : total === 1 ? t("{n} conversation", { n: total }) : t("{n} conversations", { n: total }));
  $("inbox-more").hidden = !(total > shown && limit < MAX_LIMIT);
}

/** Focus a conversation's row (after Escape closes it). */
export function focusRow(id) {
  $("inbox-list").querySelector(`.conv-row[data-conversation-id="${CSS.escape(id)}"]`)?.focus();
}

function onInboxKey(event) {
  if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
  const buttons = [...$("inbox-list").querySelectorAll(".conv-row")];
  if (!buttons.length) return;
  const index = buttons.indexOf(document.activeElement);
  let next;
  if (event.key === "ArrowDown") next = buttons[Math.min(buttons.length - 1, index + 1)];
  else if (event.key === "ArrowUp") next = buttons[Math.max(0, index - 1)];
  else if (event.key === "Home") next = buttons[0];
  else next = buttons[buttons.length - 1];
  event.preventDefault();
  next.focus();
}

function readFilters() {
  const f = filters;
  f.q = $("filter-q").value;
  f.low_confidence = $("filter-low").checked;
  f.thumbs_down = $("filter-thumbs").checked;
  f.mine = $("filter-mine").checked;
  f.intent = $("filter-intent").value;
  f.since = $("filter-since").value;
  f.until = $("filter-until").value;
  limit = PAGE;
}

function setStatusFilter(status) {
  filters.status = status;
  limit = PAGE;
  for (const button of document.querySelectorAll(".status-filter button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === status));
  }
  loadInbox();
}
