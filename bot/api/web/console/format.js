// Pure text helpers: parsing stored values and formatting numbers, times and names. No DOM, no state.

import { LOCALE, t } from "./i18n.js";

export function readJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Timestamps from SQLite come without a zone; they are UTC. */
export function parseTime(value) {
  if (!value) return null;
  return new Date(/(Z|[+-]\d\d:?\d\d)$/i.test(value) ? value : `${value}Z`);
}

export function ago(value) {
  const date = parseTime(value);
  if (!date) return "";
  const seconds = (Date.now() - date.getTime()) / 1000;
  if (seconds < 45) return t("now");
  if (seconds < 3600) return t("{n} min", { n: Math.round(seconds / 60) });
  if (seconds < 86400) return t("{n} h", { n: Math.round(seconds / 3600) });
  return date.toLocaleDateString(LOCALE, { month: "short", day: "numeric" });
}

export function clock(value) {
  const date = parseTime(value);
  return date ? date.toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit" }) : "";
}

export const fixed = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
export const percent = (value, digits = 0) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`);

export function visitorName(id) {
  return t("Visitor {id}", { id: String(id).slice(0, 6) });
}

/** Who decided a proposal or revision ("approved" or "rejected"), as one sentence; null: the admin is gone. */
export function decidedBy(status, admin) {
  if (status === "approved") return admin !== null && admin !== undefined ? t("approved by {name}", { name: admin }) : t("approved by a former admin");
  return admin !== null && admin !== undefined ? t("rejected by {name}", { name: admin }) : t("rejected by a former admin");
}
