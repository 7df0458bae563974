// Conversation statuses: the one place their wire values are spelled, and how the console shows them.

import { getAgent } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

/** The server's conversation statuses (the API and live events use these exact strings). */
export const ConversationStatus = Object.freeze({
  BOT: "bot",
  WAITING: "waiting_for_agent",
  WITH_AGENT: "with_agent",
  RESOLVED: "resolved",
});

// In the order of the inbox's status filter (each has a count-<status> element).
export const STATUSES = Object.freeze([ConversationStatus.BOT, ConversationStatus.WAITING,
  ConversationStatus.WITH_AGENT, ConversationStatus.RESOLVED]);

const LABELS = {
  [ConversationStatus.BOT]: t("Bot"),
  [ConversationStatus.WAITING]: t("Waiting"),
  [ConversationStatus.RESOLVED]: t("Resolved"),
};

export function ownedElsewhere(conversation) {
  return conversation.status === ConversationStatus.WITH_AGENT && conversation.agent_id !== null
    && conversation.agent_id !== undefined && conversation.agent_id !== getAgent()?.id;
}

export function mine(conversation) {
  return conversation.status === ConversationStatus.WITH_AGENT && conversation.agent_id === getAgent()?.id;
}

export function statusText(conversation) {
  if (conversation.status === ConversationStatus.WITH_AGENT) {
    if (mine(conversation)) return t("With you");
    return conversation.agent ? t("With {agent}", { agent: conversation.agent }) : t("With an agent");
  }
  return LABELS[conversation.status] ?? conversation.status;
}

export function statusPill(conversation, extra = "") {
  return h("span", { className: `pill status-${conversation.status} ${extra}`.trim() }, statusText(conversation));
}

/** Live status events name the agent, not their id: ours when it is our name, someone else's (-1) otherwise. */
export function guessAgentId(name) {
  if (name === null) return null;
  return name === getAgent()?.display_name ? getAgent().id : -1;
}
