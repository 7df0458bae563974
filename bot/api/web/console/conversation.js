// The open conversation: loading it (and merging live messages that come meanwhile), its status, details and
// actions (take over, hand back, resolve, reviewed), the agent's reply and private notes, "typing…".
// What each transcript entry looks like is transcript.js.

import { api, conversationPath, getAgent, isAdmin } from "./api.js";
import { $, announce, h, setText } from "./dom.js";
import { fixed, parseTime, visitorName } from "./format.js";
import { LOCALE, t } from "./i18n.js";
import { markSeen, renderInbox, scheduleInbox, setActive } from "./inbox.js";
import { sendLive } from "./live.js";
import { ConversationStatus, mine, ownedElsewhere, statusPill, statusText } from "./status.js";
import { messageItem, noteItem } from "./transcript.js";

const TYPING_EVERY_MS = 2500;
const TYPING_SHOWN_MS = 4000;

let openId = null;
let current = null; // the open conversation's transcript, once loaded
let early = []; // live messages of the conversation being opened, kept until its transcript has loaded
let lastTypingSent = 0;
let typingTimer = null;
let reopenTimer = null;

export const openConversationId = () => openId;

export function initConversation() {
  $("act-take").addEventListener("click", () => act((id) => api("POST", conversationPath(id, "/take")), t("You took over the conversation.")));
  $("act-hand-back").addEventListener("click", () => act((id) => api("POST", conversationPath(id, "/hand-back")), t("Handed back to the bot.")));
  $("act-resolve").addEventListener("click", () => act((id) => api("POST", conversationPath(id, "/resolve")), t("Conversation resolved.")));
  $("act-reviewed").addEventListener("click", () => {
    const reviewed = !current?.reviewed;
    act((id) => api("PUT", conversationPath(id, "/reviewed"), { reviewed }), reviewed ? t("Marked reviewed.") : t("Marked not reviewed."));
  });

  $("act-erase").addEventListener("click", onErase);
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
}

/** At logout: nothing is open any more (the page is hidden behind the login screen). */
export function resetConversation() {
  openId = null;
  setActive(null);
  current = null;
  clearTimeout(reopenTimer);
}

/** Redraw the relabel pickers once the intent names have come. */
export function rerenderTranscript() {
  if (current) renderTranscript();
}

// ---- live events about the open conversation

export function onLiveMessage(id, message) {
  if (id !== openId) return;
  if (current) addMessage(message);
  else early.push(message); // the conversation is still loading: merged when it arrives
  if (message.role === "user") setText("typing", "");
}

export function onLiveNote(id, note) {
  if (id === openId) addNote(note);
}

export function onLiveTyping(event) {
  if (event.conversation_id !== openId) return;
  if (event.role === "user") showTyping(t("The visitor is typing…"));
  else if (event.role === "agent" && event.agent && event.agent !== getAgent()?.display_name) showTyping(t("{agent} is typing…", { agent: event.agent }));
}

export function onLiveStatus(id, status, agent, agentId) {
  if (!current || id !== openId) return;
  Object.assign(current, { status, agent, agent_id: agentId });
  renderStatus();
  clearTimeout(reopenTimer);
  reopenTimer = setTimeout(() => refreshOpen(id), 300); // the exact agent id
}

// ---- loading and drawing

/** Show a conversation; quiet: a background refresh (keeps what is shown if the request fails). */
export async function openConversation(id, { quiet = false } = {}) {
  const switching = openId !== id;
  openId = id;
  setActive(id);
  if (switching) {
    current = null;
    early = [];
    $("conv-empty").hidden = true;
    $("conv").hidden = false;
    $("details").hidden = true;
    setText("conv-title", visitorName(id));
    $("conv-status").hidden = true;
    $("transcript").replaceChildren(h("li", { className: "muted" }, t("Loading…")));
    for (const field of ["conv-error", "action-error", "reply-error", "note-error", "typing"]) setText(field, "");
    renderInbox();
  }
  let data;
  try {
    data = await api("GET", conversationPath(id));
  } catch (error) {
    if (error.status === 401 || openId !== id) return;
    if (quiet) return;
    $("transcript").replaceChildren();
    setText("conv-error", error.status === 404 ? t("This conversation does not exist (any more).") : error.message);
    return;
  }
  if (openId !== id) return;
  // Messages that arrived live while this request was in flight are newer than its answer: keep them.
  const last = lastMessageId(data) ?? 0;
  const previous = current?.id === id ? current.transcript : [];
  for (const message of [...previous, ...early].filter((m) => m.id > last)) {
    if (!data.transcript.some((m) => m.id === message.id)) data.transcript.push({ ranking: [], correction: null, ...message });
  }
  early = [];
  current = data;
  markSeen(id, lastMessageId(data));
  renderConversation();
  renderInbox();
}

