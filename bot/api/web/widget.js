/*
 * Distilbot chat widget: plain JavaScript, no build step, nothing fetched but the bot's own API.
 *
 * Embed it with one tag, anywhere in the page:
 *
 *   <script src="https://bot.example/widget.js" data-api="https://bot.example" data-locale="en"></script>
 *
 * Attributes (all optional):
 *   data-api            the bot's base URL; defaults to the origin the script was loaded from. A page on
 *                       another origin needs that origin in the server's DISTILBOT_CORS_ORIGINS.
 *   data-locale         "en" (default) or "zh"; any other value falls back to English.
 *   data-color-primary  the accent colour (launcher, header, visitor's bubbles), e.g. "#0b6e4f".
 *   data-user-id, data-user-email, data-user-hash
 *                       the shop's logged-in customer (identity verification, as Intercom does it): the id,
 *                       their e-mail address, and the hex HMAC-SHA256 of the id keyed with the secret the
 *                       shop's server and the bot share (DISTILBOT_IDENTITY_SECRET). Such a visitor may ask
 *                       about and cancel their own orders without giving an e-mail address. Compute the hash
 *                       on the shop's server, never in the page, e.g. in Python:
 *                         hmac.new(SECRET.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
 *                       A hash that does not verify is refused. Leave them out for anonymous visitors.
 *
 * Or, before the script tag, a config object (it wins over the attributes):
 *
 *   window.DistilbotWidgetConfig = {
 *     api: "https://bot.example",
 *     locale: "zh",
 *     strings: {title: "Northwind help", placeholder: "Ask us anything…"},   // any key of STRINGS.en
 *     user: {id: "cust-1001", email: "ana@example.com", hash: "<hex HMAC-SHA256 of the id>"},
 *     colors: {primary: "#0b6e4f", primaryText: "#fff", background: "#fff", text: "#1d1d1f",
 *              botBubble: "#f0f1f3", agentBubble: "#e6f0ff", focus: "#ffbf47"},
 *   };
 *
 * Everything is drawn inside an open shadow root on a <distilbot-widget> element, so the page's CSS and
 * the widget's CSS don't touch each other. The session (conversation id and its secret token) is kept in
 * localStorage per API origin, so a reload or another tab continues the same conversation.
 * `window.DistilbotWidget` exposes open(), close(), send(text) and, for tests, the live socket (_socket).
 */
