// Pure text helpers: parsing stored values and formatting numbers, times and names. No DOM, no state.

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
  if (seconds < 45) return "now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`;
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function clock(value) {
  const date = parseTime(value);
  return date ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
}

export const fixed = (value, digits = 2) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
export const percent = (value, digits = 0) => (value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`);

export function visitorName(id) {
  return `Visitor ${String(id).slice(0, 6)}`;
}