/** Refetch the open conversation in the background, if it is still the open one (never switches). */
export function refreshOpen(id) {
  if (id && openId === id) return openConversation(id, { quiet: true });
  return Promise.resolve();
}

function lastMessageId(transcript) {
  return transcript.transcript.length ? transcript.transcript[transcript.transcript.length - 1].id : null;
}

export function closeConversation() {
  openId = null;
  setActive(null);
  current = null;
  $("conv").hidden = true;
  $("details").hidden = true;
  $("conv-empty").hidden = false;
}

function renderConversation() {
  const c = current;
  $("conv-empty").hidden = true;
  $("conv").hidden = false;
  $("details").hidden = false;
  setText("conv-title", visitorName(c.id));
  renderTranscript();
  renderStatus();
}

function renderStatus() {
  const c = current;
  const pill = $("conv-status");
  pill.hidden = false;
  pill.className = `pill status-${c.status}`;
  pill.textContent = statusText(c);

  const elsewhere = ownedElsewhere(c);
  const owner = $("owner");
  owner.replaceChildren(statusPill(c), " ", h("span", {}, {
    [ConversationStatus.BOT]: t("The bot is answering."),
    [ConversationStatus.WAITING]: t("The visitor is waiting for an agent."),
    [ConversationStatus.WITH_AGENT]: mine(c) ? t("You are talking with the visitor.")
      : c.agent != null ? t("{agent} is talking with the visitor.", { agent: c.agent }) : t("Another agent is talking with the visitor."),
    [ConversationStatus.RESOLVED]: t("Resolved."),
  }[c.status] ?? ""));

  const take = $("act-take");
  take.disabled = elsewhere || mine(c);
  take.textContent = mine(c) ? t("You have it") : t("Take over");
  $("act-hand-back").disabled = elsewhere || c.status === ConversationStatus.BOT;
  $("act-resolve").disabled = elsewhere || c.status === ConversationStatus.RESOLVED;
  const reviewed = $("act-reviewed");
  reviewed.disabled = false;
  reviewed.setAttribute("aria-pressed", String(Boolean(c.reviewed)));
  reviewed.textContent = c.reviewed ? t("Reviewed ✓") : t("Mark reviewed");
  reviewed.title = c.reviewed ? t("Click to mark as not reviewed") : "";

  $("act-erase").hidden = !isAdmin();
  let explain = "";
  if (elsewhere) {
    explain = c.agent != null
      ? t("{agent} has this conversation: only they can reply, hand it back or resolve it.", { agent: c.agent })
      : t("Another agent has this conversation: only they can reply, hand it back or resolve it.");
  } else if (c.status === ConversationStatus.WAITING) explain = t("Take over to talk with the visitor; the bot stays silent while you do.");
  else if (c.status === ConversationStatus.BOT || c.status === ConversationStatus.RESOLVED) explain = t("Replying takes the conversation over.");
  setText("action-explain", explain);

  const textarea = $("reply-text");
  textarea.disabled = elsewhere;
  $("reply-send").disabled = elsewhere;
  let hint = t("Ctrl+Enter sends");
  if (elsewhere) {
    hint = c.agent != null
      ? t("{agent} is replying to this visitor.", { agent: c.agent })
      : t("Another agent is replying to this visitor.");
  }
  setText("reply-hint", hint);

  renderFacts();
}