(() => {
  "use strict";

  if (window.DistilbotWidget) return; // embedded twice: keep the first

  const STRINGS = {
    en: {
      title: "Chat with us",
      subtitle: "We usually answer in seconds",
      greeting: "Hi! How can we help you today?",
      openChat: "Open chat",
      closeChat: "Close chat",
      unread: "{count} unread",
      placeholder: "Type your message…",
      inputLabel: "Your message",
      send: "Send",
      you: "You",
      bot: "Assistant",
      agent: "Agent",
      typing: "Typing…",
      agentTyping: "{agent} is typing…",
      connecting: "Connecting you to an agent…",
      agentJoined: "{agent} joined the chat",
      resolved: "This conversation has been resolved.",
      ratePrompt: "How would you rate this conversation?",
      rate: "Rate {score} out of 5",
      thanks: "Thanks for your feedback!",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      error: "Sorry, something went wrong. Please try again.",
    },
    zh: {
      title: "在线客服",
      subtitle: "通常几秒内回复",
      greeting: "您好！请问有什么可以帮您？",
      openChat: "打开聊天",
      closeChat: "关闭聊天",
      unread: "{count} 条未读消息",
      placeholder: "请输入消息…",
      inputLabel: "您的消息",
      send: "发送",
      you: "您",
      bot: "智能助手",
      agent: "客服",
      typing: "正在输入…",
      agentTyping: "{agent} 正在输入…",
      connecting: "正在为您转接人工客服…",
      agentJoined: "{agent} 已加入对话",
      resolved: "此对话已结束。",
      ratePrompt: "您对本次服务满意吗？",
      rate: "评分：{score} 分（满分 5 分）",
      thanks: "感谢您的评价！",
      helpful: "有帮助",
      notHelpful: "没有帮助",
      error: "抱歉，出错了，请重试。",
    },
  };

  const COLORS = {
    primary: "#1f5fbf",
    primaryText: "#ffffff",
    background: "#ffffff",
    text: "#1d1d1f",
    muted: "#5f6368",
    botBubble: "#f0f1f3",
    agentBubble: "#e7f5ee",
    focus: "#ffbf47",
  };

  const POLL_MS = 3000; // history polling while the socket is down
  const PING_MS = 25000; // keeps idle proxies from closing the socket
  const MAX_BACKOFF_MS = 30000;
  const TYPING_SHOW_MS = 5000; // an agent's "typing" event is shown this long unless a message comes first
  const TYPING_SEND_MS = 2000; // the visitor's typing is sent at most this often

  // ---- configuration: attributes of our own script tag, then the page's config object ----

  const script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  const data = script ? script.dataset : {};
  const config = window.DistilbotWidgetConfig || {};
  const API = String(config.api || data.api || (script ? new URL(script.src, location.href).origin : location.origin))
    .replace(/\/+$/, "");
  const LOCALE = String(config.locale || data.locale || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  const T = { ...STRINGS.en, ...STRINGS[LOCALE], ...(config.strings || {}) };
  const colors = { ...COLORS, ...(data.colorPrimary ? { primary: data.colorPrimary } : {}), ...(config.colors || {}) };
  const STORAGE_KEY = "distilbot:session:" + new URL(API).origin;
  const user = config.user || { id: data.userId, email: data.userEmail, hash: data.userHash };
  const IDENTITY = user.id && user.hash
    ? { user_id: String(user.id), user_hash: String(user.hash), ...(user.email ? { email: String(user.email) } : {}) }
    : null;

  const format = (template, values) => String(template).replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : ""));

  // ---- the DOM: a static skeleton (no interpolated text), filled in with textContent below ----

  const CSS = `
    :host { all: initial; }
    .root { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "PingFang SC",
            "Microsoft YaHei", sans-serif; color: var(--text); }
    *, *::before, *::after { box-sizing: border-box; }
    button, input { font: inherit; color: inherit; margin: 0; }
    button { cursor: pointer; }
    :focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
    .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 60px; height: 60px;
                border: 0; border-radius: 50%; background: var(--primary); color: var(--primary-text);
                box-shadow: 0 4px 16px rgba(0,0,0,.25); display: grid; place-items: center; padding: 0; }
    .launcher svg { width: 28px; height: 28px; fill: currentColor; }
    .launcher .icon-close { display: none; }
    .launcher[aria-expanded="true"] .icon-open { display: none; }
    .launcher[aria-expanded="true"] .icon-close { display: block; }
    .badge { position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;
             border-radius: 11px; background: #d93025; color: #fff; font-size: 12px; font-weight: 700;
             line-height: 22px; text-align: center; border: 2px solid #fff; }
    .panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483000; width: 370px;
             height: min(600px, calc(100vh - 112px)); display: flex; flex-direction: column;
             background: var(--background); border-radius: 14px; overflow: hidden;
             box-shadow: 0 10px 40px rgba(0,0,0,.28); }
    .panel[hidden], [hidden] { display: none !important; }
    @media (max-width: 480px) {
      .panel { right: 0; bottom: 0; width: 100vw; height: 100vh; border-radius: 0; }
      .launcher[aria-expanded="true"] { display: none; }
    }
    header { display: flex; align-items: center; gap: 10px; padding: 14px 14px 14px 18px;
             background: var(--primary); color: var(--primary-text); }
    header .titles { flex: 1; min-width: 0; }
    header h2 { font-size: 16px; font-weight: 650; margin: 0; }
    header p { font-size: 12.5px; margin: 2px 0 0; opacity: .85; }
    .icon-button { border: 0; background: transparent; width: 34px; height: 34px; border-radius: 8px;
                   display: grid; place-items: center; padding: 0; }
    .icon-button:hover { background: rgba(255,255,255,.15); }
    .icon-button svg { width: 20px; height: 20px; fill: currentColor; }
    .banner { padding: 8px 16px; font-size: 13.5px; background: #fff7e0; color: #5c4400;
              border-bottom: 1px solid #f0e0b0; }
    .banner.joined { background: #e7f5ee; color: #0d5132; border-color: #bfe3cf; }
    .banner.resolved { background: #eef1f5; color: #33404d; border-color: #d8dee6; }
    .log { flex: 1; overflow-y: auto; padding: 16px 14px 8px; display: flex; flex-direction: column; gap: 10px; }
    .msg { max-width: 85%; display: flex; flex-direction: column; gap: 4px; }
    .msg.user { align-self: flex-end; align-items: flex-end; }
    .msg.bot, .msg.agent, .msg.intro { align-self: flex-start; }
    .who { font-size: 12px; color: var(--muted); padding: 0 4px; }
    .bubble { padding: 9px 13px; border-radius: 16px; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
    .user .bubble { background: var(--primary); color: var(--primary-text); border-bottom-right-radius: 4px; }
    .bot .bubble, .intro .bubble { background: var(--bot-bubble); border-bottom-left-radius: 4px; }
    .agent .bubble { background: var(--agent-bubble); border-bottom-left-radius: 4px; }
    .bubble a { color: inherit; text-decoration: underline; }
    .msg.failed .bubble { opacity: .6; }
    .quick { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 2px; }
    .quick button { border: 1.5px solid var(--primary); color: var(--primary); background: var(--background);
                    border-radius: 16px; padding: 5px 12px; font-size: 14px; }
    .quick button:hover { background: var(--bot-bubble); }
    .feedback { display: flex; gap: 2px; }
    .feedback button { border: 0; background: transparent; border-radius: 6px; padding: 4px 6px;
                       line-height: 0; color: var(--muted); opacity: .6; }
    .feedback button svg { width: 15px; height: 15px; fill: currentColor; }
    .feedback button:hover { opacity: 1; }
    .feedback button[aria-pressed="true"] { opacity: 1; color: var(--primary); background: var(--bot-bubble); }
    .note { align-self: center; font-size: 13px; color: var(--muted); text-align: center; }
    .note.error { color: #b3261e; }
    .typing { padding: 0 18px 6px; font-size: 13px; color: var(--muted); display: flex; align-items: center; gap: 8px; }
    .dots { display: inline-flex; gap: 3px; }
    .dots i { width: 6px; height: 6px; border-radius: 50%; background: var(--muted); animation: blink 1.2s infinite; }
    .dots i:nth-child(2) { animation-delay: .2s; }
    .dots i:nth-child(3) { animation-delay: .4s; }
    @keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
    @media (prefers-reduced-motion: reduce) { .dots i { animation: none; } }
    .rating { padding: 12px 16px; border-top: 1px solid #e3e6ea; text-align: center; font-size: 14px; }
    .rating .scores { display: flex; justify-content: center; gap: 8px; margin-top: 8px; }
    .rating .scores button { width: 40px; height: 40px; border-radius: 50%; border: 1.5px solid var(--primary);
                             background: var(--background); color: var(--primary); font-weight: 650; }
    .rating .scores button:hover { background: var(--primary); color: var(--primary-text); }
    form { display: flex; gap: 8px; padding: 10px 12px; border-top: 1px solid #e3e6ea; }
    form input { flex: 1; min-width: 0; border: 1.5px solid #c9ced6; border-radius: 20px; padding: 9px 14px;
                 background: var(--background); }
    form input:focus-visible { outline-offset: 0; border-color: var(--primary); }
    .send { border: 0; border-radius: 50%; width: 40px; height: 40px; background: var(--primary);
            color: var(--primary-text); display: grid; place-items: center; padding: 0; }
    .send svg { width: 18px; height: 18px; fill: currentColor; }
  `;

  const SKELETON = `
    <div class="root">
      <div class="panel" id="dw-panel" role="dialog" aria-labelledby="dw-title" hidden>
        <header>
          <div class="titles"><h2 id="dw-title"></h2><p class="subtitle"></p></div>
          <button type="button" class="icon-button close">
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z"/></svg>
          </button>
        </header>
        <div class="banner" role="status" hidden></div>
        <div class="log" role="log" aria-live="polite" aria-relevant="additions"></div>
        <div class="typing" role="status" hidden><span class="dots" aria-hidden="true"><i></i><i></i><i></i></span><span class="typing-text"></span></div>
        <div class="rating" hidden>
          <p class="rate-prompt"></p>
          <div class="scores"></div>
        </div>
        <form>
          <input type="text" autocomplete="off" maxlength="2000">
          <button type="submit" class="send">
            <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 20.5v-6.2L14 12 3 9.7V3.5L22 12z"/></svg>
          </button>
        </form>
      </div>
      <button type="button" class="launcher" aria-expanded="false" aria-controls="dw-panel">
        <svg class="icon-open" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"/></svg>
        <svg class="icon-close" viewBox="0 0 24 24" aria-hidden="true"><path d="M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z"/></svg>
        <span class="badge" aria-hidden="true" hidden></span>
      </button>
    </div>
  `;

  const host = document.createElement("distilbot-widget");
  const shadow = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = CSS;
  const skeleton = document.createElement("template");
  skeleton.innerHTML = SKELETON; // constant markup only: message text never goes through innerHTML
  shadow.append(style, skeleton.content);
  const $ = (selector) => shadow.querySelector(selector);
  const els = {
    root: $(".root"), panel: $(".panel"), launcher: $(".launcher"), badge: $(".badge"), close: $(".close"),
    banner: $(".banner"), log: $(".log"), typing: $(".typing"), typingText: $(".typing-text"),
    rating: $(".rating"), scores: $(".scores"), form: $("form"), input: $("form input"), send: $(".send"),
  };

  const cssVars = { primary: "--primary", primaryText: "--primary-text", background: "--background", text: "--text",
    muted: "--muted", botBubble: "--bot-bubble", agentBubble: "--agent-bubble", focus: "--focus" };
  for (const [name, variable] of Object.entries(cssVars)) els.root.style.setProperty(variable, colors[name]);

  $("#dw-title").textContent = T.title;
  $(".subtitle").textContent = T.subtitle;
  els.close.setAttribute("aria-label", T.closeChat);
  els.input.placeholder = T.placeholder;
  els.input.setAttribute("aria-label", T.inputLabel);
  els.send.setAttribute("aria-label", T.send);
  els.log.setAttribute("aria-label", T.title);
  $(".rate-prompt").textContent = T.ratePrompt;
  for (let score = 1; score <= 5; score++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(score);
    button.setAttribute("aria-label", format(T.rate, { score }));
    button.addEventListener("click", () => rate(score));
    els.scores.append(button);
  }

  // ---- state ----

  let session = loadSession(); // {id, token} or null
  let status = "bot";
  let agentName = null;
  let csat = null;
  let isOpen = false;
  let unread = 0;
  let waitingForBot = 0; // chat requests in flight
  let agentTypingTimer = null;
  let lastTypingSent = 0;
  let sendQueue = Promise.resolve(); // turns go one after another: the first one creates the session
  const shown = new Map(); // message id -> its element, so every message is drawn once
  const pending = []; // the visitor's messages drawn before the server gave them an id: {text, el}
  const buttonTitles = new Map(); // quick-reply payload -> title, to show "/delivery_time" as "Delivery times"

  // the live socket and its fallback
  let socket = null;
  let socketReady = false;
  let reconnectTimer = null;
  let reconnectAttempt = 0;
  let pollTimer = null;
  let pingTimer = null;

  function loadSession() {
    try {
      const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      // A conversation belongs to the customer it started with: another login (or none) starts afresh.
      const sameUser = stored && (stored.user || null) === (IDENTITY ? IDENTITY.user_id : null);
      if (stored && !sameUser) localStorage.removeItem(STORAGE_KEY); // not this visitor's to continue
      return stored && stored.id && stored.token && sameUser ? { id: stored.id, token: stored.token } : null;
    } catch {
      return null; // storage blocked or garbage: start afresh
    }
  }

  function saveSession(value) {
    session = value;
    try {
      if (value) localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...value, user: IDENTITY ? IDENTITY.user_id : null }));
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      /* private mode: the session lasts as long as the page */
    }
  }

  // ---- HTTP ----

  async function request(method, path, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (session) headers.Authorization = "Bearer " + session.token;
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch {
        /* not JSON: keep the status text */
      }
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return response.status === 204 ? null : response.json();
  }

  const conversationPath = () => "/api/conversations/" + encodeURIComponent(session.id);

  // ---- text with links, built as DOM nodes ----

  // http(s) URLs, or bare domains such as northwind.example/returns (not the domain of an e-mail address)
  const LINK = /\bhttps?:\/\/[^\s<>"']+|(?<![@\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?:\/[^\s<>"']*)?/gi;
  const TRAILING = /[.,;:!?)\]}'"»”’]+$/; // sentence punctuation after a link is not part of it

  function linkify(parent, text) {
    let last = 0;
    for (const match of text.matchAll(LINK)) {
      const raw = match[0].replace(TRAILING, "");
      const start = match.index;
      let url;
      try {
        url = new URL(/^https?:\/\//i.test(raw) ? raw : "https://" + raw);
      } catch {
        continue;
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") continue;
      parent.append(document.createTextNode(text.slice(last, start)));
      const a = document.createElement("a");
      a.href = url.href;
      a.textContent = raw;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.append(a);
      last = start + raw.length;
    }
    parent.append(document.createTextNode(text.slice(last)));
  }

  // ---- drawing messages ----

  function bubble(parent, text, withLinks) {
    const p = document.createElement("p");
    p.className = "bubble";
    if (withLinks) linkify(p, text);
    else p.textContent = text;
    parent.append(p);
    return p;
  }

  function who(parent, text) {
    const span = document.createElement("span");
    span.className = "who";
    span.textContent = text;
    parent.append(span);
  }

  function userText(text) {
    return buttonTitles.get(text) || text;
  }

  function drawUser(text) {
    const el = document.createElement("div");
    el.className = "msg user";
    who(el, T.you);
    bubble(el, userText(text), false);
    return el;
  }

  function drawReply(message) {
    const el = document.createElement("div");
    el.className = "msg " + message.role;
    who(el, message.role === "agent" ? message.agent || T.agent : T.bot);
    bubble(el, message.text, true);
    if (message.buttons && message.buttons.length) {
      const quick = document.createElement("div");
      quick.className = "quick";
      for (const { title, payload } of message.buttons) {
        buttonTitles.set(payload, title);
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = title;
        button.addEventListener("click", () => send(payload, title));
        quick.append(button);
      }
      el.append(quick);
    }
    if (message.role === "bot") el.append(feedbackButtons(message));
    return el;
  }

  // Icons are inline SVG (an emoji font may be missing); the path data is constant.
  const THUMB_UP = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 " +
    "7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";
  const THUMB_DOWN = "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 " +
    "4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z";

  function icon(d) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    svg.append(path);
    return svg;
  }

  function feedbackButtons(message) {
    const box = document.createElement("div");
    box.className = "feedback";
    const buttons = {};
    for (const [value, path, label] of [["up", THUMB_UP, T.helpful], ["down", THUMB_DOWN, T.notHelpful]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.append(icon(path));
      button.setAttribute("aria-label", label);
      button.setAttribute("aria-pressed", String(message.feedback === value));
      button.addEventListener("click", async () => {
        const next = button.getAttribute("aria-pressed") === "true" ? null : value; // a second click takes it back
        try {
          await request("PUT", conversationPath() + "/messages/" + message.id + "/feedback", { value: next });
          for (const [v, b] of Object.entries(buttons)) b.setAttribute("aria-pressed", String(v === next));
        } catch {
          note(T.error, true);
        }
      });
      buttons[value] = button;
      box.append(button);
    }
    return box;
  }

  // Add a stored message (from a chat reply, the socket or the history), once. `notify`: count it as unread.
  function addMessage(message, notify) {
    if (shown.has(message.id)) return;
    let el;
    if (message.role === "user") {
      const index = pending.findIndex((p) => p.text === message.text);
      if (index >= 0) el = pending.splice(index, 1)[0].el; // our own message, now with its id
      else el = drawUser(message.text); // written in another tab
    } else {
      el = drawReply(message);
      if (message.role === "agent") hideAgentTyping();
    }
    el.dataset.id = String(message.id);
    shown.set(message.id, el);
    if (!el.isConnected) insertInOrder(el, message.id);
    refreshQuickReplies();
    scrollDown();
    if (notify && !isOpen && message.role !== "user") {
      unread += 1;
      renderLauncher();
    }
  }

  // Ids grow with time: a message found late (by polling) goes before any later one already drawn.
  function insertInOrder(el, id) {
    const later = [...els.log.querySelectorAll(".msg[data-id]")].find((m) => Number(m.dataset.id) > id);
    els.log.insertBefore(el, later || null);
  }

  // Only the newest message's quick replies can be clicked; older ones are history.
  function refreshQuickReplies() {
    const messages = els.log.querySelectorAll(".msg");
    const newest = messages[messages.length - 1];
    for (const quick of els.log.querySelectorAll(".quick")) quick.hidden = quick.parentElement !== newest;
  }

  function note(text, isError) {
    const p = document.createElement("p");
    p.className = "note" + (isError ? " error" : "");
    p.textContent = text;
    els.log.append(p);
    scrollDown();
  }

  function scrollDown() {
    els.log.scrollTop = els.log.scrollHeight;
  }

  function intro() {
    const el = document.createElement("div");
    el.className = "msg intro";
    who(el, T.bot);
    bubble(el, T.greeting, false);
    els.log.append(el);
  }

  // ---- typing, status, rating ----

  function renderTyping() {
    const agentTyping = agentTypingTimer !== null;
    els.typing.hidden = !waitingForBot && !agentTyping;
    els.typingText.textContent = agentTyping ? format(T.agentTyping, { agent: agentName || T.agent }) : T.typing;
  }

  function showAgentTyping(name) {
    if (name) agentName = name;
    clearTimeout(agentTypingTimer);
    agentTypingTimer = setTimeout(hideAgentTyping, TYPING_SHOW_MS);
    renderTyping();
  }

  function hideAgentTyping() {
    clearTimeout(agentTypingTimer);
    agentTypingTimer = null;
    renderTyping();
  }

  function setStatus(next, agent, score) {
    status = next || status;
    if (agent !== undefined) agentName = agent || agentName;
    if (score !== undefined) csat = score;
    const banner = els.banner;
    banner.className = "banner";
    banner.hidden = false;
    if (status === "waiting_for_agent") {
      banner.textContent = T.connecting;
    } else if (status === "with_agent") {
      banner.textContent = format(T.agentJoined, { agent: agentName || T.agent });
      banner.classList.add("joined");
    } else if (status === "resolved") {
      banner.textContent = csat ? T.resolved + " " + T.thanks : T.resolved;
      banner.classList.add("resolved");
    } else {
      banner.hidden = true;
    }
    els.rating.hidden = !(status === "resolved" && !csat);
  }

  async function rate(score) {
    try {
      await request("PUT", conversationPath() + "/csat", { score });
      setStatus("resolved", undefined, score);
    } catch {
      note(T.error, true);
    }
  }

  // ---- sending ----

  // `text` goes to the bot (a quick reply's payload); `label` is what the visitor sees (the button's title).
  function send(text, label = text) {
    text = String(text);
    if (!text.trim()) return;
    const el = drawUser(label);
    els.log.append(el);
    pending.push({ text, el });
    refreshQuickReplies();
    scrollDown();
    waitingForBot += 1;
    renderTyping();
    sendQueue = sendQueue.then(() => chat(text, el)).finally(() => {
      waitingForBot -= 1;
      renderTyping();
    });
    return sendQueue;
  }

  async function chat(text, el) {
    let reply;
    try {
      const body = { message: text, ...(session ? { session_id: session.id } : {}), ...(IDENTITY ? { identity: IDENTITY } : {}) };
      reply = await request("POST", "/api/chat", body);
    } catch (error) {
      if (session && (error.status === 403 || error.status === 404)) {
        forgetSession(); // the conversation is gone (or the token with it): start a new one
        return chat(text, el);
      }
      el.classList.add("failed");
      const index = pending.findIndex((p) => p.el === el);
      if (index >= 0) pending.splice(index, 1);
      note(error.status === 422 || error.status === 429 ? error.message : T.error, true);
      return;
    }
    if (reply.session_token) {
      saveSession({ id: reply.session_id, token: reply.session_token });
      connect();
    }
    for (const message of reply.replies) addMessage({ ...message, role: "bot", feedback: null }, true);
    setStatus(reply.status);
    if (!socketReady) sync(); // no live events: the visitor's own message gets its id from the history
  }

  function forgetSession() {
    saveSession(null);
    disconnect();
    for (const el of shown.values()) el.remove();
    shown.clear();
    setStatus("bot", null, null);
  }

  // ---- history ----

  // Fetch the whole history and draw what is new. `notify`: new bot/agent messages count as unread.
  async function sync(notify = true) {
    if (!session) return;
    const id = session.id;
    try {
      const history = await request("GET", conversationPath());
      if (!session || session.id !== id) return;
      for (const message of history.messages) addMessage(message, notify);
      setStatus(history.status, history.agent, history.csat);
    } catch (error) {
      if (error.status === 403 || error.status === 404) forgetSession();
    }
  }

  // ---- live events, with reconnects and polling while the socket is down ----

  function connect() {
    if (!session || socket) return;
    clearTimeout(reconnectTimer);
    const id = session.id;
    const token = session.token;
    let refused = false;
    const ws = new WebSocket(API.replace(/^http/, "ws") + conversationPath() + "/live");
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token }));
    ws.onmessage = (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (data.type === "ready") {
        socketReady = true;
        reconnectAttempt = 0;
        stopPolling();
        clearInterval(pingTimer);
        pingTimer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send('{"type":"ping"}'), PING_MS);
        sync(); // catch up on whatever happened while we were away
      } else if (data.type === "message" && data.message) {
        addMessage(data.message, true);
      } else if (data.type === "status") {
        setStatus(data.status, data.agent);
      } else if (data.type === "typing" && data.role === "agent") {
        showAgentTyping(data.agent);
      } else if (data.type === "error") {
        refused = true; // a bad token: the history request below tells whether the session is gone
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return; // an old socket we already replaced
      socket = null;
      socketReady = false;
      clearInterval(pingTimer);
      if (!session || session.id !== id) return;
      if (refused) return void sync();
      startPolling();
      // 1 s, 2 s, 4 s … up to 30 s, with jitter so many visitors don't come back at once
      const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** reconnectAttempt) * (0.75 + Math.random() / 2);
      reconnectAttempt += 1;
      reconnectTimer = setTimeout(connect, delay);
    };
  }

  function disconnect() {
    clearTimeout(reconnectTimer);
    clearInterval(pingTimer);
    stopPolling();
    const ws = socket;
    socket = null;
    socketReady = false;
    if (ws) ws.close();
  }

  function startPolling() {
    if (!pollTimer) pollTimer = setInterval(sync, POLL_MS);
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = null;
  }

  // ---- opening and closing ----

  function renderLauncher() {
    els.launcher.setAttribute("aria-expanded", String(isOpen));
    let label = isOpen ? T.closeChat : T.openChat;
    if (unread && !isOpen) label += " (" + format(T.unread, { count: unread }) + ")";
    els.launcher.setAttribute("aria-label", label);
    els.badge.hidden = !unread || isOpen;
    els.badge.textContent = String(unread);
  }

  function open() {
    isOpen = true;
    unread = 0;
    els.panel.hidden = false;
    renderLauncher();
    scrollDown();
    els.input.focus();
  }

  function close() {
    isOpen = false;
    els.panel.hidden = true;
    renderLauncher();
    els.launcher.focus();
  }

  els.launcher.addEventListener("click", () => (isOpen ? close() : open()));
  els.close.addEventListener("click", close);
  els.root.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && isOpen) {
      event.preventDefault();
      close();
    }
  });
  els.form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the input submits the form
    const text = els.input.value;
    if (!text.trim()) return;
    els.input.value = "";
    send(text);
  });
  els.input.addEventListener("input", () => {
    // tell the agent we are typing, not more often than every 2 s
    if (socketReady && status === "with_agent" && Date.now() - lastTypingSent > TYPING_SEND_MS) {
      lastTypingSent = Date.now();
      socket.send('{"type":"typing"}');
    }
  });

  // Another tab started (or forgot) the conversation: follow it.
  window.addEventListener("storage", (event) => {
    if (event.key !== STORAGE_KEY) return;
    const stored = loadSession();
    if (stored && (!session || stored.id !== session.id)) {
      if (session) forgetSession();
      session = stored;
      sync();
      connect();
    } else if (!stored && session) {
      forgetSession();
    }
  });

  // ---- start ----

  function mount() {
    document.body.append(host);
    intro();
    renderLauncher();
    if (session) {
      sync(false).then(() => connect()); // restore the history quietly, then go live
    }
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.DistilbotWidget = {
    open, close, send,
    get sessionId() { return session ? session.id : null; },
    get _socket() { return socket; }, // for tests: close it to exercise the reconnect / polling path
  };
})();
