// hera-router web console: reads /v1/console/* with the token kept in this tab's sessionStorage.
// Every piece of text from the API goes into the page through textContent (el() below), never as
// markup, so a request's text cannot inject anything.
"use strict";

const TOKEN_KEY = "hera-console-token";
const $ = (id) => document.getElementById(id);

// Number formats; the browser tests format the API's numbers the same way.
const usd = (x) => "$" + Number(x).toFixed(4);
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");
const ms = (x) => Math.round(Number(x)) + " ms";
const num = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(3));
const when = (iso) => (iso ? iso.replace("T", " ").replace(/\..*$/, "").replace(/\+00:00$|Z$/, "") : "–");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const badge = (text, kind) => el("span", { class: "badge " + (kind || "") }, text);
const cell = (value, cls, field) => el("td", { class: cls, "data-field": field }, value);
const numCell = (value, field) => cell(value, "num", field);
const link = (href, text) => el("a", { href }, text);

function table(headers, rows, attrs) {
  const head = el("tr", {}, headers.map(([label, cls]) => el("th", { class: cls || "" }, label)));
  return el("table", attrs || {}, el("thead", {}, head), el("tbody", {}, rows));
}

function bar(share, kind) {
  const fill = el("span");
  fill.style.width = Math.max(0, Math.min(100, 100 * (share || 0))).toFixed(1) + "%";
  return el("div", { class: "bar " + (kind || "") }, fill);
}

class Unauthorized extends Error {}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  const message = body && typeof body.error === "string" ? body.error : response.status + " " + response.statusText;
  if (response.status === 401) throw new Unauthorized(message);
  if (!response.ok) throw new Error(message);
  return body;
}

const view = (...nodes) => nodes;

function show(...nodes) {
  $("view").replaceChildren(...nodes.flat().filter((node) => node !== null && node !== undefined));
}

// ---- pages ------------------------------------------------------------------------------------

async function requestsPage() {
  const rows = await api("/v1/console/requests?limit=100");
  const body = rows.map((r) =>
    el("tr", { "data-request": r.id },
      cell(when(r.created_at), "mono"),
      cell(r.tenant),
      cell(badge(r.status, r.status)),
      cell(r.policy),
      el("td", { class: "text" }, link("#/requests/" + r.id, r.input || r.id)),
      numCell(r.slm_steps), numCell(r.llm_steps), numCell(usd(r.cost_usd))));
  return view(el("h1", {}, "Requests"),
    rows.length ? table([["Created"], ["Tenant"], ["Status"], ["Policy"], ["Input"], ["SLM", "num"], ["LLM", "num"],
      ["Cost", "num"]], body, { id: "requests" }) : el("p", { class: "muted" }, "No requests yet."));
}

function checksTable(step) {
  if (!step.checks.length) return null;
  return table([["Score"], ["Value", "num"], ["Rule"], ["Threshold", "num"], ["Result"]],
    step.checks.map((c) => el("tr", {},
      cell(c.name, "mono"), numCell(num(c.score)), cell(c.rule),
      numCell(c.threshold === null ? "–" : num(c.threshold) + (c.source === "setting" ? " (setting)" : "")),
      cell(c.passed === null ? "" : el("span", { class: c.passed ? "pass" : "fail" }, c.passed ? "pass" : "fail")))),
    { class: "checks" });
}

function escalationList(step) {
  if (!step.escalations.length) return null;
  return table([["Verify"], ["Score", "num"], ["Threshold", "num"], ["Outcome"]],
    step.escalations.map((e) => el("tr", {},
      cell(e.stage), numCell(num(e.score)), numCell(num(e.threshold)),
      cell(el("span", { class: e.accepted ? "pass" : "fail" }, e.accepted ? "accepted" : "escalated")))),
    { class: "escalations" });
}

function callsTable(step) {
  if (!step.calls.length) return null;
  return table([["Model"], ["Role"], ["Status"], ["Tokens in", "num"], ["Tokens out", "num"], ["Latency", "num"],
    ["Cost", "num"]],
  step.calls.map((c) => el("tr", {},
    cell(c.model, "mono"), cell(badge(c.role, c.role === "edge" ? "slm" : "llm")), cell(c.status),
    numCell(c.tokens_in), numCell(c.tokens_out), numCell(ms(c.latency_ms)), numCell(usd(c.cost_usd)))),
  { class: "calls" });
}

