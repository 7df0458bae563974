// The support agents' console: log in, inbox (live), conversation view and actions, review queue, proposed
// intents (admins approve or reject them), dashboard.
//
// Plain modern JavaScript, no build step, no dependencies. Everything that comes from the server (messages,
// notes, names, intents) is put on the page with textContent / text nodes: never as HTML.

import { barChart, compareBars, lineChart } from "./charts.js";

const ROOT = new URL("../", location.href); // the page lives at /console/: the API at /api/…
const TOKEN_KEY = "console.token";
const AGENT_KEY = "console.agent";
const PAGE = 50;
const TYPING_EVERY_MS = 2500;
const TYPING_SHOWN_MS = 4000;
const FRESH_MS = 4000;
const STATUSES = ["bot", "waiting_for_agent", "with_agent", "resolved"];
const STATUS_LABELS = { bot: "Bot", waiting_for_agent: "Waiting", resolved: "Resolved" };
const DECISIONS = {
  answer: "answered", clarify: "asked to clarify", fallback: "fell back", handoff: "handed off",
  form: "form", silent: "silent (agent has it)",
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  agent: readJson(sessionStorage.getItem(AGENT_KEY)),
  intents: [],
  filters: { status: "", low_confidence: false, thumbs_down: false, mine: false, intent: "", q: "", since: "", until: "" },
  limit: PAGE,
  inbox: [],
  early: [], // live messages of the conversation being opened, kept until its transcript has loaded
  total: 0,
  counts: {},
  waitingIds: null, // ids seen waiting at the last fetch (null before the first): to announce new ones
  knownIds: null,
  fresh: new Map(), // id → until when its row is highlighted as new
  announcedWaiting: new Set(), // conversations already announced as waiting (status event or refetch)
  openId: null,
  open: null, // the open conversation's transcript
  view: "inbox",
  review: [],
  proposals: [],
  socket: null,
  reconnectDelay: 1000,
  reconnectTimer: null,
  everReady: false,
  lastTypingSent: 0,
  typingTimer: null,
  inboxSeq: 0,
  inboxDue: 0,
  timers: {},
};

// ---------------------------------------------------------------- helpers

function readJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

const $ = (id) => document.getElementById(id);

/** Build an element; string children become text nodes (never HTML). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return node;
}

function setText(id, text) {
  $(id).textContent = text ?? "";
}

/** Timestamps from SQLite come without a zone; they are UTC. */
function parseTime(value) {
  if (!value) return null;
  return new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(value) ? value : `${value}Z`);
}

function ago(value) {
  const date = parseTime(value);
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return "now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`;
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

function clock(value) {
  const date = parseTime(value);
  return date ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
}

function timeElement(value, text) {
  const date = parseTime(value);
  return h("time", { datetime: date ? date.toISOString() : null, title: date ? date.toLocaleString() : null },
    text ?? clock(value));
}

const fixed = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const percent = (value, digits = 0) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`);

function visitorName(id) {
  return `Visitor ${String(id).slice(0, 6)}`;
}

function announce(message) {
  const line = h("p", {}, message);
  const region = $("announcer");
  region.append(line);
  while (region.childNodes.length > 5) region.firstChild.remove();
}

function debounce(name, ms, fn) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(fn, ms);
}

function ownedElsewhere(conversation) {
  return conversation.status === "with_agent" && conversation.agent_id !== null && conversation.agent_id !== undefined
    && conversation.agent_id !== state.agent?.id;
}

function mine(conversation) {
  return conversation.status === "with_agent" && conversation.agent_id === state.agent?.id;
}

function statusText(conversation) {
  if (conversation.status === "with_agent") {
    if (mine(conversation)) return "With you";
    return conversation.agent ? `With ${conversation.agent}` : "With an agent";
  }
  return STATUS_LABELS[conversation.status] ?? conversation.status;
}

function statusPill(conversation, extra = "") {
  return h("span", { className: `pill status-${conversation.status} ${extra}`.trim() }, statusText(conversation));
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token && path !== "login") headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(`api/agent/${path}`, ROOT), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check the connection and try again.");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401 && path !== "login") {
    endSession("Your session has ended. Please log in again.");
    throw new ApiError(401, data?.detail || "not logged in");
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.detail || `${response.status} ${response.statusText}`.trim());
  }
  return data;
}

const conversationPath = (id, rest = "") => `conversations/${encodeURIComponent(id)}${rest}`;

// ---------------------------------------------------------------- session

function showLogin(info = "") {
  $("app").hidden = true;
  $("login-screen").hidden = false;
  setText("login-info", info);
  setText("login-error", "");
  $("login-password").value = "";
  $("login-username").focus();
}

function endSession(info) {
  state.token = null;
  state.agent = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(AGENT_KEY);
  closeLive();
  state.openId = null;
  state.open = null;
  state.inbox = [];
  state.waitingIds = null;
  state.knownIds = null;
  state.everReady = false;
  Object.values(state.timers).forEach(clearTimeout);
  state.inboxDue = 0;
  showLogin(info);
}

async function onLogin(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  setText("login-info", "");
  if (!username || !password) {
    setText("login-error", "Enter your username and password.");
    return;
  }
  $("login-submit").disabled = true;
  try {
    const result = await api("POST", "login", { username, password });
    state.token = result.token;
    state.agent = result.agent;
    sessionStorage.setItem(TOKEN_KEY, result.token);
    sessionStorage.setItem(AGENT_KEY, JSON.stringify(result.agent));
    setText("login-error", "");
    startApp();
  } catch (error) {
    setText("login-error", error.message);
    $("login-password").select();
  } finally {
    $("login-submit").disabled = false;
  }
}

async function onLogout() {
  try {
    await api("POST", "logout");
  } catch {
    // the token dies on the server or has already; either way this console forgets it
  }
  endSession("You have logged out.");
}

function startApp() {
  $("login-screen").hidden = true;
  $("app").hidden = false;
  setText("me", state.agent ? state.agent.display_name : "");
  $("me").title = isAdmin() ? "Admin" : "Agent";
  state.view = null;
  loadIntents();
  loadInbox();
  loadReview();
  loadProposals();
  connectLive();
  route();
}

async function boot() {
  bindEvents();
  if (!state.token) {
    showLogin();
    return;
  }
  try {
    state.agent = await api("GET", "me"); // a 401 here returns to the login screen
    sessionStorage.setItem(AGENT_KEY, JSON.stringify(state.agent));
    startApp();
  } catch (error) {
    if (error.status !== 401) {
      showLogin(error.message);
    }
  }
}

// ---------------------------------------------------------------- views and routing

function route() {
  const [view = "inbox", id] = location.hash.replace(/^#\/?/, "").split("/");
  const name = ["inbox", "review", "proposals", "dashboard"].includes(view) ? view : "inbox";
  showView(name);
  if (name === "inbox" && id && decodeURIComponent(id) !== state.openId) openConversation(decodeURIComponent(id));
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function showView(name) {
  const changed = state.view !== name;
  state.view = name;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  $("view-inbox").hidden = name !== "inbox";
  $("view-review").hidden = name !== "review";
  $("view-dashboard").hidden = name !== "dashboard";
  $("view-proposals").hidden = name !== "proposals";
  if (changed && name === "review") loadReview();
  if (changed && name === "proposals") loadProposals();
  if (changed && name === "dashboard") loadDashboard();
}

function onTabKey(event) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const index = tabs.indexOf(event.currentTarget);
  let next = null;
  if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
  else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
  else if (event.key === "Home") next = tabs[0];
  else if (event.key === "End") next = tabs[tabs.length - 1];
  if (next) {
    event.preventDefault();
    next.focus();
    go(next.dataset.view === "inbox" && state.openId ? `#/inbox/${encodeURIComponent(state.openId)}` : `#/${next.dataset.view}`);
  }
}

