// Proposed intents: new intents with their answers that agents proposed; admins approve or reject them.

import { api, isAdmin } from "./api.js";
import { $, announce, h, setText, timeElement } from "./dom.js";
import { ago, decidedBy } from "./format.js";
import { t } from "./i18n.js";
import { currentView } from "./view.js";

const LABELS = { proposed: t("Waiting for an admin"), approved: t("Approved"), rejected: t("Rejected") };

let proposals = [];

export function initProposals() {
  $("proposals-refresh").addEventListener("click", loadProposals);
}

export async function loadProposals() {
  let found;
  try {
    found = await api("GET", "intents/new");
  } catch (error) {
    if (error.status !== 401) setText("proposals-error", error.message);
    return;
  }
  setText("proposals-error", "");
  proposals = found.reverse(); // newest first
  renderProposalCount();
  if (currentView() === "proposals") renderProposals();
}

function renderProposalCount() {
  const waiting = proposals.filter((p) => p.status === "proposed").length;
  const badge = $("tab-proposals-count");
  badge.textContent = String(waiting);
  badge.hidden = waiting === 0 || !isAdmin();
}

function renderProposals() {
  setText("proposals-explain", isAdmin()
    ? t("New intents and their answers that agents proposed. Approve one and the next redistillation learns it; reject it and it is never learned.")
    : t("New intents and their answers that agents proposed. The bot learns one at the next redistillation only once an admin has approved it."));
  $("proposals-list").replaceChildren(...proposals.map(proposalItem));
  $("proposals-empty").hidden = proposals.length > 0;
}

function proposalItem(proposal) {
  const error = h("p", { className: "error small", role: "alert" });
  const decided = proposal.decided_at
    ? [` · ${decidedBy(proposal.status, proposal.decider)} `, timeElement(proposal.decided_at, ago(proposal.decided_at))]
    : [];
  const li = h("li", { className: "review-item proposal", dataset: { name: proposal.name, status: proposal.status } },
    h("h3", {}, h("span", { className: "chip intent" }, proposal.name),
      h("span", { className: `pill small proposal-status status-${proposal.status}` },
        LABELS[proposal.status] ?? proposal.status)),
    h("blockquote", { className: "bubble answer" }, proposal.answer),
    h("ul", { className: "examples", "aria-label": t("Example messages") },
      proposal.examples.slice(0, 5).map((text) => h("li", {}, text)),
      proposal.examples.length > 5 ? h("li", {}, t("and {n} more", { n: proposal.examples.length - 5 })) : null),
    h("p", { className: "meta muted small" }, `${proposal.agent != null ? t("Proposed by {agent}", { agent: proposal.agent }) : t("Proposed by a former agent")} · `,
      timeElement(proposal.created_at, ago(proposal.created_at)), ...decided),
    isAdmin() ? h("div", { className: "review-actions" },
      h("button", { type: "button", className: "primary approve", disabled: proposal.status === "approved",
        onclick: () => decide("approve") }, t("Approve {intent}", { intent: proposal.name })),
      h("button", { type: "button", className: "reject", disabled: proposal.status === "rejected",
        onclick: () => decide("reject") }, t("Reject {intent}", { intent: proposal.name }))) : null,
    error);

  async function decide(action) {
    error.textContent = "";
    li.querySelectorAll("button").forEach((button) => { button.disabled = true; });
    try {
      const result = await api("POST", `intents/${encodeURIComponent(proposal.name)}/${action}`);
      proposals = proposals.map((p) => (p.name === result.name ? result : p));
      const replacement = proposalItem(result);
      li.replaceWith(replacement);
      renderProposalCount();
      announce(result.status === "approved" ? t("{intent} approved.", { intent: result.name })
        : t("{intent} rejected.", { intent: result.name }));
      replacement.querySelector("button:not([disabled])")?.focus();
    } catch (failure) {
      li.querySelector(".approve").disabled = proposal.status === "approved";
      li.querySelector(".reject").disabled = proposal.status === "rejected";
      if (failure.status !== 401) error.textContent = failure.message;
    }
  }

  return li;
}
