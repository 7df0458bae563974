// How one transcript entry looks: a message (with the model's intent, confidence and ranking, the bot's
// decision, feedback, and the relabel picker for a visitor's message) or a private note.

import { api, getAgent } from "./api.js";
import { announce, h, timeElement } from "./dom.js";
import { fixed } from "./format.js";
import { t } from "./i18n.js";
import { intentOptions } from "./intents.js";
import { dropReviewItem } from "./review.js";

const DECISIONS = {
  answer: t("answered"), clarify: t("asked to clarify"), fallback: t("fell back"), handoff: t("handed off"),
  form: t("form"), silent: t("silent (agent has it)"),
};
// The chip's name of a decision: in English, the server's own word.
const DECISION_NAMES = {
  answer: t("answer"), clarify: t("clarify"), fallback: t("fallback"), handoff: t("handoff"), form: t("form"),
  silent: t("silent"),
};

function who(m) {
  if (m.role === "user") return t("Visitor");
  if (m.role === "bot") return t("Bot");
  return m.agent ?? t("Agent");
}

export function messageItem(m) {
  const meta = [];
  if (m.role === "user") {
    const low = m.confidence !== null && m.confidence < 0.5;
    if (m.intent) {
      meta.push(h("span", { className: "chip intent", title: t("Intent the model predicted") }, m.intent));
      meta.push(h("span", { className: `chip confidence${low ? " low" : ""}`, title: t("Confidence") }, fixed(m.confidence)));
    }
    const others = (m.ranking || []).filter((r) => r.name !== m.intent).slice(0, 2);
    if (others.length) {
      meta.push(h("span", { className: "ranking", title: t("Next intents in the ranking") },
        t("then {intents}", { intents: others.map((r) => `${r.name} ${fixed(r.confidence)}`).join(", ") })));
    }
    if (m.correction) {
      const confirmed = m.correction.intent === m.intent;
      meta.push(h("span", { className: `chip correction${confirmed ? " confirmed" : ""}` },
        confirmed ? t("✓ confirmed") : t("corrected to {intent}", { intent: m.correction.intent })));
    }
  } else if (m.role === "bot") {
    if (m.decision) meta.push(h("span", { className: `chip decision decision-${m.decision}`, title: t("Decision: {decision}", { decision: DECISIONS[m.decision] ?? m.decision }) },
      DECISION_NAMES[m.decision] ?? m.decision));
    if (m.template) meta.push(h("span", { className: "chip template", title: t("Answer template") }, m.template));
    if (m.feedback) meta.push(h("span", { className: `chip feedback feedback-${m.feedback}` },
      m.feedback === "down" ? t("thumbs-down") : t("thumbs-up")));
  }
  const item = h("li", { className: `msg msg-${m.role}`, dataset: { messageId: String(m.id) } },
    h("div", { className: "msg-head" },
      h("span", { className: "who" }, who(m)),
      timeElement(m.created_at)),
    h("div", { className: "bubble" }, m.text),
    m.buttons?.length ? h("ul", { className: "quick", "aria-label": t("Buttons offered") },
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
    h("label", { for: selectId }, t("Intent of this message")),
    select,
    h("button", { type: "submit" }, t("Save")),
    h("button", { type: "button", className: "quiet", onclick: () => toggle(false) }, t("Cancel")),
    error);
  const button = h("button", {
    type: "button", className: "quiet small relabel-toggle", "aria-expanded": "false",
    onclick: () => toggle(form.hidden),
  }, t("Relabel"));
  function toggle(show) {
    form.hidden = !show;
    button.setAttribute("aria-expanded", String(show));
    if (show) select.focus();
    else button.focus();
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!select.value) {
      error.textContent = t("Choose an intent.");
      return;
    }
    error.textContent = "";
    try {
      const result = await api("PUT", `messages/${m.id}/intent`, { intent: select.value });
      m.correction = { intent: result.intent, agent_id: getAgent()?.id, created_at: new Date().toISOString() };
      announce(result.confirmed ? t("Confirmed {intent}.", { intent: result.intent }) : t("Relabelled to {intent}.", { intent: result.intent }));
      dropReviewItem(m.id);
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
  if (n.agent_id === getAgent()?.id) return getAgent().display_name;
  return n.agent_id ? t("Agent #{id}", { id: n.agent_id }) : t("An agent");
}

export function noteItem(n) {
  return h("li", { className: "note", dataset: { noteId: String(n.id) } },
    h("div", { className: "msg-head" },
      h("span", { className: "note-label" }, t("Private note")),
      h("span", { className: "who" }, noteAuthor(n)),
      n.created_at ? timeElement(n.created_at) : null),
    h("div", { className: "bubble" }, n.text),
    h("div", { className: "meta muted small" }, t("Only agents see this; the visitor never does.")));
}