// ---------------------------------------------------------------- intents

async function loadIntents() {
  try {
    state.intents = await api("GET", "intents");
  } catch {
    return;
  }
  const select = $("filter-intent");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, "Any intent"),
    ...state.intents.map((name) => h("option", { value: name }, name)));
  select.value = chosen;
  if (state.open) renderTranscript();
  if (state.review.length) renderReview();
}

function intentOptions(selected, suggested = []) {
  const names = suggested.filter((name) => state.intents.includes(name));
  const rest = state.intents.filter((name) => !names.includes(name));
  const option = (name) => h("option", { value: name, selected: name === selected }, name);
  const groups = [h("option", { value: "" }, "Choose an intent…")];
  if (names.length) groups.push(h("optgroup", { label: "Suggested" }, names.map(option)));
  groups.push(h("optgroup", { label: names.length ? "All intents" : "Intents" }, rest.map(option)));
  return groups;
}

// ---------------------------------------------------------------- inbox

function seenKey() {
  return `console.seen.${state.agent?.id ?? "?"}`;
}

function seen() {
  return readJson(localStorage.getItem(seenKey())) || {};
}

function markSeen(id, messageId) {
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
  if (!last || conversation.id === state.openId) return false;
  const seenId = seenIds[conversation.id];
  if (seenId === undefined) return conversation.status !== "resolved";
  return last > seenId;
}

function inboxQuery() {
  const f = state.filters;
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
  params.set("limit", String(state.limit));
  return params;
}

async function loadInbox() {
  const seq = ++state.inboxSeq;
  let page;
  try {
    page = await api("GET", `conversations?${inboxQuery()}`);
  } catch (error) {
    if (error.status !== 401 && seq === state.inboxSeq) setText("inbox-error", error.message);
    return;
  }
  if (seq !== state.inboxSeq || !state.token) return; // a newer request went out meanwhile
  setText("inbox-error", "");
  const rows = page.conversations;
  const ids = new Set(rows.map((c) => c.id));
  const waiting = new Set(rows.filter((c) => c.status === "waiting_for_agent").map((c) => c.id));
  if (state.knownIds) {
    for (const c of rows) {
      if (!state.knownIds.has(c.id)) state.fresh.set(c.id, Date.now() + FRESH_MS);
      if (c.status === "waiting_for_agent" && !state.waitingIds.has(c.id)) {
        announceWaiting(c.id);
      } else if (!state.knownIds.has(c.id)) {
        announce(`New conversation in the inbox: ${visitorName(c.id)}`);
      }
    }
  }
  state.knownIds = ids;
  state.waitingIds = waiting;
  state.inbox = rows;
  state.total = page.total;
  state.counts = page.counts;
  renderCounts();
  renderInbox();
  if (state.fresh.size) {
    setTimeout(() => {
      for (const [id, until] of state.fresh) if (until <= Date.now()) state.fresh.delete(id);
      document.querySelectorAll(".conv-row.fresh").forEach((row) => {
        if (!state.fresh.has(row.dataset.conversationId)) row.classList.remove("fresh");
      });
    }, FRESH_MS + 50);
  }
}

function announceWaiting(id) {
  if (state.announcedWaiting.has(id)) return;
  state.announcedWaiting.add(id);
  announce(`${visitorName(id)} is waiting for an agent.`);
}

/** Refetch soon; a refetch already due earlier is kept (steady traffic cannot postpone it forever). */
function scheduleInbox(ms = 250) {
  const due = Date.now() + ms;
  if (state.inboxDue && state.inboxDue <= due) return;
  state.inboxDue = due;
  clearTimeout(state.timers.inbox);
  state.timers.inbox = setTimeout(() => {
    state.inboxDue = 0;
    loadInbox();
  }, ms);
}

function renderCounts() {
  const counts = state.counts || {};
  let all = 0;
  for (const status of STATUSES) {
    const n = counts[status] ?? 0;
    all += n;
    setText(`count-${status}`, String(n));
  }
  setText("count-all", String(all));
  const waiting = counts.waiting_for_agent ?? 0;
  const badge = $("tab-waiting");
  badge.textContent = String(waiting);
  badge.hidden = waiting === 0;
  badge.title = `${waiting} waiting for an agent`;
  document.title = waiting ? `(${waiting}) Support console` : "Support console";
}

function previewOf(conversation) {
  const last = conversation.last_message;
  if (!last) return "No messages yet";
  const who = last.role === "bot" ? "Bot: " : last.role === "agent" ? `${last.agent ?? "Agent"}: ` : "";
  return who + last.text;
}

