// The agent API: the fetch wrapper, its errors, and the login it sends (token and agent, kept per tab in
// sessionStorage so a reload stays logged in and another tab logs in on its own).

import { readJson } from "./format.js";
import { serverText, t } from "./i18n.js";

export const ROOT = new URL("../", location.href); // the page lives at /console/: the API at /api/…
const TOKEN_KEY = "console.token";
const AGENT_KEY = "console.agent";

let token = sessionStorage.getItem(TOKEN_KEY);
let agent = readJson(sessionStorage.getItem(AGENT_KEY));
let unauthorized = () => {};

export const getToken = () => token;
export const getAgent = () => agent;
export const isAdmin = () => agent?.role === "admin";

export function saveLogin(newToken, newAgent) {
  token = newToken;
  agent = newAgent;
  sessionStorage.setItem(TOKEN_KEY, newToken);
  sessionStorage.setItem(AGENT_KEY, JSON.stringify(newAgent));
}

export function saveAgent(newAgent) {
  agent = newAgent;
  sessionStorage.setItem(AGENT_KEY, JSON.stringify(newAgent));
}

export function forgetLogin() {
  token = null;
  agent = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(AGENT_KEY);
}

/** What a 401 does (end the session): set by the entry module, which knows every view. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** An API error; its message is the server's detail, in the console's language where the dictionary has it. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(serverText(detail));
    this.status = status;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token && path !== "login") headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(`api/agent/${path}`, ROOT), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch {
    throw new ApiError(0, t("The server cannot be reached. Check the connection and try again."));
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401 && path !== "login") {
    unauthorized(t("Your session has ended. Please log in again."));
    throw new ApiError(401, data?.detail || "not logged in");
  }
  if (!response.ok) {
    throw new ApiError(response.status, data?.detail || `${response.status} ${response.statusText}`.trim());
  }
  return data;
}

/** Fetch a file the API makes (an export) and hand it to the browser as a download. */
export async function download(path, fallbackName) {
  const response = await fetch(new URL(`api/agent/${path}`, ROOT), { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    if (response.status === 401) unauthorized(t("Your session has ended. Please log in again."));
    throw new ApiError(response.status, data?.detail || `${response.status} ${response.statusText}`.trim());
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || fallbackName;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return name;
}

export const conversationPath = (id, rest = "") => `conversations/${encodeURIComponent(id)}${rest}`;
