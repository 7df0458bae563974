// The live socket (/api/agent/live): authenticate, keep it alive with pings, reconnect with backoff, and show
// its state in the top bar. What the events mean is for the views: each goes to the handler set by initLive.
//
// The widget has its own copy of this loop (bot/api/web/widget.js): it must stay one classic script that
// third-party pages embed with one tag, so it cannot import a module from here.

import { ROOT, api, getToken } from "./api.js";
import { $ } from "./dom.js";
import { readJson } from "./format.js";
import { t } from "./i18n.js";

const PING_MS = 25000; // keeps idle proxies from closing the socket
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;

let socket = null;
let reconnectDelay = FIRST_DELAY_MS;
let reconnectTimer = null;
let everReady = false; // a later "ready" is a reconnect: events may have been missed meanwhile
let handlers = { ready: () => {}, event: () => {} };

/** ready(first): the server listens (first: since login); event(event): any other event. */
export function initLive({ ready, event }) {
  handlers = { ready, event };
}

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

export function connectLive() {
  if (!getToken() || socket) return;
  clearTimeout(reconnectTimer);
  setLive("connecting", everReady ? t("Reconnecting…") : t("Connecting…"));
  let ws;
  try {
    ws = new WebSocket(liveUrl());
  } catch {
    scheduleReconnect();
    return;
  }
  socket = ws;
  ws.ready = false;
  ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token: getToken() })));
  ws.addEventListener("message", (message) => {
    const event = readJson(message.data);
    if (event && socket === ws) onLiveEvent(event, ws);
  });
  ws.addEventListener("close", () => {
    clearInterval(ws.pinger);
    if (socket !== ws) return; // an old socket we already replaced
    socket = null;
    if (!getToken()) return;
    setLive("offline", t("Offline – reconnecting"));
    if (ws.refused) {
      api("GET", "me").then(scheduleReconnect, () => {}); // a 401 ends the session
    } else {
      scheduleReconnect();
    }
  });
}

/** Exponential backoff up to 15 s, with jitter so agents' consoles don't all come back at once. */
function scheduleReconnect() {
  if (!getToken()) return;
  clearTimeout(reconnectTimer);
  const delay = reconnectDelay * (0.8 + Math.random() * 0.4);
  reconnectDelay = Math.min(MAX_DELAY_MS, reconnectDelay * 2);
  reconnectTimer = setTimeout(connectLive, delay);
}

/** At logout: close the socket, and the next login's first "ready" is a first one again. */
export function closeLive() {
  clearTimeout(reconnectTimer);
  const ws = socket;
  socket = null;
  if (ws) {
    clearInterval(ws.pinger);
    ws.close();
  }
  everReady = false;
}

/** Send a message if the socket is open and authenticated; says whether it went. */
export function sendLive(message) {
  if (socket?.readyState !== WebSocket.OPEN || !socket.ready) return false;
  socket.send(JSON.stringify(message));
  return true;
}

function onLiveEvent(event, ws) {
  if (event.type === "ready") {
    ws.ready = true;
    reconnectDelay = FIRST_DELAY_MS;
    setLive("live", t("Live"));
    ws.pinger = setInterval(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
    }, PING_MS);
    handlers.ready(!everReady);
    everReady = true;
  } else if (event.type === "error") {
    ws.refused = true; // a bad token: after the close, /me tells whether the session is gone
  } else {
    handlers.event(event);
  }
}
