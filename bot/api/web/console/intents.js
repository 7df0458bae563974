// The model's intent names: the inbox's intent filter and the pickers that relabel or correct a message.

import { api } from "./api.js";
import { $, h } from "./dom.js";
import { t } from "./i18n.js";

let intents = [];

/** Fetch the names and fill the inbox filter; resolves to whether they came (pickers then redraw). */
export async function loadIntents() {
  try {
    intents = await api("GET", "intents");
  } catch {
    return false;
  }
  const select = $("filter-intent");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "" }, t("Any intent")),
    ...intents.map((name) => h("option", { value: name }, name)));
  select.value = chosen;
  return true;
}

/** <option>s for a picker: the suggested intents (the model's ranking) first, then all the others. */
export function intentOptions(selected, suggested = []) {
  const names = suggested.filter((name) => intents.includes(name));
  const rest = intents.filter((name) => !names.includes(name));
  const option = (name) => h("option", { value: name, selected: name === selected }, name);
  const groups = [h("option", { value: "" }, t("Choose an intent…"))];
  if (names.length) groups.push(h("optgroup", { label: t("Suggested") }, names.map(option)));
  groups.push(h("optgroup", { label: names.length ? t("All intents") : t("Intents") }, rest.map(option)));
  return groups;
}
