// Models: the registry's versions with their figures, which one is served and which is the redistillation's
// drift baseline, the redistillation reports (every gate check in words), and for admins: serve another
// version (rollout or rollback), pin the baseline, and run a redistillation now, following its progress.

import { api, isAdmin } from "./api.js";
import { $, announce, h, setText } from "./dom.js";
import { t } from "./i18n.js";
import { currentView } from "./view.js";

const POLL_MS = 2000;
const JOB_STATES = {
  running: t("Running"), published: t("Published a new version"), kept: t("The gate kept the served version"),
  nothing_new: t("Nothing new to learn"), busy: t("Another run held the registry"), failed: t("Failed"),
  unknown: t("Outcome unknown (the server restarted)"),
};

let pollTimer = null;

export function initModels() {
  $("models-refresh").addEventListener("click", loadModels);
  $("redistill-start").addEventListener("click", startRedistillation);
}

const percent = (value) => (value === null || value === undefined ? "–" : `${(100 * value).toFixed(2)}%`);

export async function loadModels() {
  let registry;
  try {
    registry = await api("GET", "models");
  } catch (error) {
    if (error.status !== 401) setText("models-error", error.message);
    return;
  }
  setText("models-error", "");
  if (currentView() !== "models") return;
  $("redistill-start").hidden = !isAdmin();
  $("models-table").replaceChildren(h("thead", {}, h("tr", {},
    [t("Version"), t("Made"), t("Student accuracy"), t("Teacher accuracy"), t("Student macro-F1"), t("Languages"), "", ""]
      .map((title) => h("th", { scope: "col" }, title)))),
  h("tbody", {}, registry.versions.map(versionRow)));
  $("reports-list").replaceChildren(...registry.reports.map((report) => h("li", {},
    h("button", { type: "button", className: "answer-row", dataset: { report: report.name },
      onclick: () => showReport(report.name) },
    h("span", { className: "answer-id" }, report.started_at),
    h("span", { className: "muted small" }, report.decision)))));
  $("reports-empty").hidden = registry.reports.length > 0;
  followLatest();
}

function versionRow(version) {
  const badges = [version.served ? h("span", { className: "pill small state-served" }, t("Served")) : null,
    version.baseline ? h("span", { className: "pill small" }, t("Baseline")) : null];
  const admin = isAdmin();
  return h("tr", { dataset: { version: version.version } },
    h("th", { scope: "row" }, version.version, " ", badges),
    h("td", {}, version.created_at ?? "–"),
    h("td", {}, percent(version.student_accuracy)),
    h("td", {}, percent(version.teacher_accuracy)),
    h("td", {}, percent(version.student_macro_f1)),
    h("td", {}, version.languages.join(", ") || "–"),
    h("td", {}, admin && !version.served ? h("button", { type: "button",
      onclick: () => change(`models/${version.version}/serve`, t("{version} is served now.", { version: version.version })) },
    t("Serve {version}", { version: version.version })) : null),
    h("td", {}, admin && !version.baseline ? h("button", { type: "button", className: "quiet",
      onclick: () => change(`models/${version.version}/baseline`,
        t("{version} is the drift baseline now.", { version: version.version })) },
    t("Pin {version} as baseline", { version: version.version })) : null));
}

async function change(path, done) {
  setText("models-error", "");
  try {
    await api("POST", path);
    announce(done);
    await loadModels();
  } catch (error) {
    if (error.status !== 401) setText("models-error", error.message);
  }
}

async function showReport(name) {
  try {
    const report = await api("GET", `models/reports/${encodeURIComponent(name)}`);
    $("report-view").hidden = false;
    setText("report-title", t("Redistillation {started}: {decision}", { started: report.started_at, decision: report.decision }));
    $("report-text").textContent = report.markdown;
  } catch (error) {
    if (error.status !== 401) setText("models-error", error.message);
  }
}

function renderJob(job) {
  $("redistill-job").hidden = false;
  setText("redistill-state", t("{state} · started by {name} at {time}",
    { state: JOB_STATES[job.state] ?? job.state, name: job.started_by, time: job.started_at }));
  setText("redistill-progress", job.progress);
  $("redistill-start").disabled = job.state === "running";
  $("redistill-report").hidden = !job.report;
  $("redistill-report").onclick = job.report ? () => showReport(job.report) : null;
}

async function follow(id, misses = 0) {
  clearTimeout(pollTimer);
  pollTimer = null;
  let job;
  try {
    job = await api("GET", `redistillations/${id}`);
  } catch (error) {
    // another replica answered (it knows only its own jobs), or the server is away for a moment: ask again
    if (error.status !== 401 && misses < 30) pollTimer = setTimeout(() => follow(id, misses + 1), POLL_MS);
    else setText("redistill-progress", t("Lost track of it here: its report will appear below when it ends."));
    return;
  }
  renderJob(job);
  if (job.state === "running") {
    pollTimer = setTimeout(() => follow(id), POLL_MS);
  } else if (job.report) {
    announce(t("Redistillation finished: {outcome}.", { outcome: JOB_STATES[job.state] }));
    loadModels().then(() => showReport(job.report));
  }
}

async function followLatest() {
  try {
    const job = await api("GET", "redistillations/latest");
    renderJob(job);
    if (job.state === "running" && !pollTimer) follow(job.id);
  } catch {
    // none started here yet
  }
}

async function startRedistillation() {
  setText("models-error", "");
  try {
    const job = await api("POST", "redistillations");
    announce(t("Redistillation started."));
    renderJob(job);
    follow(job.id);
  } catch (error) {
    if (error.status !== 401) setText("models-error", error.message);
  }
}
