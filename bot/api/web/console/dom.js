// DOM helpers shared by every view. Server text only ever becomes text nodes or textContent: never HTML.

import { clock, parseTime } from "./format.js";
import { LOCALE } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

/** Build an element; string children become text nodes (never HTML). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return node;
}

export function setText(id, text) {
  $(id).textContent = text ?? "";
}

export function timeElement(value, text) {
  const date = parseTime(value);
  return h("time", { datetime: date ? date.toISOString() : null, title: date ? date.toLocaleString(LOCALE) : null },
    text ?? clock(value));
}

/** Say something to screen readers (the polite live region); only the last few lines are kept. */
export function announce(message) {
  const line = h("p", {}, message);
  const region = $("announcer");
  region.append(line);
  while (region.childNodes.length > 5) region.firstChild.remove();
}