function stepCard(step) {
  const where = step.depth === 0 ? "step " + step.seq : "part " + step.part;
  const metrics = [ms(step.latency_ms), usd(step.cost_usd)];
  if (step.decide_ms !== null && step.decide_ms !== undefined) metrics.unshift("routed in " + ms(step.decide_ms));
  return el("li", { class: "step " + step.executor + " depth-" + Math.min(step.depth, 2), "data-step": step.id },
    el("div", { class: "step-head" },
      el("span", { class: "where" }, where),
      badge(step.executor.toUpperCase(), step.executor),
      step.tier ? badge(step.tier) : null,
      badge(step.branch, "branch"),
      badge(step.status, step.status),
      step.kappa !== null && step.kappa !== undefined ? el("span", { class: "muted" }, "κ " + num(step.kappa)) : null,
      step.span && step.span > 1 ? el("span", { class: "muted" }, "covers " + step.span + " steps") : null,
      el("span", { class: "metrics", "data-field": "step-metrics" }, metrics.join(" · "))),
    el("div", { class: "text", "data-field": "step-text" }, step.text),
    step.output ? el("div", { class: "output" }, "→ " + step.output) : null,
    step.error ? el("div", { class: "error" }, step.error) : null,
    checksTable(step), escalationList(step),
    step.fallback_reason ? el("p", { class: "reason" }, step.fallback_reason) : null,
    callsTable(step));
}

function graphTable(graph) {
  if (!graph.length) return null;
  return [el("h2", {}, "Plan nodes"), table([["Node"], ["Needs"], ["Status"], ["Text"], ["SLM", "num"], ["LLM", "num"],
    ["Cost", "num"]],
  graph.map((n) => el("tr", {},
    cell(n.request_id ? link("#/requests/" + n.request_id, n.key) : n.key, "mono"), cell(n.needs.join(", ")),
    cell(badge(n.status, n.status)), cell(n.text, "text"), numCell(n.slm_steps), numCell(n.llm_steps),
    numCell(usd(n.cost_usd)))))];
}

async function requestPage(id) {
  const data = await api("/v1/console/requests/" + encodeURIComponent(id));
  const d = data.detail;
  const facts = el("dl", { class: "facts" },
    el("dt", {}, "Tenant"), el("dd", {}, data.tenant),
    el("dt", {}, "Policy"), el("dd", {}, d.policy),
    el("dt", {}, "Created"), el("dd", { class: "mono" }, when(d.created_at)),
    d.batch_id ? [el("dt", {}, "Batch"), el("dd", {}, link("#/batches/" + d.batch_id, d.batch_id))] : null,
    d.custom_id ? [el("dt", {}, "Custom id"), el("dd", {}, d.custom_id)] : null,
    el("dt", {}, "Input"), el("dd", { "data-field": "input" }, d.input),
    el("dt", {}, "Answer"), el("dd", { "data-field": "final_answer" }, d.final_answer || "–"),
    d.error ? [el("dt", {}, "Error"), el("dd", { class: "error" }, d.error)] : null);
  const calls = d.model_calls;
  const stats = el("div", { class: "stats" },
    stat("Status", badge(d.status, d.status)), stat("SLM steps", d.slm_steps, "slm_steps"),
    stat("LLM steps", d.llm_steps, "llm_steps"), stat("Model calls", calls.calls, "calls"),
    stat("Latency (calls)", ms(calls.latency_ms), "latency"), stat("Cost", usd(d.cost_usd), "cost_usd"));
  return view(el("h1", {}, "Request ", el("span", { class: "mono" }, d.id)), stats, el("div", { class: "card" }, facts),
    el("h2", {}, "Steps"),
    data.steps.length ? el("ul", { class: "tree", id: "steps" }, data.steps.map(stepCard))
      : el("p", { class: "muted" }, "No steps yet."),
    graphTable(d.graph));
}