function inboxRow(c, seenIds) {
  const unread = isUnread(c, seenIds);
  const flags = [];
  if (c.low_confidence) flags.push(h("span", { className: "flag low", title: "Lowest confidence of a visitor message" },
    `low ${fixed(c.lowest_confidence)}`));
  if (c.thumbs_down) flags.push(h("span", { className: "flag thumbs", title: "The visitor gave a thumbs-down" }, "thumbs-down"));
  if (c.reviewed) flags.push(h("span", { className: "flag reviewed", title: "Reviewed" }, "✓ reviewed"));
  if (c.csat) flags.push(h("span", { className: "flag csat", title: "Visitor's rating (1–5)" }, `CSAT ${c.csat}`));
  flags.push(h("span", { className: "flag count", title: "Visitor messages" }, `${c.messages} msg`));
  const classes = ["conv-row", `row-${c.status}`];
  if (unread) classes.push("unread");
  if (c.id === state.openId) classes.push("active");
  if ((state.fresh.get(c.id) ?? 0) > Date.now()) classes.push("fresh");
  return h("li", {},
    h("button", {
      type: "button", className: classes.join(" "), dataset: { conversationId: c.id },
      "aria-current": c.id === state.openId ? "true" : null,
      onclick: () => go(`#/inbox/${encodeURIComponent(c.id)}`),
    },
    h("span", { className: "row-top" },
      unread ? h("span", { className: "dot", title: "New messages" }, h("span", { className: "visually-hidden" }, "unread")) : null,
      h("span", { className: "who" }, visitorName(c.id)),
      statusPill(c, "small"),
      h("span", { className: "when" }, timeElement(c.updated_at, ago(c.updated_at)))),
    h("span", { className: "preview" }, previewOf(c)),
    h("span", { className: "flags" }, flags)));
}

function renderInbox() {
  const list = $("inbox-list");
  const focused = document.activeElement?.closest?.(".conv-row")?.dataset.conversationId;
  const seenIds = seen();
  list.replaceChildren(...state.inbox.map((c) => inboxRow(c, seenIds)));
  if (!state.inbox.length) list.append(h("li", { className: "empty small" }, "No conversations match."));
  if (focused) list.querySelector(`.conv-row[data-conversation-id="${CSS.escape(focused)}"]`)?.focus();
  const shown = state.inbox.length;
  setText("inbox-summary", state.total > shown ? `Showing ${shown} of ${state.total}` : `${state.total} conversation${state.total === 1 ? "" : "s"}`);
  $("inbox-more").hidden = !(state.total > shown && state.limit < 200);
}

function onInboxKey(event) {
  if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(event.key)) return;
  const rows = [...$("inbox-list").querySelectorAll(".conv-row")];
  if (!rows.length) return;
  const index = rows.indexOf(document.activeElement);
  let next;
  if (event.key === "ArrowDown") next = rows[Math.min(rows.length - 1, index + 1)];
  else if (event.key === "ArrowUp") next = rows[Math.max(0, index - 1)];
  else if (event.key === "Home") next = rows[0];
  else next = rows[rows.length - 1];
  event.preventDefault();
  next.focus();
}

function readFilters() {
  const f = state.filters;
  f.q = $("filter-q").value;
  f.low_confidence = $("filter-low").checked;
  f.thumbs_down = $("filter-thumbs").checked;
  f.mine = $("filter-mine").checked;
  f.intent = $("filter-intent").value;
  f.since = $("filter-since").value;
  f.until = $("filter-until").value;
  state.limit = PAGE;
}

