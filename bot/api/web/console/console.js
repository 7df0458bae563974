// The support agents' console: log in, inbox (live), conversation view and actions, review queue, proposed
// intents (admins approve or reject them), answers (edited without redistillation), dashboard.
//
// Plain modern JavaScript as native ES modules, no build step, no dependencies. This entry module holds the
// login, the router (#/inbox/<id>, #/review, …) and the live events' dispatch, and wires the views; each
// module owns its own state. Everything that comes from the server (messages, notes, names, intents) is put
// on the page with textContent / text nodes: never as HTML.

import { api, forgetLogin, getAgent, getToken, isAdmin, onUnauthorized, saveAgent, saveLogin } from "./api.js";
import {
  closeConversation, initConversation, onLiveMessage, onLiveNote, onLiveStatus, onLiveTyping, openConversation,
  openConversationId, refreshOpen, rerenderTranscript, resetConversation,
} from "./conversation.js";
import { initAnswers, loadAnswers } from "./answers.js";
import { initCanned, loadCanned } from "./canned.js";
import { initModels, loadModels } from "./models.js";
import { initIntentPage, loadIntentPage } from "./intent_page.js";
import { initDashboard, loadDashboard, dashboardSoon, resetDashboard } from "./dashboard.js";
import { $, setText } from "./dom.js";
import { focusRow, initInbox, loadInbox, onInboxMessage, onInboxStatus, renderInbox, resetInbox, scheduleInbox } from "./inbox.js";
import { loadIntents } from "./intents.js";
import { closeLive, connectLive, initLive } from "./live.js";
import { initProposals, loadProposals } from "./proposals.js";
import { initReview, loadReview, rerenderReview, resetReview, reviewSoon } from "./review.js";
import { visitorName } from "./format.js";
import { LANG, setLanguage, t, translatePage } from "./i18n.js";
import { ConversationStatus, guessAgentId } from "./status.js";
import { currentView, setView } from "./view.js";

const VIEWS = ["inbox", "review", "proposals", "intents", "answers", "canned", "models", "dashboard"];
const TYPING_TAGS = ["INPUT", "TEXTAREA", "SELECT"];

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
  forgetLogin();
  closeLive();
  resetConversation();
  resetInbox();
  resetReview();
  resetDashboard();
  showLogin(info);
}

