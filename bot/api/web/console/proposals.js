// Proposed intents: new intents with their answers that agents proposed; admins approve or reject them.

import { api, isAdmin } from "./api.js";
import { $, announce, h, setText, timeElement } from "./dom.js";
import { ago } from "./format.js";
import { currentView } from "./view.js";

const LABELS = { proposed: "Waiting for an admin", approved: "Approved", rejected: "Rejected" };

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
    ? "New intents and their answers that agents proposed. Approve one and the next redistillation learns it; "
      + "reject it and it is never learned."
    : "New intents and their answers that agents proposed. The bot learns one at the next redistillation only once "
      + "an admin has approved it.");
  $("proposals-list").replaceChildren(...proposals.map(proposalItem));
  $("proposals-empty").hidden = proposals.length > 0;
}

function proposalItem(proposal) {
  const error = h("p", { className: "error small", role: "alert" });
  const decided = proposal.decided_at
    ? [` · ${proposal.status} by ${proposal.decider ?? "a former admin"} `, timeElement(proposal.decided_at, ago(proposal.decided_at))]
    : [];
  const li = h("li", { className: "review-item proposal", dataset: { name: proposal.name, status: proposal.status } },
    h("h3", {}, h("span", { className: "chip intent" }, proposal.name),
      h("span", { className: `pill small proposal-status status-${proposal.status}` },
        LABELS[proposal.status] ?? proposal.status)),
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
      proposals = proposals.map((p) => (p.name === result.name ? result : p));
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