function setStatusFilter(status) {
  state.filters.status = status;
  state.limit = PAGE;
  for (const button of document.querySelectorAll(".status-filter button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === status));
  }
  loadInbox();
}

// ---------------------------------------------------------------- conversation view

async function openConversation(id, { quiet = false } = {}) {
  const switching = state.openId !== id;
  state.openId = id;
  if (switching) {
    state.open = null;
    state.early = [];
    $("conv-empty").hidden = true;
    $("conv").hidden = false;
    $("details").hidden = true;
    setText("conv-title", visitorName(id));
    $("conv-status").hidden = true;
    $("transcript").replaceChildren(h("li", { className: "muted" }, "Loading…"));
    for (const field of ["conv-error", "action-error", "reply-error", "note-error", "typing"]) setText(field, "");
    renderInbox();
  }
  let data;
  try {
    data = await api("GET", conversationPath(id));
  } catch (error) {
    if (error.status === 401 || state.openId !== id) return;
    if (quiet) return;
    $("transcript").replaceChildren();
    setText("conv-error", error.status === 404 ? "This conversation does not exist (any more)." : error.message);
    return;
  }
  if (state.openId !== id) return;
  // Messages that arrived live while this request was in flight are newer than its answer: keep them.
  const last = lastMessageId(data) ?? 0;
  const previous = state.open?.id === id ? state.open.transcript : [];
  for (const message of [...previous, ...state.early].filter((m) => m.id > last)) {
    if (!data.transcript.some((m) => m.id === message.id)) data.transcript.push({ ranking: [], correction: null, ...message });
  }
  state.early = [];
  state.open = data;
  markSeen(id, lastMessageId(data));
  renderConversation();
  renderInbox();
}

/** Refetch the open conversation in the background, if it is still the open one (never switches). */
function refreshOpen(id) {
  if (id && state.openId === id) return openConversation(id, { quiet: true });
  return Promise.resolve();
}

function lastMessageId(transcript) {
  return transcript.transcript.length ? transcript.transcript[transcript.transcript.length - 1].id : null;
}

function closeConversation() {
  state.openId = null;
  state.open = null;
  $("conv").hidden = true;
  $("details").hidden = true;
  $("conv-empty").hidden = false;
}

function renderConversation() {
  const c = state.open;
  $("conv-empty").hidden = true;
  $("conv").hidden = false;
  $("details").hidden = false;
  setText("conv-title", visitorName(c.id));
  renderTranscript();
  renderStatus();
}

function renderStatus() {
  const c = state.open;
  const pill = $("conv-status");
  pill.hidden = false;
  pill.className = `pill status-${c.status}`;
  pill.textContent = statusText(c);

  const elsewhere = ownedElsewhere(c);
  const owner = $("owner");
  owner.replaceChildren(statusPill(c), " ", h("span", {}, {
    bot: "The bot is answering.",
    waiting_for_agent: "The visitor is waiting for an agent.",
    with_agent: mine(c) ? "You are talking with the visitor." : `${c.agent ?? "Another agent"} is talking with the visitor.`,
    resolved: "Resolved.",
  }[c.status] ?? ""));

  const take = $("act-take");
  take.disabled = elsewhere || mine(c);
  take.textContent = mine(c) ? "You have it" : "Take over";
  $("act-hand-back").disabled = elsewhere || c.status === "bot";
  $("act-resolve").disabled = elsewhere || c.status === "resolved";
  const reviewed = $("act-reviewed");
  reviewed.disabled = false;
  reviewed.setAttribute("aria-pressed", String(Boolean(c.reviewed)));
  reviewed.textContent = c.reviewed ? "Reviewed ✓" : "Mark reviewed";
  reviewed.title = c.reviewed ? "Click to mark as not reviewed" : "";

  let explain = "";
  if (elsewhere) explain = `${c.agent ?? "Another agent"} has this conversation: only they can reply, hand it back or resolve it.`;
  else if (c.status === "waiting_for_agent") explain = "Take over to talk with the visitor; the bot stays silent while you do.";
  else if (c.status === "bot" || c.status === "resolved") explain = "Replying takes the conversation over.";
  setText("action-explain", explain);

  const textarea = $("reply-text");
  textarea.disabled = elsewhere;
  $("reply-send").disabled = elsewhere;
  setText("reply-hint", elsewhere ? `${c.agent ?? "Another agent"} is replying to this visitor.` : "Ctrl+Enter sends");

  renderFacts();
}

function renderFacts() {
  const c = state.open;
  const facts = [
    ["Conversation", c.id],
    ["Started", parseTime(c.created_at)?.toLocaleString() ?? ""],
    ["Last activity", parseTime(c.updated_at)?.toLocaleString() ?? ""],
    ["Visitor messages", String(c.messages)],
    ["Lowest confidence", c.lowest_confidence === null ? "–" : `${fixed(c.lowest_confidence)}${c.low_confidence ? " (low)" : ""}`],
    ["Thumbs-down", c.thumbs_down ? "yes" : "no"],
    ["CSAT", c.csat ? `${c.csat} / 5` : "–"],
  ];
  if (c.active_form) facts.push(["Active form", c.active_form]);
  for (const [name, value] of Object.entries(c.slots || {})) facts.push([`Slot ${name}`, typeof value === "string" ? value : JSON.stringify(value)]);
  $("facts").replaceChildren(...facts.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

/** Messages and private notes in time order. */
function timeline(c) {
  const items = c.transcript.map((m, i) => ({ kind: "message", at: parseTime(m.created_at)?.getTime() ?? 0, i, item: m }));
  c.notes.forEach((n, i) => items.push({ kind: "note", at: parseTime(n.created_at)?.getTime() ?? Date.now(), i: 1e6 + i, item: n }));
  return items.sort((a, b) => a.at - b.at || a.i - b.i);
}

function renderTranscript() {
  const list = $("transcript");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const open = list.querySelector(".relabel-form:not([hidden])")?.closest(".msg")?.dataset.messageId;
  list.replaceChildren(...timeline(state.open).map((entry) =>
    (entry.kind === "message" ? messageItem(entry.item) : noteItem(entry.item))));
  if (!state.open.transcript.length && !state.open.notes.length) list.append(h("li", { className: "muted" }, "No messages yet."));
  const reopened = open && list.querySelector(`.msg[data-message-id="${CSS.escape(open)}"]`);
  if (reopened) { // keep an open relabel picker open (without moving the focus)
    reopened.querySelector(".relabel-form").hidden = false;
    reopened.querySelector(".relabel-toggle").setAttribute("aria-expanded", "true");
  }
  if (atBottom || !list.dataset.scrolled) list.scrollTop = list.scrollHeight;
  list.dataset.scrolled = "1";
}

function scrollTranscriptIfNear(list) {
  if (list.scrollHeight - list.scrollTop - list.clientHeight < 160) list.scrollTop = list.scrollHeight;
}

function who(m) {
  if (m.role === "user") return "Visitor";
  if (m.role === "bot") return "Bot";
  return m.agent ?? "Agent";
}

function messageItem(m) {
  const meta = [];
  if (m.role === "user") {
    const low = m.confidence !== null && m.confidence < 0.5;
    if (m.intent) {
      meta.push(h("span", { className: "chip intent", title: "Intent the model predicted" }, m.intent));
      meta.push(h("span", { className: `chip confidence${low ? " low" : ""}`, title: "Confidence" }, fixed(m.confidence)));
    }
    const others = (m.ranking || []).filter((r) => r.name !== m.intent).slice(0, 2);
    if (others.length) {
      meta.push(h("span", { className: "ranking", title: "Next intents in the ranking" },
        `then ${others.map((r) => `${r.name} ${fixed(r.confidence)}`).join(", ")}`));
    }
    if (m.correction) {
      const confirmed = m.correction.intent === m.intent;
      meta.push(h("span", { className: `chip correction${confirmed ? " confirmed" : ""}` },
        confirmed ? "✓ confirmed" : `corrected to ${m.correction.intent}`));
    }
  } else if (m.role === "bot") {
    if (m.decision) meta.push(h("span", { className: `chip decision decision-${m.decision}`, title: `Decision: ${DECISIONS[m.decision] ?? m.decision}` },
      m.decision));
    if (m.template) meta.push(h("span", { className: "chip template", title: "Answer template" }, m.template));
    if (m.feedback) meta.push(h("span", { className: `chip feedback feedback-${m.feedback}` },
      m.feedback === "down" ? "thumbs-down" : "thumbs-up"));
  }
  const item = h("li", { className: `msg msg-${m.role}`, dataset: { messageId: String(m.id) } },
    h("div", { className: "msg-head" },
      h("span", { className: "who" }, who(m)),
      timeElement(m.created_at)),
    h("div", { className: "bubble" }, m.text),
    m.buttons?.length ? h("ul", { className: "quick", "aria-label": "Buttons offered" },
      m.buttons.map((b) => h("li", { title: b.payload }, b.title))) : null,
    meta.length ? h("div", { className: "meta" }, meta) : null);
  if (m.role === "user") item.append(relabelControls(m));
  return item;
}

function relabelControls(m) {
  const selectId = `relabel-${m.id}`;
  const select = h("select", { id: selectId },
    intentOptions(m.correction?.intent ?? m.intent, (m.ranking || []).map((r) => r.name)));
  const error = h("span", { className: "error small", role: "alert" });
  const form = h("form", { className: "relabel-form", hidden: true },
    h("label", { for: selectId }, "Intent of this message"),
    select,
    h("button", { type: "submit" }, "Save"),
    h("button", { type: "button", className: "quiet", onclick: () => toggle(false) }, "Cancel"),
    error);
  const button = h("button", {
    type: "button", className: "quiet small relabel-toggle", "aria-expanded": "false",
    onclick: () => toggle(form.hidden),
  }, "Relabel");
  function toggle(show) {
    form.hidden = !show;
    button.setAttribute("aria-expanded", String(show));
    if (show) select.focus();
    else button.focus();
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!select.value) {
      error.textContent = "Choose an intent.";
      return;
    }
    error.textContent = "";
    try {
      const result = await api("PUT", `messages/${m.id}/intent`, { intent: select.value });
      m.correction = { intent: result.intent, agent_id: state.agent?.id, created_at: new Date().toISOString() };
      announce(result.confirmed ? `Confirmed ${result.intent}.` : `Relabelled to ${result.intent}.`);
      state.review = state.review.filter((r) => r.id !== m.id);
      renderReviewCount();
      const fresh = messageItem(m);
      form.closest(".msg").replaceWith(fresh);
      fresh.querySelector(".relabel-toggle")?.focus();
    } catch (failure) {
      if (failure.status !== 401) error.textContent = failure.message;
    }
  });
  return h("div", { className: "relabel" }, button, form);
}

function noteAuthor(n) {
  if (n.agent) return n.agent; // the API may name the author; otherwise only its id is known
  if (n.agent_id === state.agent?.id) return state.agent.display_name;
  return n.agent_id ? `Agent #${n.agent_id}` : "An agent";
}

function noteItem(n) {
  return h("li", { className: "note", dataset: { noteId: String(n.id) } },
    h("div", { className: "msg-head" },
      h("span", { className: "note-label" }, "Private note"),
      h("span", { className: "who" }, noteAuthor(n)),
      n.created_at ? timeElement(n.created_at) : null),
    h("div", { className: "bubble" }, n.text),
    h("div", { className: "meta muted small" }, "Only agents see this; the visitor never does."));
}

function addMessage(message) {
  const c = state.open;
  if (!c || c.transcript.some((m) => m.id === message.id)) {
    // the full version (live event) may come after the reply's own answer: keep the richer one
    const known = c?.transcript.find((m) => m.id === message.id);
    if (known && message.intent !== undefined && known.intent === undefined) {
      Object.assign(known, message);
      if (known.role === "user") {
        $("transcript").querySelector(`.msg[data-message-id="${known.id}"]`)?.replaceWith(messageItem(known));
      }
    }
    return;
  }
  c.transcript.push({ ranking: [], correction: null, ...message });
  if (message.role === "user") c.messages += 1;
  c.last_message = message;
  c.updated_at = message.created_at ?? c.updated_at;
  markSeen(c.id, message.id);
  renderFacts();
  const list = $("transcript");
  list.querySelector(":scope > .muted")?.remove();
  list.append(messageItem(c.transcript[c.transcript.length - 1]));
  scrollTranscriptIfNear(list);
}

function addNote(note) {
  const c = state.open;
  if (!c || c.notes.some((n) => n.id === note.id)) return;
  c.notes.push(note);
  const list = $("transcript");
  list.querySelector(":scope > .muted")?.remove();
  list.append(noteItem(note));
  scrollTranscriptIfNear(list);
}

async function act(run, success) {
  const id = state.openId;
  setText("action-error", "");
  const buttons = document.querySelectorAll(".actions button");
  buttons.forEach((b) => { b.dataset.wasDisabled = b.disabled ? "1" : ""; b.disabled = true; });
  try {
    const summary = await run(id);
    if (state.openId === id && state.open && summary?.id === id) Object.assign(state.open, summary);
    if (success) announce(success);
  } catch (error) {
    if (error.status === 401) return;
    if (state.openId === id) setText("action-error", error.message);
    await refreshOpen(id); // show who has it now
  } finally {
    if (state.openId === id && state.open) renderStatus();
    else buttons.forEach((b) => { b.disabled = b.dataset.wasDisabled === "1"; });
    scheduleInbox();
  }
}

async function onReply(event) {
  event.preventDefault();
  const textarea = $("reply-text");
  const text = textarea.value;
  if (!text.trim() || !state.openId) return;
  const id = state.openId;
  $("reply-send").disabled = true;
  setText("reply-error", "");
  try {
    const message = await api("POST", conversationPath(id, "/messages"), { text });
    if (state.openId === id) {
      textarea.value = "";
      addMessage(message);
      if (state.open.status !== "with_agent") {
        Object.assign(state.open, { status: "with_agent", agent: state.agent.display_name, agent_id: state.agent.id });
      }
    }
    scheduleInbox();
  } catch (error) {
    if (error.status === 401) return;
    setText("reply-error", error.message);
    if (error.status === 409) await refreshOpen(id);
  } finally {
    if (state.openId === id && state.open) renderStatus();
    else $("reply-send").disabled = false;
    textarea.focus();
  }
}

async function onNote(event) {
  event.preventDefault();
  const textarea = $("note-text");
  const text = textarea.value;
  if (!text.trim() || !state.openId) return;
  const id = state.openId;
  $("note-add").disabled = true;
  setText("note-error", "");
  try {
    const note = await api("POST", conversationPath(id, "/notes"), { text });
    if (state.openId === id) {
      textarea.value = "";
      addNote(note);
      announce("Private note added.");
    }
  } catch (error) {
    if (error.status !== 401) setText("note-error", error.message);
  } finally {
    $("note-add").disabled = false;
  }
}

function onReplyInput() {
  const now = Date.now();
  if (!state.openId || now - state.lastTypingSent < TYPING_EVERY_MS) return;
  if (state.socket?.readyState === WebSocket.OPEN && state.socket.ready) {
    state.socket.send(JSON.stringify({ type: "typing", conversation_id: state.openId }));
    state.lastTypingSent = now;
  }
}

function showTyping(text) {
  setText("typing", text);
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => setText("typing", ""), TYPING_SHOWN_MS);
}