function renderFacts() {
  const c = current;
  const facts = [
    [t("Conversation"), c.id],
    [t("Started"), parseTime(c.created_at)?.toLocaleString(LOCALE) ?? ""],
    [t("Last activity"), parseTime(c.updated_at)?.toLocaleString(LOCALE) ?? ""],
    [t("Visitor messages"), String(c.messages)],
    [t("Lowest confidence"), c.lowest_confidence === null ? "–"
      : c.low_confidence ? t("{confidence} (low)", { confidence: fixed(c.lowest_confidence) }) : fixed(c.lowest_confidence)],
    [t("Thumbs-down"), c.thumbs_down ? t("yes") : t("no")],
    [t("CSAT"), c.csat ? `${c.csat} / 5` : "–"],
  ];
  if (c.language) facts.push([t("Language"), t("{language} (the bot does not know it)", { language: c.language })]);
  if (c.active_form) facts.push([t("Active form"), c.active_form]);
  for (const [name, value] of Object.entries(c.slots || {})) facts.push([t("Slot {name}", { name }), typeof value === "string" ? value : JSON.stringify(value)]);
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
  list.replaceChildren(...timeline(current).map((entry) =>
    (entry.kind === "message" ? messageItem(entry.item) : noteItem(entry.item))));
  if (!current.transcript.length && !current.notes.length) list.append(h("li", { className: "muted" }, t("No messages yet.")));
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

function addMessage(message) {
  const c = current;
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
  const c = current;
  if (!c || c.notes.some((n) => n.id === note.id)) return;
  c.notes.push(note);
  const list = $("transcript");
  list.querySelector(":scope > .muted")?.remove();
  list.append(noteItem(note));
  scrollTranscriptIfNear(list);
}

async function onErase() {
  const id = openId;
  const question = current?.customer_id
    ? t("Erase every conversation of this verified customer, with all its messages, notes and feedback? This cannot be undone.")
    : t("Erase this conversation, with all its messages, notes and feedback? This cannot be undone.");
  if (!window.confirm(question)) return;
  setText("action-error", "");
  try {
    const body = current?.customer_id ? { customer_id: current.customer_id } : { conversation_id: id };
    const done = await api("POST", "erasures", body);
    closeConversation();
    history.replaceState(null, "", "#/inbox");
    announce(t("Erased {conversations} conversation(s) and {messages} messages.", { conversations: done.conversations, messages: done.messages }));
    scheduleInbox(0);
  } catch (error) {
    if (error.status !== 401 && openId === id) setText("action-error", error.message);
  }
}

async function act(run, success) {
  const id = openId;
  setText("action-error", "");
  const buttons = document.querySelectorAll(".actions button");
  buttons.forEach((b) => { b.dataset.wasDisabled = b.disabled ? "1" : ""; b.disabled = true; });
  try {
    const summary = await run(id);
    if (openId === id && current && summary?.id === id) Object.assign(current, summary);
    if (success) announce(success);
  } catch (error) {
    if (error.status === 401) return;
    if (openId === id) setText("action-error", error.message);
    await refreshOpen(id); // show who has it now
  } finally {
    if (openId === id && current) renderStatus();
    else buttons.forEach((b) => { b.disabled = b.dataset.wasDisabled === "1"; });
    scheduleInbox();
  }
}

async function onReply(event) {
  event.preventDefault();
  const textarea = $("reply-text");
  const text = textarea.value;
  if (!text.trim() || !openId) return;
  const id = openId;
  $("reply-send").disabled = true;
  setText("reply-error", "");
  try {
    const message = await api("POST", conversationPath(id, "/messages"), { text });
    if (openId === id) {
      textarea.value = "";
      addMessage(message);
      if (current.status !== ConversationStatus.WITH_AGENT) {
        Object.assign(current, { status: ConversationStatus.WITH_AGENT, agent: getAgent().display_name, agent_id: getAgent().id });
      }
    }
    scheduleInbox();
  } catch (error) {
    if (error.status === 401) return;
    setText("reply-error", error.message);
    if (error.status === 409) await refreshOpen(id);
  } finally {
    if (openId === id && current) renderStatus();
    else $("reply-send").disabled = false;
    textarea.focus();
  }
}

async function onNote(event) {
  event.preventDefault();
  const textarea = $("note-text");
  const text = textarea.value;
  if (!text.trim() || !openId) return;
  const id = openId;
  $("note-add").disabled = true;
  setText("note-error", "");
  try {
    const note = await api("POST", conversationPath(id, "/notes"), { text });
    if (openId === id) {
      textarea.value = "";
      addNote(note);
      announce(t("Private note added."));
    }
  } catch (error) {
    if (error.status !== 401) setText("note-error", error.message);
  } finally {
    $("note-add").disabled = false;
  }
}

function onReplyInput() {
  const now = Date.now();
  if (!openId || now - lastTypingSent < TYPING_EVERY_MS) return;
  if (sendLive({ type: "typing", conversation_id: openId })) lastTypingSent = now;
}

function showTyping(text) {
  setText("typing", text);
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => setText("typing", ""), TYPING_SHOWN_MS);
}