async function onLogin(event) {
  event.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  setText("login-info", "");
  if (!username || !password) {
    setText("login-error", t("Enter your username and password."));
    return;
  }
  $("login-submit").disabled = true;
  try {
    const result = await api("POST", "login", { username, password });
    saveLogin(result.token, result.agent);
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
  endSession(t("You have logged out."));
}

function startApp() {
  $("login-screen").hidden = true;
  $("app").hidden = false;
  const agent = getAgent();
  setText("me", agent ? agent.display_name : "");
  $("me").title = isAdmin() ? t("Admin") : t("Agent");
  setView(null); // the route below counts as a change of view, whatever was shown before
  loadIntents().then((loaded) => {
    if (!loaded) return;
    rerenderTranscript(); // the relabel and correction pickers list the intents
    rerenderReview();
  });
  loadInbox();
  loadReview();
  loadProposals();
  offerNotifications();
  connectLive();
  route();
}

async function boot() {
  translatePage();
  bindEvents();
  if (!getToken()) {
    showLogin();
    return;
  }
  try {
    saveAgent(await api("GET", "me")); // a 401 here returns to the login screen
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
  const name = VIEWS.includes(view) ? view : "inbox";
  showView(name);
  if (name === "inbox" && id && decodeURIComponent(id) !== openConversationId()) openConversation(decodeURIComponent(id));
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** A tab's address: the inbox keeps the open conversation. */
function tabHash(view) {
  const id = openConversationId();
  return view === "inbox" && id ? `#/inbox/${encodeURIComponent(id)}` : `#/${view}`;
}

function showView(name) {
  const changed = currentView() !== name;
  setView(name);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  $("view-inbox").hidden = name !== "inbox";
  $("view-review").hidden = name !== "review";
  $("view-dashboard").hidden = name !== "dashboard";
  $("view-proposals").hidden = name !== "proposals";
  $("view-answers").hidden = name !== "answers";
  $("view-canned").hidden = name !== "canned";
  $("view-models").hidden = name !== "models";
  $("view-intents").hidden = name !== "intents";
  if (changed && name === "review") loadReview();
  if (changed && name === "proposals") loadProposals();
  if (changed && name === "answers") loadAnswers();
  if (changed && name === "canned") loadCanned();
  if (changed && name === "models") loadModels();
  if (changed && name === "intents") loadIntentPage();
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
    go(tabHash(next.dataset.view));
  }
}

// ---------------------------------------------------------------- live events

function onReady(first) {
  if (first) {
    scheduleInbox(0); // events between the first fetch and the socket listening
  } else { // events may have been missed while disconnected
    loadInbox();
    loadReview();
    refreshOpen(openConversationId());
  }
}

function onLiveEvent(event) {
  switch (event.type) {
    case "message": {
      const { conversation_id: id, message } = event;
      onLiveMessage(id, message);
      onInboxMessage(id, message);
      if (message.role === "user" || message.feedback) reviewSoon();
      dashboardSoon();
      break;
    }
    case "status": {
      const { conversation_id: id, status, agent } = event;
      const agentId = guessAgentId(agent);
      if (status === ConversationStatus.WAITING) notifyWaiting(id, event.agent_id);
      onInboxStatus(id, status, agent, agentId);
      onLiveStatus(id, status, agent, agentId);
      break;
    }
    case "note":
      onLiveNote(event.conversation_id, event.note);
      break;
    case "typing":
      onLiveTyping(event);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------- notifications

/** A browser notification for a visitor who starts waiting, while this tab is hidden (permission asked once,
 * on a click: browsers refuse to ask otherwise). */
function notifyWaiting(id, offeredTo) {
  if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
  const mine = offeredTo !== null && offeredTo === getAgent()?.id;
  const notice = new Notification(mine ? t("A visitor is waiting for you") : t("A visitor is waiting"),
    { body: t("{visitor} asked for a person.", { visitor: visitorName(id) }), tag: `waiting-${id}` });
  notice.onclick = () => {
    window.focus();
    go(`#/inbox/${encodeURIComponent(id)}`);
    notice.close();
  };
}

function offerNotifications() {
  const button = $("notify");
  button.hidden = !("Notification" in window) || Notification.permission !== "default";
  button.onclick = async () => {
    await Notification.requestPermission();
    button.hidden = Notification.permission !== "default";
  };
}

// ---------------------------------------------------------------- wiring

function bindEvents() {
  onUnauthorized(endSession);
  initLive({ ready: onReady, event: onLiveEvent });
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  for (const picker of document.querySelectorAll(".language-picker")) {
    picker.value = LANG;
    picker.addEventListener("change", () => {
      const drafts = ["reply-text", "note-text"].some((id) => $(id).value.trim());
      if (drafts && !window.confirm(t("Switching the language reloads the page: the text you have not sent yet is lost. Switch?"))) {
        picker.value = LANG;
        return;
      }
      setLanguage(picker.value);
    });
  }
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => go(tabHash(tab.dataset.view)));
    tab.addEventListener("keydown", onTabKey);
  }
  window.addEventListener("hashchange", () => getToken() && route());

  initInbox({ open: (id) => go(`#/inbox/${encodeURIComponent(id)}`) });
  initConversation();
  initReview({ onCorrected: refreshOpen });
  initProposals();
  initAnswers();
  initCanned();
  initModels();
  initIntentPage();
  initDashboard();

  document.addEventListener("keydown", (event) => {
    const typing = TYPING_TAGS.includes(document.activeElement?.tagName);
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !typing && getToken() && currentView() === "inbox") {
      event.preventDefault();
      $("filter-q").focus();
    } else if (event.key === "Escape" && currentView() === "inbox" && openConversationId() && !typing) {
      const id = openConversationId();
      closeConversation();
      history.replaceState(null, "", "#/inbox");
      renderInbox();
      focusRow(id);
    }
  });

  setInterval(() => {
    if (getToken() && currentView() === "inbox" && !document.activeElement?.closest?.(".inbox-list")) renderInbox();
  }, 30000); // relative times ("3 min")
}

boot();