// ---------------------------------------------------------------- live events

function liveUrl() {
  const url = new URL("api/agent/live", ROOT);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

function setLive(kind, text) {
  const badge = $("live-status");
  badge.dataset.state = kind;
  badge.textContent = text;
}

function connectLive() {
  if (!state.token || state.socket) return;
  clearTimeout(state.reconnectTimer);
  setLive("connecting", state.everReady ? "Reconnecting…" : "Connecting…");
  let socket;
  try {
    socket = new WebSocket(liveUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  state.socket = socket;
  socket.ready = false;
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "auth", token: state.token })));
  socket.addEventListener("message", (message) => {
    const event = readJson(message.data);
    if (event && state.socket === socket) onLiveEvent(event, socket);
  });
  socket.addEventListener("close", () => {
    clearInterval(socket.pinger);
    if (state.socket !== socket) return;
    state.socket = null;
    if (!state.token) return;
    setLive("offline", "Offline – reconnecting");
    if (socket.refused) {
      api("GET", "me").then(scheduleReconnect, () => {}); // a 401 ends the session
    } else {
      scheduleReconnect();
    }
  });
}

function scheduleReconnect() {
  if (!state.token) return;
  clearTimeout(state.reconnectTimer);
  const delay = state.reconnectDelay * (0.8 + Math.random() * 0.4);
  state.reconnectDelay = Math.min(15000, state.reconnectDelay * 2);
  state.reconnectTimer = setTimeout(connectLive, delay);
}