function stat(label, value, field) {
  return el("div", { class: "stat" }, el("div", { class: "label" }, label),
    el("div", { class: "value", "data-field": field }, value));
}

async function batchesPage() {
  const rows = await api("/v1/console/batches?limit=100");
  const body = rows.map((b) => el("tr", { "data-batch": b.id },
    cell(when(b.created_at), "mono"), cell(b.tenant), cell(link("#/batches/" + b.id, b.name || b.id)),
    cell(b.policy), numCell(b.accepted), numCell(b.rejected), cell(b.cancelled ? badge("cancelled", "cancelled") : "")));
  return view(el("h1", {}, "Batches"),
    rows.length ? table([["Created"], ["Tenant"], ["Batch"], ["Policy"], ["Accepted", "num"], ["Rejected", "num"], [""]],
      body, { id: "batches" }) : el("p", { class: "muted" }, "No batches yet."));
}

async function batchPage(id) {
  const data = await api("/v1/console/batches/" + encodeURIComponent(id));
  const s = data.status;
  const counts = el("div", { class: "counts", id: "counts" },
    Object.entries(s.counts).map(([state, n]) => el("span", { "data-state": state }, badge(state + " " + n, state))));
  const failed = data.failed.length
    ? table([["Request"], ["Custom id"], ["Error"]], data.failed.map((f) => el("tr", {},
      cell(link("#/requests/" + f.request_id, f.request_id), "mono"), cell(f.custom_id || "–"),
      cell(f.error || "–", "text error"))), { id: "failed" })
    : el("p", { class: "muted" }, "No failed requests.");
  const rejected = s.rejected.length
    ? table([["Line", "num"], ["Error"], ["Message"]], s.rejected.map((r) => el("tr", {},
      numCell(r.line), cell(r.error, "mono"), cell(r.message, "text")))) : el("p", { class: "muted" }, "None.");
  return view(el("h1", {}, "Batch ", el("span", { class: "mono" }, s.name || s.id)),
    el("div", { class: "stats" }, stat("Done", s.done + " / " + s.total, "done"),
      stat("Progress", pct(s.total ? s.done / s.total : 0), "progress"), stat("Cost", usd(s.cost_usd), "cost_usd"),
      stat("SLM steps", s.slm_steps), stat("LLM steps", s.llm_steps), stat("Tenant", data.tenant)),
    bar(s.total ? s.done / s.total : 0), el("h2", {}, "Requests by state"), counts,
    el("h2", {}, "Failed requests"), failed, el("h2", {}, "Rejected lines"), rejected);
}

let overviewDays = 14;

