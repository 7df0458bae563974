// The review queue: visitors' messages with low confidence or a thumbs-down, to confirm or correct, and the
// count on its tab.

import { api } from "./api.js";
import { $, announce, h, setText, timeElement } from "./dom.js";
import { ago, fixed } from "./format.js";
import { t } from "./i18n.js";
import { intentOptions } from "./intents.js";
import { currentView } from "./view.js";

let items = [];
let soonTimer = null;
let corrected = () => {};

/** Bind the refresh button; onCorrected(conversationId) runs after a message of that conversation is decided. */
export function initReview({ onCorrected }) {
  corrected = onCorrected;
  $("review-refresh").addEventListener("click", loadReview);
}

export function resetReview() {
  clearTimeout(soonTimer);
}

export async function loadReview() {
  let found;
  try {
    found = await api("GET", "review?limit=100");
  } catch (error) {
    if (error.status !== 401) setText("review-error", error.message);
    return;
  }
  setText("review-error", "");
  items = found;
  renderReviewCount();
  if (currentView() === "review") renderReview();
}

/** Reload after a burst of live messages has settled. */
export function reviewSoon() {
  clearTimeout(soonTimer);
  soonTimer = setTimeout(loadReview, 800);
}

/** A message was relabelled elsewhere (in the transcript): it leaves the queue. */
export function dropReviewItem(messageId) {
  items = items.filter((r) => r.id !== messageId);
  renderReviewCount();
}

/** Redraw the pickers once the intent names have come (if there is anything to review). */
export function rerenderReview() {
  if (items.length) renderReview();
}

function renderReviewCount() {
  const badge = $("tab-review-count");
  badge.textContent = String(items.length);
  badge.hidden = items.length === 0;
}

function renderReview() {
  const list = $("review-list");
  const focusedId = document.activeElement?.closest?.(".review-item")?.dataset.messageId;
  list.replaceChildren(...items.map(reviewItem));
  $("review-empty").hidden = items.length > 0;
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
      `${t("Predicted")} `,
      h("span", { className: "chip intent" }, item.intent ?? "–"),
      " ",
      h("span", { className: `chip confidence${item.confidence !== null && item.confidence < 0.5 ? " low" : ""}` }, fixed(item.confidence)),
      others.length ? h("span", { className: "ranking" }, ` ${t("then {intents}", { intents: others.map((r) => `${r.name} ${fixed(r.confidence)}`).join(", ") })}`) : null,
      " · ",
      timeElement(item.created_at, ago(item.created_at)),
      " · ",
      h("a", { href: `#/inbox/${encodeURIComponent(item.conversation_id)}` }, t("Open conversation"))),
    h("div", { className: "review-actions" },
      h("button", { type: "button", className: "confirm", disabled: !item.intent, onclick: () => decide(item.intent) },
        item.intent ? t("Confirm {intent}", { intent: item.intent }) : t("Confirm")),
      h("label", { for: selectId }, t("Correct intent")),
      select,
      h("button", { type: "button", className: "primary correct", onclick: () => decide(select.value) }, t("Save correction"))),
    error);

  async function decide(intent) {
    if (!intent) {
      error.textContent = t("Choose the right intent first.");
      select.focus();
      return;
    }
    error.textContent = "";
    li.querySelectorAll("button, select").forEach((control) => { control.disabled = true; });
    try {
      const result = await api("PUT", `messages/${item.id}/intent`, { intent });
      const next = li.nextElementSibling?.querySelector("select") ?? li.previousElementSibling?.querySelector("select");
      items = items.filter((r) => r.id !== item.id);
      li.remove();
      renderReviewCount();
      $("review-empty").hidden = items.length > 0;
      announce(result.confirmed ? t("Confirmed “{text}” as {intent}.", { text: item.text, intent: result.intent })
        : t("Corrected “{text}” to {intent}.", { text: item.text, intent: result.intent }));
      next?.focus();
      corrected(item.conversation_id);
    } catch (failure) {
      li.querySelectorAll("button, select").forEach((control) => { control.disabled = false; });
      if (failure.status !== 401) error.textContent = failure.message;
    }
  }

  return li;
}