function closeLive() {
  clearTimeout(state.reconnectTimer);
  const socket = state.socket;
  state.socket = null;
  if (socket) {
    clearInterval(socket.pinger);
    socket.close();
  }
}

function onLiveEvent(event, socket) {
  switch (event.type) {
    case "ready":
      socket.ready = true;
      state.reconnectDelay = 1000;
      setLive("live", "Live");
      socket.pinger = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, 25000);
      if (state.everReady) resync(); // events may have been missed while disconnected
      else scheduleInbox(0); // and between the first fetch and the socket listening
      state.everReady = true;
      break;
    case "error":
      socket.refused = true;
      break;
    case "message":
      onMessageEvent(event);
      break;
    case "status":
      onStatusEvent(event);
      break;
    case "note":
      if (event.conversation_id === state.openId) addNote(event.note);
      break;
    case "typing":
      if (event.conversation_id !== state.openId) break;
      if (event.role === "user") showTyping("The visitor is typing…");
      else if (event.role === "agent" && event.agent && event.agent !== state.agent?.display_name) showTyping(`${event.agent} is typing…`);
      break;
    default:
      break;
  }
}

function resync() {
  loadInbox();
  loadReview();
  refreshOpen(state.openId);
}

function onMessageEvent(event) {
  const { conversation_id: id, message } = event;
  if (id === state.openId) {
    if (state.open) addMessage(message);
    else state.early.push(message); // the conversation is still loading: merged when it arrives
    if (message.role === "user") setText("typing", "");
  }
  const row = state.inbox.find((c) => c.id === id);
  if (row) {
    row.last_message = message;
    row.updated_at = message.created_at;
    if (message.role === "user") row.messages += 1;
    state.inbox = [row, ...state.inbox.filter((c) => c !== row)];
    renderInbox();
  }
  scheduleInbox(row ? 600 : 150); // counts, filters and new conversations come from the server
  if (message.role === "user" || message.feedback) debounce("review", 800, loadReview);
  if (state.view === "dashboard") debounce("dashboard", 3000, loadDashboard);
}

function onStatusEvent(event) {
  const { conversation_id: id, status, agent } = event;
  const guessId = (name) => (name === null ? null : name === state.agent?.display_name ? state.agent.id : -1);
  const row = state.inbox.find((c) => c.id === id);
  if (row) {
    Object.assign(row, { status, agent, agent_id: guessId(agent) });
    renderInbox();
  }
  if (status === "waiting_for_agent") announceWaiting(id);
  else state.announcedWaiting.delete(id);
  if (state.open && id === state.openId) {
    Object.assign(state.open, { status, agent, agent_id: guessId(agent) });
    renderStatus();
    debounce("reopen", 300, () => refreshOpen(id)); // the exact agent id
  }
  scheduleInbox(150);
}

// ---------------------------------------------------------------- review queue

async function loadReview() {
  let items;
  try {
    items = await api("GET", "review?limit=100");
  } catch (error) {
    if (error.status !== 401) setText("review-error", error.message);
    return;
  }
  setText("review-error", "");
  state.review = items;
  renderReviewCount();
  if (state.view === "review") renderReview();
}

function renderReviewCount() {
  const badge = $("tab-review-count");
  badge.textContent = String(state.review.length);
  badge.hidden = state.review.length === 0;
}

function renderReview() {
  const list = $("review-list");
  const focusedId = document.activeElement?.closest?.(".review-item")?.dataset.messageId;
  list.replaceChildren(...state.review.map(reviewItem));
  $("review-empty").hidden = state.review.length > 0;
  if (focusedId) list.querySelector(`.review-item[data-message-id="${CSS.escape(focusedId)}"] select`)?.focus();
}

function reviewItem(item) {
  const selectId = `review-intent-${item.id}`;
  const others = (item.ranking || []).filter((r) => r.name !== item.intent).slice(0, 3);
  const error = h("p", { className: "error small", role: "alert" });
  const select = h("select", { id: selectId }, intentOptions("", (item.ranking || []).map((r) => r.name)));
  const li = h("li", { className: "review-item", dataset: { messageId: String(item.id), conversationId: item.conversation_id } },
    h("blockquote", { className: "bubble" }, item.text),
    h("p", { className: "meta" },
      "Predicted ",
      h("span", { className: "chip intent" }, item.intent ?? "–"),
      " ",
      h("span", { className: `chip confidence${item.confidence !== null && item.confidence < 0.5 ? " low" : ""}` }, fixed(item.confidence)),
      others.length ? h("span", { className: "ranking" }, ` then ${others.map((r) => `${r.name} ${fixed(r.confidence)}`).join(", ")}`) : null,
      " · ",
      timeElement(item.created_at, ago(item.created_at)),
      " · ",
      h("a", { href: `#/inbox/${encodeURIComponent(item.conversation_id)}` }, "Open conversation")),
    h("div", { className: "review-actions" },
      h("button", { type: "button", className: "confirm", disabled: !item.intent, onclick: () => decide(item.intent) },
        `Confirm ${item.intent ?? ""}`.trim()),
      h("label", { for: selectId }, "Correct intent"),
      select,
      h("button", { type: "button", className: "primary correct", onclick: () => decide(select.value) }, "Save correction")),
    error);

  async function decide(intent) {
    if (!intent) {
      error.textContent = "Choose the right intent first.";
      select.focus();
      return;
    }
    error.textContent = "";
    li.querySelectorAll("button, select").forEach((control) => { control.disabled = true; });
    try {
      const result = await api("PUT", `messages/${item.id}/intent`, { intent });
      const next = li.nextElementSibling?.querySelector("select") ?? li.previousElementSibling?.querySelector("select");
      state.review = state.review.filter((r) => r.id !== item.id);
      li.remove();
      renderReviewCount();
      $("review-empty").hidden = state.review.length > 0;
      announce(result.confirmed ? `Confirmed “${item.text}” as ${result.intent}.` : `Corrected “${item.text}” to ${result.intent}.`);
      next?.focus();
      refreshOpen(item.conversation_id);
    } catch (failure) {
      li.querySelectorAll("button, select").forEach((control) => { control.disabled = false; });
      if (failure.status !== 401) error.textContent = failure.message;
    }
  }

  return li;
}