async function overviewPage() {
  const o = await api("/v1/console/overview?days=" + overviewDays);
  const controls = el("div", { class: "controls" }, [7, 14, 30, 90].map((n) => {
    const button = el("button", { type: "button", class: n === overviewDays ? "active" : "" }, n + " days");
    button.addEventListener("click", () => { overviewDays = n; route(); });
    return button;
  }));
  const saved = o.all_llm_usd > 0 ? 1 - o.cost_usd / o.all_llm_usd : null;
  const stats = el("div", { class: "stats", id: "totals" },
    stat("SLM share", pct(o.slm_share), "slm_share"), stat("SLM steps", o.slm_steps, "slm_steps"),
    stat("LLM steps", o.llm_steps, "llm_steps"), stat("Cost", usd(o.cost_usd), "cost_usd"),
    stat("All-LLM (estimate)", usd(o.all_llm_usd), "all_llm_usd"), stat("Saved vs All-LLM", pct(saved), "saved"));
  const peak = Math.max(0, ...o.days.map((d) => d.all_llm_usd), ...o.days.map((d) => d.cost_usd));
  const days = table([["Day"], ["Requests", "num"], ["SLM steps", "num"], ["LLM steps", "num"], ["SLM share", "num"],
    [""], ["Cost", "num"], ["All-LLM", "num"], [""]],
  o.days.map((d) => el("tr", { "data-day": d.day },
    cell(d.day, "mono"), numCell(d.requests, "requests"), numCell(d.slm_steps, "slm_steps"),
    numCell(d.llm_steps, "llm_steps"), numCell(pct(d.slm_share), "slm_share"), cell(bar(d.slm_share)),
    numCell(usd(d.cost_usd), "cost_usd"), numCell(usd(d.all_llm_usd), "all_llm_usd"),
    cell(bar(peak ? d.cost_usd / peak : 0, "cost")))), { id: "days" });
  const steps = Math.max(1, ...o.branches.map((b) => b.steps));
  const branches = table([["Branch"], ["Decisions", "num"], ["Steps", "num"], [""]],
    o.branches.map((b) => el("tr", { "data-branch": b.branch },
      cell(badge(b.branch, "branch")), numCell(b.decisions, "decisions"), numCell(b.steps, "steps"),
      cell(bar(b.steps / steps)))), { id: "branches" });
  const tenants = table([["Tenant"], ["Requests", "num"], ["Spend", "num"]],
    o.tenants.map((t) => el("tr", { "data-tenant": t.tenant },
      cell(t.tenant), numCell(t.requests, "requests"), numCell(usd(t.cost_usd), "cost_usd"))), { id: "tenants" });
  const estimators = o.estimators.length
    ? table([["Estimator"], ["Version", "num"], ["Status"], ["Created"], ["Promoted"], ["Calibration"]],
      o.estimators.map((e) => el("tr", { "data-estimator": e.name + ":" + e.version },
        cell(e.name, "mono"), numCell(e.version), cell(badge(e.status, e.status === "active" ? "succeeded" : "")),
        cell(when(e.created_at), "mono"), cell(when(e.promoted_at), "mono"),
        cell(Object.entries(e.calibration).map(([k, v]) => k + " " + num(v)).join(" · ") || "–", "text mono"))),
      { id: "estimators" })
    : el("p", { class: "muted" }, "No estimator is registered: hera routes in cold-start mode (`hera-router bootstrap`).");
  return view(el("h1", {}, "Routing overview"), controls,
    el("p", { class: "muted" }, "Since " + when(o.since) + " UTC. All-LLM is an estimate: each step's tokens (its cloud " +
      "call's, else its edge call's) at the price of " + o.cloud_model + "."),
    stats, el("h2", {}, "Per day"), days, el("h2", {}, "Decisions per branch"), branches,
    el("h2", {}, "Spend per tenant"), tenants, el("h2", {}, "Estimators"), estimators);
}

// ---- routing, sign-in -------------------------------------------------------------------------

const ROUTES = [
  [/^#\/requests\/([0-9a-f-]+)$/, requestPage],
  [/^#\/batches\/([0-9a-f-]+)$/, batchPage],
  [/^#\/batches$/, batchesPage],
  [/^#\/overview$/, overviewPage],
  [/^(#\/requests)?$|^#?\/?$/, requestsPage],
];

let generation = 0;

async function route() {
  const hash = location.hash;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
  }
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!found) { show(el("h1", {}, "Not found"), el("p", {}, link("#/requests", "Back to requests"))); return; }
  const [pattern, page] = found;
  const match = hash.match(pattern);
  const mine = ++generation;  // a later navigation wins over a slower earlier one
  document.body.dataset.loaded = "";
  show(el("p", { class: "muted" }, "Loading…"));
  try {
    const nodes = await page(match[1]);
    if (mine !== generation) return;
    show(...nodes);
    document.body.dataset.loaded = hash || "#/requests";
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof Unauthorized) { signOut(error.message); return; }
    show(el("h1", {}, "Could not load this page"), el("p", { class: "error", id: "page-error" }, error.message));
    document.body.dataset.loaded = "error";
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("view").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  document.body.dataset.loaded = "sign-in";
}

async function start() {
  if (!sessionStorage.getItem(TOKEN_KEY)) { signOut(""); return; }
  try {
    const me = await api("/v1/console/me");
    $("who").textContent = me.role === "admin" ? "operator (every tenant)" : "tenant " + me.tenant;
  } catch (error) {
    signOut(error instanceof Unauthorized ? error.message : "the API did not answer: " + error.message);
    return;
  }
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  await route();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  window.addEventListener("hashchange", () => { if (sessionStorage.getItem(TOKEN_KEY)) route(); });
  start();
});
