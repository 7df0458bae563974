// The console's language: English (the strings written in the code and the page) or Chinese (zh.json, keyed by
// the English text). The agent's choice is kept in localStorage; without one, the browser's language decides.
// Choosing another language reloads the page, so every string is translated once, when it is made.
//
// Messages, notes, intents, answers and other content from the server are never translated: they are what the
// visitors and the team wrote.

const STORAGE_KEY = "console.lang";
export const LANGUAGES = Object.freeze({ en: "English", zh: "中文" });

function chosenLanguage() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored && Object.hasOwn(LANGUAGES, stored)) return stored;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export const LANG = chosenLanguage();
/** For dates and numbers (undefined: the browser's own). */
export const LOCALE = LANG === "zh" ? "zh-CN" : undefined;

const dictionary = LANG === "en" ? new Map() : await loadDictionary(LANG);
const reported = new Set();

async function loadDictionary(lang) {
  try {
    const response = await fetch(new URL(`${lang}.json`, import.meta.url), { cache: "no-cache" });
    const dictionary = response.ok ? await response.json() : null;
    if (dictionary && typeof dictionary === "object") return new Map(Object.entries(dictionary));
  } catch {
    // an unreachable dictionary leaves the console in English rather than blank
  }
  console.warn(`console: no ${lang} dictionary; showing English`);
  return new Map();
}

function fill(template, vars) {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** The console's text in the chosen language; `{name}` placeholders are filled from vars. */
export function t(text, vars) {
  const translated = dictionary.get(text);
  if (translated === undefined && LANG !== "en" && !reported.has(text)) {
    reported.add(text);
    console.warn(`untranslated: ${text}`); // the browser tests fail on these
  }
  return fill(translated ?? text, vars);
}

/** An error the server wrote: translated where it is one of the fixed messages the dictionary knows. */
export const serverText = (detail) => dictionary.get(detail) ?? detail;

export function setLanguage(lang) {
  localStorage.setItem(STORAGE_KEY, lang);
  location.reload();
}

const ATTRIBUTES = ["placeholder", "title", "aria-label"];
const SKIPPED = "script, style, kbd, [translate='no']";

/** Translate the page's own text (index.html) in place, before any content from the server is on it. */
export function translatePage(root = document.body) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  document.title = t(document.title);
  if (LANG === "en") return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    if (node.parentElement.closest(SKIPPED) || !/[A-Za-z]/.test(node.data)) continue;
    const [, before, text, after] = /^(\s*)([\s\S]*?)(\s*)$/.exec(node.data);
    node.data = before + t(text.replace(/\s+/g, " ")) + after;
  }
  for (const element of root.querySelectorAll(ATTRIBUTES.map((name) => `[${name}]`).join(","))) {
    if (element.closest(SKIPPED)) continue;
    for (const name of ATTRIBUTES) {
      const value = element.getAttribute(name);
      if (value && /[A-Za-z]/.test(value)) element.setAttribute(name, t(value.replace(/\s+/g, " ").trim()));
    }
  }
}