// ---------------------------------------------------------------- proposed intents

const isAdmin = () => state.agent?.role === "admin";
const PROPOSAL_LABELS = { proposed: "Waiting for an admin", approved: "Approved", rejected: "Rejected" };

async function loadProposals() {
  let items;
  try {
    items = await api("GET", "intents/new");
  } catch (error) {
    if (error.status !== 401) setText("proposals-error", error.message);
    return;
  }
  setText("proposals-error", "");
  state.proposals = items.reverse(); // newest first
  renderProposalCount();
  if (state.view === "proposals") renderProposals();
}

function renderProposalCount() {
  const waiting = state.proposals.filter((p) => p.status === "proposed").length;
  const badge = $("tab-proposals-count");
  badge.textContent = String(waiting);
  badge.hidden = waiting === 0 || !isAdmin();
}

function renderProposals() {
  setText("proposals-explain", isAdmin()
    ? "New intents and their answers that agents proposed. Approve one and the next redistillation learns it; "
      + "reject it and it is never learned."
    : "New intents and their answers that agents proposed. The bot learns one at the next redistillation only once "
      + "an admin has approved it.");
  $("proposals-list").replaceChildren(...state.proposals.map(proposalItem));
  $("proposals-empty").hidden = state.proposals.length > 0;
}

function proposalItem(proposal) {
  const error = h("p", { className: "error small", role: "alert" });
  const decided = proposal.decided_at
    ? [` · ${proposal.status} by ${proposal.decider ?? "a former admin"} `, timeElement(proposal.decided_at, ago(proposal.decided_at))]
    : [];
  const li = h("li", { className: "review-item proposal", dataset: { name: proposal.name, status: proposal.status } },
    h("h3", {}, h("span", { className: "chip intent" }, proposal.name),
      h("span", { className: `pill small proposal-status status-${proposal.status}` },
        PROPOSAL_LABELS[proposal.status] ?? proposal.status)),
    h("blockquote", { className: "bubble answer" }, proposal.answer),
    h("ul", { className: "examples", "aria-label": "Example messages" },
      proposal.examples.slice(0, 5).map((text) => h("li", {}, text)),
      proposal.examples.length > 5 ? h("li", {}, `and ${proposal.examples.length - 5} more`) : null),
    h("p", { className: "meta muted small" }, `Proposed by ${proposal.agent ?? "a former agent"} · `,
      timeElement(proposal.created_at, ago(proposal.created_at)), ...decided),
    isAdmin() ? h("div", { className: "review-actions" },
      h("button", { type: "button", className: "primary approve", disabled: proposal.status === "approved",
        onclick: () => decide("approve") }, `Approve ${proposal.name}`),
      h("button", { type: "button", className: "reject", disabled: proposal.status === "rejected",
        onclick: () => decide("reject") }, `Reject ${proposal.name}`)) : null,
    error);

  async function decide(action) {
    error.textContent = "";
    li.querySelectorAll("button").forEach((button) => { button.disabled = true; });
    try {
      const result = await api("POST", `intents/${encodeURIComponent(proposal.name)}/${action}`);
      state.proposals = state.proposals.map((p) => (p.name === result.name ? result : p));
      const replacement = proposalItem(result);
      li.replaceWith(replacement);
      renderProposalCount();
      announce(`${result.name} ${result.status}.`);
      replacement.querySelector("button:not([disabled])")?.focus();
    } catch (failure) {
      li.querySelector(".approve").disabled = proposal.status === "approved";
      li.querySelector(".reject").disabled = proposal.status === "rejected";
      if (failure.status !== 401) error.textContent = failure.message;
    }
  }

  return li;
}

// ---------------------------------------------------------------- dashboard

async function loadDashboard() {
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
    ["Conversations", String(conversations)],
    ["Visitor messages", String(rows.reduce((n, r) => n + r.visitor_messages, 0))],
    ["Handoff rate", conversations ? percent(handoffs / conversations) : "–"],
    ["Fallback rate", percent(weighted(rows, "fallback_rate", "bot_messages"))],
    ["Avg. confidence", fixed(weighted(rows, "average_confidence", "visitor_messages"))],
    ["CSAT", rated ? `${fixed(weighted(rows, "csat", "rated"), 1)} / 5` : "–", rated ? `${rated} rated` : "no ratings"],
  ];
  $("dash-tiles").replaceChildren(...tiles.map(([name, value, note]) => h("div", { className: "tile" },
    h("span", { className: "tile-name" }, name), h("span", { className: "tile-value" }, value),
    note ? h("span", { className: "tile-note" }, note) : null)));

  const period = `${days[0]} to ${days[days.length - 1]}`;
  const figure = (title, chart, legend = []) => h("figure", { className: "chart-card" },
    h("figcaption", {}, h("span", {}, title),
      legend.length ? h("ul", { className: "legend" }, legend.map(([key, label]) =>
        h("li", {}, h("span", { className: `swatch swatch-${key}`, "aria-hidden": "true" }), label))) : null),
    chart);
  $("charts").replaceChildren(
    figure("Conversations per day", barChart({
      id: "chart-conversations", title: "Conversations and handoffs per day",
      description: `Conversations started and handoffs to an agent per day, ${period}.`, days, yLabel: "Count",
      series: [{ key: "conversations", label: "conversations", values: col("conversations") },
        { key: "handoffs", label: "handoffs", values: col("handoffs") }],
    }), [["conversations", "Conversations"], ["handoffs", "Handoffs"]]),
    figure("Handoff and fallback rates", lineChart({
      id: "chart-rates", title: "Handoff and fallback rates per day",
      description: `Handoffs per conversation and fallbacks per bot message, ${period}. Days without traffic are gaps.`,
      days, yLabel: "Rate", format: (v) => percent(v), min: 0, max: 1,
      series: [{ key: "handoff", label: "handoff rate", values: col("handoff_rate").map((v) => (v === null ? null : Math.min(1, v))) },
        { key: "fallback", label: "fallback rate", values: col("fallback_rate") }],
    }), [["handoff", "Handoff rate"], ["fallback", "Fallback rate"]]),
    figure("Average confidence", lineChart({
      id: "chart-confidence", title: "Average confidence of visitor messages per day",
      description: `Mean top-intent confidence of visitors' messages, ${period}.`, days, yLabel: "Confidence",
      format: (v) => fixed(v), min: 0, max: 1,
      series: [{ key: "confidence", label: "average confidence", values: col("average_confidence") }],
    })),
    figure("Customer satisfaction", lineChart({
      id: "chart-csat", title: "Average CSAT per day",
      description: `Mean visitor rating (1 to 5) of the conversations started each day, ${period}.`, days,
      yLabel: "CSAT (1–5)", format: (v) => fixed(v, 1), min: 1, max: 5,
      series: [{ key: "csat", label: "CSAT", values: col("csat") }],
    })),
  );

  renderModelCard(model);

  const header = ["Day", "Conversations", "Visitor msgs", "Bot msgs", "Handoffs", "Handoff rate", "Fallback rate", "Avg. confidence", "CSAT", "Rated"];
  $("dash-table").replaceChildren(h("table", { className: "data-table" },
    h("caption", { className: "visually-hidden" }, `Daily figures, ${period}`),
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
    h("h2", { id: "model-title" }, "Model ", h("span", { className: "version" }, model.version)),
    h("p", { className: "muted small" }, `Backend ${model.backend}`,
      model.test_messages ? ` · test set of ${model.test_messages} messages` : ""),
    model.speedup_same_runtime
      ? h("div", { className: "speedup" },
        h("span", { className: "big", id: "model-speedup" }, `${model.speedup_same_runtime.toFixed(1)}×`),
        h("span", {}, " faster than the teacher in the same runtime (both int8 ONNX; p50 latency, one message, CPU)"),
        model.speedup_p50 ? h("p", { className: "muted small", id: "model-speedup-usual" },
          `${model.speedup_p50.toFixed(1)}× against the teacher as usually run (PyTorch fp32)`) : null)
      : h("div", { className: "speedup" },
        h("span", { className: "big", id: "model-speedup" }, model.speedup_p50 ? `${model.speedup_p50.toFixed(1)}×` : "–"),
        h("span", {}, ` faster than the teacher in PyTorch fp32 (p50 latency, one message, CPU; student served as ${model.backend})`)),
    compareBars({
      id: "chart-accuracy", title: "Accuracy on the test set: teacher versus student",
      rows: [{ key: "teacher", label: "Teacher", value: teacher.accuracy, text: percent(teacher.accuracy, 1) },
        { key: "student", label: "Student", value: student.accuracy, text: percent(student.accuracy, 1) }],
    }),
    h("table", { className: "model-table" },
      h("caption", { className: "visually-hidden" }, "Teacher and student compared"),
      h("thead", {}, h("tr", {}, h("td", {}), h("th", { scope: "col" }, "Teacher"), h("th", { scope: "col" }, "Student (served)"))),
      h("tbody", {},
        row("Model", (s) => s.model ?? "–"),
        row("Accuracy", (s) => percent(s.accuracy, 1)),
        row("Parameters", (s) => millions(s.params)),
        row("Size on disk", (s) => (s.disk_mb === null ? "–" : `${s.disk_mb.toFixed(1)} MB`)),
        row("Latency p50", (s) => (s.latency_ms_p50 === null ? "–" : `${s.latency_ms_p50.toFixed(1)} ms`)))),
    h("p", { className: "small" },
      drop === null ? "" : `Accuracy ${drop >= 0 ? "−" : "+"}${Math.abs(drop).toFixed(1)} points`,
      smaller ? ` · ${smaller.toFixed(1)}× smaller on disk` : "",
      fewer ? ` · ${fewer.toFixed(1)}× fewer parameters` : ""));
}

// ---------------------------------------------------------------- wiring

function bindEvents() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => go(tab.dataset.view === "inbox" && state.openId
      ? `#/inbox/${encodeURIComponent(state.openId)}` : `#/${tab.dataset.view}`));
    tab.addEventListener("keydown", onTabKey);
  }
  window.addEventListener("hashchange", () => state.token && route());

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
    debounce("search", 300, loadInbox);
  });
  for (const id of ["filter-low", "filter-thumbs", "filter-mine", "filter-intent", "filter-since", "filter-until"]) {
    $(id).addEventListener("change", () => {
      readFilters();
      loadInbox();
    });
  }
  $("inbox-more").addEventListener("click", () => {
    state.limit = Math.min(200, state.limit + PAGE);
    loadInbox();
  });
  $("inbox-list").addEventListener("keydown", onInboxKey);

  $("act-take").addEventListener("click", () => act((id) => api("POST", conversationPath(id, "/take")), "You took over the conversation."));
  $("act-hand-back").addEventListener("click", () => act((id) => api("POST", conversationPath(id, "/hand-back")), "Handed back to the bot."));
  $("act-resolve").addEventListener("click", () => act((id) => api("POST", conversationPath(id, "/resolve")), "Conversation resolved."));
  $("act-reviewed").addEventListener("click", () => {
    const reviewed = !state.open?.reviewed;
    act((id) => api("PUT", conversationPath(id, "/reviewed"), { reviewed }), reviewed ? "Marked reviewed." : "Marked not reviewed.");
  });

  $("reply-form").addEventListener("submit", onReply);
  $("reply-text").addEventListener("input", onReplyInput);
  $("note-form").addEventListener("submit", onNote);
  $("note-text").addEventListener("input", () => { $("note-add").disabled = false; });
  for (const [area, form] of [["reply-text", "reply-form"], ["note-text", "note-form"]]) {
    $(area).addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        $(form).requestSubmit();
      }
    });
  }

  $("review-refresh").addEventListener("click", loadReview);
  $("proposals-refresh").addEventListener("click", loadProposals);
  $("dash-refresh").addEventListener("click", loadDashboard);
  $("dash-days").addEventListener("change", loadDashboard);

  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName)
        && state.token && state.view === "inbox") {
      event.preventDefault();
      $("filter-q").focus();
    } else if (event.key === "Escape" && state.view === "inbox" && state.openId
        && !["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName)) {
      const id = state.openId;
      closeConversation();
      history.replaceState(null, "", "#/inbox");
      renderInbox();
      $("inbox-list").querySelector(`.conv-row[data-conversation-id="${CSS.escape(id)}"]`)?.focus();
    }
  });

  setInterval(() => {
    if (state.token && state.view === "inbox" && !document.activeElement?.closest?.(".inbox-list")) renderInbox();
  }, 30000); // relative times ("3 min")
}

boot();
