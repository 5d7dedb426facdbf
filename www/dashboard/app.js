// Ringsource dashboard: a small ES module over the collector's admin API.
// A user signs in with their name and password: the collector sets an
// HttpOnly session cookie (no script here can read it) and answers the
// session's CSRF token, which every change sends back as X-CSRF-Token; a
// reloaded page asks /v1/auth/me for it. A 401 returns to the sign-in form.
// What a role may reach (its `permissions`) decides the views shown; the
// API refuses the rest itself. All text from the API is written with
// textContent (visitor URLs and UTM values are untrusted), never as HTML.
//
// The URL is the view: `#calls?site=demo&period=last-30-days&channel=Email`.
// Every filter is written there first and read back by `route()`, so a
// reload or a shared link opens the same view.

const SITE_KEY = "ringsource.dashboard.site";
const PAGE = 50;
const COLORS = ["#2f6fdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#8f6a00", "#5f3dc4"];
const OTHER_COLOR = "#868e96";

const $ = (sel) => document.querySelector(sel);

/** Builds an element: h("td", { class: "num" }, "3"). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ------------------------------------------------------------------ API

class Unauthorized extends Error {}

/** An error answer of the API, with its code (`unknown_site`) and body. */
class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e ? e.message : `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : null;
    this.body = body;
  }
}

/** Who is signed in (`/v1/auth/me`) and the session's CSRF token; null before sign-in. */
const session = { me: null, csrf: null };

/** Whether the signed-in role may do `permission` (as the API's policy names it). */
function may(permission) { return Boolean(session.me && session.me.permissions.includes(permission)); }

async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = { ...(options.headers || {}) };
  if (!["GET", "HEAD"].includes(method) && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const resp = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (resp.status === 401) throw new Unauthorized("Your session has ended.");
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!resp.ok) throw new ApiError(resp.status, body);
  return { body, resp };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// ------------------------------------------------------- the site's ways

// Times are shown on the site's clock and amounts in its currency and
// locale, whatever the browser's: every answer the dashboard reads says
// which (`time_zone`, `currency`, `locale`); they are kept per site here.
const siteInfo = new Map();
let ways = { zone: "UTC", currency: null, locale: undefined };
const formatCache = new Map();

function remember(siteId, body) {
  if (!siteId || !body || typeof body.time_zone !== "string") return;
  const known = siteInfo.get(siteId);
  // Only the calls list says whether a site holds demo data.
  const demo = typeof body.demo_data === "boolean" ? body.demo_data : Boolean(known && known.demo);
  siteInfo.set(siteId, { zone: body.time_zone, currency: body.currency || null, locale: body.locale || undefined, demo });
  if (siteId === params.site) useSite(siteId);
}

function useSite(siteId) {
  const info = siteInfo.get(siteId);
  if (!info) return;
  ways = info;
  formatCache.clear();
  $("#zone").textContent = `${ways.zone}${ways.currency ? ` · ${ways.currency}` : ""}`;
  $("#demo-banner").hidden = !info.demo;
}

/** A cached Intl formatter for the site's locale (the browser's when the locale is unusable). */
function fmt(kind, opts) {
  const key = `${kind}|${JSON.stringify(opts)}`;
  let f = formatCache.get(key);
  if (!f) {
    const make = (locale) => (kind === "date" ? new Intl.DateTimeFormat(locale, opts) : new Intl.NumberFormat(locale, opts));
    try { f = make(ways.locale); } catch { f = make(undefined); }
    formatCache.set(key, f);
  }
  return f;
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

/** A count; credit sums under the linear model can be fractional. */
function fmtCount(v) { return isNum(v) ? fmt("num", { maximumFractionDigits: 2 }).format(v) : ""; }
/** An amount in the site's currency; "" where there is none (no cost is not a cost of 0). */
function fmtMoney(v) {
  if (!isNum(v)) return "";
  if (ways.currency) {
    try { return fmt("num", { style: "currency", currency: ways.currency, currencyDisplay: "narrowSymbol" }).format(v); } catch { /* unknown to this browser */ }
  }
  return fmt("num", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(v);
}
function fmtPct(v) { return isNum(v) ? fmt("num", { style: "percent", maximumFractionDigits: 0 }).format(v) : ""; }
/** Seconds as m:ss (h:mm:ss from an hour). */
function fmtSecs(s) {
  if (!isNum(s)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  const hrs = Math.floor(s / 3600), mins = Math.floor((s % 3600) / 60), secs = Math.floor(s % 60);
  return hrs ? `${hrs}:${pad(mins)}:${pad(secs)}` : `${mins}:${pad(secs)}`;
}
/** A span of time as people say it: "45 s", "10 min", "2 h 5 min", "3 days". */
function fmtSpan(ms) {
  if (!isNum(ms)) return "";
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  return `${Math.round(hrs / 24)} days`;
}
/**
 * An instant on the site's clock, in its locale: date and time to the
 * minute; `short` leaves out the year of this year's dates (table cells).
 */
function fmtTime(ms, { seconds = false, short = false } = {}) {
  if (!isNum(ms)) return "";
  const year = short && siteDay(ms).slice(0, 4) === siteDay(Date.now()).slice(0, 4) ? {} : { year: "numeric" };
  return fmt("date", {
    timeZone: ways.zone, ...year, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    ...(seconds ? { second: "2-digit" } : {}),
  }).format(ms);
}
/** A calendar day (`YYYY-MM-DD`) in the site's locale. */
function fmtDay(day, opts = { year: "numeric", month: "2-digit", day: "2-digit" }) {
  return fmt("date", { timeZone: "UTC", ...opts }).format(Date.parse(`${day}T00:00:00Z`));
}
const dash = (v) => (v === null || v === undefined || v === "" ? "—" : v);

// ------------------------------------------------------------------ days

/** The site's calendar day of instant `ms`, `YYYY-MM-DD`. */
function siteDay(ms, zone = ways.zone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(ms).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}
function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

const PERIODS = [
  ["today", "Today"], ["yesterday", "Yesterday"], ["last-7-days", "Last 7 days"], ["last-30-days", "Last 30 days"],
  ["this-month", "This month"], ["last-month", "Last month"], ["custom", "Custom range"],
];
const DEFAULT_PERIOD = { calls: "last-30-days", sources: "last-30-days", pools: "last-7-days" };

/** `{ from, to, name }` days of a period, on the site's calendar today. */
function resolvePeriod(period, from, to) {
  const today = siteDay(Date.now());
  const first = `${today.slice(0, 8)}01`;
  switch (period) {
    case "today": return { from: today, to: today };
    case "yesterday": { const y = addDays(today, -1); return { from: y, to: y }; }
    case "last-7-days": return { from: addDays(today, -6), to: today };
    case "last-30-days": return { from: addDays(today, -29), to: today };
    case "this-month": return { from: first, to: today };
    case "last-month": { const end = addDays(first, -1); return { from: `${end.slice(0, 8)}01`, to: end }; }
    case "custom": {
      const f = DAY_RE.test(from || "") ? from : addDays(today, -29);
      const t = DAY_RE.test(to || "") ? to : today;
      return f <= t ? { from: f, to: t } : { from: t, to: f };
    }
    default: return null;
  }
}

// ----------------------------------------------------------------- state

/** What the URL says: `view`, `arg` (a call id) and the query's filters. */
let params = {};
let routeGen = 0;

function readHash() {
  const raw = location.hash.replace(/^#/, "");
  const [path, q = ""] = raw.split("?");
  const [view, arg] = path.split("/");
  const p = Object.fromEntries(new URLSearchParams(q));
  return { ...p, view: view || "calls", arg: arg ?? null };
}

/** The hash of a view with these filters. */
function hashOf(view, p, arg) {
  const { view: _v, arg: _a, ...rest } = p;
  return `#${view}${arg != null ? `/${arg}` : ""}${query(rest)}`;
}

/** The filters every view shares: the site and the period. */
function shared() {
  const p = { site: params.site };
  if (params.period) p.period = params.period;
  if (params.period === "custom") { p.from = params.from; p.to = params.to; }
  return p;
}

/** Goes to `view` with `patch` over the current filters (`null` removes one). */
function go(view, patch = {}, arg = null, { keep = true } = {}) {
  // A call is shown over the calls list: the list's filters are its own.
  const same = view === params.view || (view === "calls" && params.view === "call");
  const base = keep && same ? { ...params } : shared();
  const next = { ...base, ...patch };
  for (const [k, v] of Object.entries(next)) if (v === null || v === undefined || v === "") delete next[k];
  const hash = hashOf(view, next, arg);
  if (hash === location.hash) route();
  else location.hash = hash;
}

// ---------------------------------------------------------------- errors

function showError(message) { $("#error").textContent = message || ""; }

/** Runs a view's load; a 401 goes back to sign-in, other errors clear the view and show on the page. */
async function guard(fn, clear) {
  showError("");
  try {
    await fn();
  } catch (e) {
    if (e instanceof Unauthorized) {
      endSession(`${e.message} Sign in again.`);
      return;
    }
    // What was on screen belongs to other filters (or another site): never
    // leave it under an error that says these failed.
    if (clear) clear();
    showError(e.code === "unknown_site" ? `Site "${params.site}" is not configured on this collector: ${e.message}.` : e.message || String(e));
    if (!(e instanceof ApiError)) console.error(e);
  }
}

// ---------------------------------------------------------------- tables

/**
 * A data table; on narrow screens CSS lays each row out as a card, with
 * each cell's column name from `data-label`.
 */
function table(el, columns, rows, { onRow, footer, selected, caption } = {}) {
  const cls = (c) => [c.num ? "num" : "", c.wrap ? "wrap" : "", c.key ? `col-${c.key}` : ""].join(" ").trim() || null;
  el.replaceChildren(
    caption ? h("caption", { class: "sr-only" }, caption) : "",
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: cls(c), scope: "col" }, c.label)))),
    h("tbody", {}, rows.map((r, i) => h("tr", {
      class: [onRow ? "clickable" : "", selected && selected(r) ? "selected" : ""].join(" ").trim() || null,
      "data-id": r.id ?? null,
      onclick: onRow ? (e) => { if (!e.target.closest("a, button")) onRow(r, i); } : null,
    }, columns.map((c, j) => h("td", { class: cls(c), "data-label": c.label }, h("span", { class: "v" },
      // The row opens with its first cell's link, so keyboards reach it.
      j === 0 && onRow && r.href ? h("a", { href: r.href, class: "row-link" }, c.get(r)) : c.get(r))))))),
    footer ? h("tfoot", {}, h("tr", {}, columns.map((c) => h("td", { class: cls(c), "data-label": c.label }, h("span", { class: "v" }, footer(c)))))) : "",
  );
}

function badge(text, kind) { return h("span", { class: `badge ${kind || text}` }, text); }

// ---------------------------------------------------------------- charts

const charts = new Map();
const resizers = new Map();

function dropChart(key) {
  charts.get(key)?.destroy();
  charts.delete(key);
  resizers.get(key)?.disconnect();
  resizers.delete(key);
}

/** A uPlot chart sized to its box and kept so when the box changes; `null` when it cannot be drawn. */
function plot(key, container, opts, data, note) {
  dropChart(key);
  container.replaceChildren();
  if (typeof window.uPlot !== "function") {
    container.append(h("p", { class: "muted" }, "The chart library is missing (run `cargo xtask bundle`); the table has the same figures."));
    return null;
  }
  if (!data[0].length) {
    container.append(h("p", { class: "muted" }, note || "No data in this period."));
    return null;
  }
  const size = () => ({ width: Math.max(200, Math.floor(container.clientWidth)), height: opts.height });
  const chart = new window.uPlot({ ...opts, ...size() }, data, container);
  charts.set(key, chart);
  const ro = new ResizeObserver(() => {
    const s = size();
    if (s.width !== chart.width) chart.setSize(s);
  });
  ro.observe(container);
  resizers.set(key, ro);
  return chart;
}

/** Days on the x axis in the site's locale; bars drawn at each date's UTC midnight. */
function dayAxis() {
  return {
    values: (_u, splits) => splits.map((ts) => fmtDay(new Date(ts * 1000).toISOString().slice(0, 10), { month: "2-digit", day: "2-digit" })),
  };
}

/** Hour ticks on the site's clock in its locale: the day at midnight (and on whole-day steps), else the time. */
function hourAxis(_u, splits, _axis, _space, incr) {
  return splits.map((ts) => {
    const ms = ts * 1000;
    const clock = fmt("date", { timeZone: ways.zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(ms);
    const day = fmtDay(siteDay(ms), { month: "2-digit", day: "2-digit" });
    return incr >= 86400 ? day : clock === "00:00" ? day : clock;
  });
}

/** Bars per day stacked by group: each series is drawn as the sum of itself and those below it. */
function stackedBars(key, container, days, groups, opts = {}) {
  const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const sums = [];
  let acc = days.map(() => 0);
  for (const g of groups) {
    acc = acc.map((v, i) => v + (g.values[i] || 0));
    sums.push(acc);
  }
  // The tallest (all groups) is drawn first, each lower stack over it.
  const order = groups.map((_, i) => i).reverse();
  const bars = window.uPlot && window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.7, 48] }) : undefined;
  const format = opts.money ? fmtMoney : fmtCount;
  const total = sums.length ? sums[sums.length - 1] : [];
  return plot(key, container, {
    height: opts.height || 280,
    legend: { live: true },
    cursor: { points: { show: false } },
    series: [
      { label: "Day", value: (_u, ts) => (ts == null ? "whole period" : fmtDay(new Date(ts * 1000).toISOString().slice(0, 10))) },
      ...order.map((i) => ({
        label: groups[i].label,
        fill: groups[i].color, stroke: groups[i].color, width: 0, paths: bars, points: { show: false },
        // The legend reads the group's own figure, not the stack's height:
        // the day's under the cursor, else the whole period's.
        value: (_u, _v, _s, idx) => format(idx == null ? groups[i].values.reduce((a, b) => a + b, 0) : groups[i].values[idx]),
      })),
    ],
    axes: [
      { ...dayAxis(), space: 44 },
      // Counts step by whole numbers; money by uPlot's own steps.
      { size: opts.money ? 80 : 44, values: (_u, splits) => splits.map((v) => format(v)),
        ...(opts.money ? {} : { incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000] }) },
    ],
    scales: {
      x: { time: true, range: (_u, min, max) => [min - 43200, max + 43200] },
      y: { range: (_u, _min, max) => [0, Math.max(opts.money ? 1 : 4, max * 1.05)] },
    },
    hooks: opts.hooks || {},
  }, [xs, ...order.map((i) => sums[i])], xs.length && !total.some((v) => v > 0) ? "Nothing to chart in this period." : null);
}

/** A line chart over instants (pool hours), read on the site's clock. */
function lineChart(key, container, xs, series, opts = {}) {
  return plot(key, container, {
    height: opts.height || 240,
    series: [{ label: "Hour", value: (_u, ts) => (ts == null ? "" : fmtTime(ts * 1000, { short: true })) }, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 2, dash: s.dash,
      points: { show: xs.length < 40 },
    }))],
    axes: [{ values: hourAxis }, { label: opts.yLabel || "", size: 50 }],
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), ways.zone),
    scales: { x: { time: true }, y: opts.yRange ? { range: opts.yRange } : { range: (_u, _min, max) => [0, Math.max(1, max)] } },
  }, [xs, ...series.map((s) => s.values)]);
}

// ---------------------------------------------------------------- views

const VIEWS = ["login", "calls", "sources", "pools", "promo", "money", "exports", "users"];
/** What each view needs of a role (the API checks the same). */
const VIEW_NEEDS = {
  calls: "read_calls", sources: "read_reports", pools: "read_reports", promo: "look_up_promo",
  money: "manage_money", exports: "read_exports", users: "manage_users",
};
const mayOpen = (view) => may(VIEW_NEEDS[view]);
const VIEW_NAMES = {
  calls: "Calls", sources: "Sources", pools: "Pool health", promo: "Promo codes", money: "Cost & revenue",
  exports: "Exports", users: "Users",
};
const PERIOD_VIEWS = ["calls", "sources", "pools"];

function show(view, { detail = false } = {}) {
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  const signedIn = view !== "login";
  $("#nav").hidden = !signedIn;
  $("#site-box").hidden = !signedIn;
  if (!signedIn) $("#demo-banner").hidden = true;
  for (const a of document.querySelectorAll("#nav a")) a.hidden = signedIn && !mayOpen(a.dataset.view);
  $("#period").hidden = !PERIOD_VIEWS.includes(view);
  document.body.dataset.view = view;
  document.body.classList.toggle("has-detail", detail);
  for (const a of document.querySelectorAll("#nav a")) {
    const here = a.dataset.view === view;
    a.classList.toggle("active", here);
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

/** Nav links carry the site and the period, so moving between views keeps them. */
function updateNav() {
  for (const a of document.querySelectorAll("#nav a")) a.href = hashOf(a.dataset.view, shared());
}

async function route() {
  const gen = ++routeGen;
  params = readHash();
  if (!session.me) await loadSession();
  if (gen !== routeGen) return;
  if (!session.me) { show("login"); return; }
  if (!params.site) {
    // The site is part of every view's URL; fill it in without a history step.
    params.site = localStorage.getItem(SITE_KEY) || "demo";
    history.replaceState(null, "", hashOf(params.view === "call" ? "call" : params.view, params, params.arg));
  }
  localStorage.setItem(SITE_KEY, params.site);
  $("#site").value = params.site;
  useSite(params.site);
  updateNav();
  let view = params.view === "call" ? "calls" : VIEWS.includes(params.view) && params.view !== "login" ? params.view : "calls";
  if (!mayOpen(view)) {
    // A link to a view this role cannot open: say so, and open one it can.
    const allowed = VIEWS.find((v) => v !== "login" && mayOpen(v));
    if (!allowed) return;
    showStatus(`A ${session.me.role} does not open ${VIEW_NAMES[view]}: here is ${VIEW_NAMES[allowed]}.`);
    history.replaceState(null, "", hashOf(allowed, shared()));
    params = readHash();
    view = allowed;
  }
  show(view, { detail: params.view === "call" });
  // Until its figures are in, the view says it is busy (screen readers wait;
  // so does a test).
  for (const v of VIEWS) $(`#view-${v}`).removeAttribute("aria-busy");
  const box = $(`#view-${view}`);
  box.setAttribute("aria-busy", "true");
  const current = () => gen === routeGen;
  try {
    await fill(view, current);
  } finally {
    if (current()) box.removeAttribute("aria-busy");
  }
}

/** Writes `view`'s period and figures for the current URL. */
async function fill(view, current) {
  // Periods, times and amounts are the site's: learn its zone, currency
  // and locale before the first figure is written.
  if (!siteInfo.has(params.site)) {
    await guard(() => learnSite(params.site), () => clearView(view));
    if (!current() || !siteInfo.has(params.site)) return;
  }
  if (PERIOD_VIEWS.includes(view)) renderPeriod(view);
  switch (view) {
    case "calls": await guard(() => loadCalls(current), clearCalls); break;
    case "sources": await guard(() => loadSources(current), clearSources); break;
    case "pools": await guard(() => loadPools(current), clearPools); break;
    case "promo": renderPromoForm(); break;
    case "money": renderMoney(); break;
    case "exports": await guard(() => loadExports(current), clearExports); break;
    case "users": await guard(() => loadUsers(current), clearUsers); break;
    default: break;
  }
}

async function learnSite(siteId) {
  const { body } = await api(`/v1/calls${query({ site: siteId, limit: 1 })}`);
  remember(siteId, body);
}

function clearView(view) {
  ({ calls: clearCalls, sources: clearSources, pools: clearPools, exports: clearExports }[view] || (() => {}))();
}

/** The period the view shows: its days, and the words for it. */
function period(view) {
  const name = params.period && PERIODS.some(([k]) => k === params.period) ? params.period : DEFAULT_PERIOD[view];
  const days = resolvePeriod(name, params.from, params.to);
  return { name, ...days };
}

function renderPeriod(view) {
  const p = period(view);
  const form = $("#period");
  form.elements.period.value = p.name;
  form.elements.from.value = p.from;
  form.elements.to.value = p.to;
  form.classList.toggle("custom", p.name === "custom");
  const label = PERIODS.find(([k]) => k === p.name)[1];
  const range = p.from === p.to ? fmtDay(p.from) : `${fmtDay(p.from)} – ${fmtDay(p.to)}`;
  $("#period-label").textContent = `${label}: ${range}, days from midnight to midnight in ${ways.zone}`;
}

// ---------------------------------------------------------------- sign in

/** The signed-in user, from the session cookie; none when it has ended. */
async function loadSession() {
  try {
    const { body } = await api("/v1/auth/me");
    setSession(body);
  } catch (e) {
    if (!(e instanceof Unauthorized)) showError(e.message || String(e));
    setSession(null);
  }
}

function setSession(me) {
  session.me = me;
  session.csrf = me ? me.csrf_token : null;
  $("#whoami").textContent = me ? `${me.user ? me.user.username : "admin token"} · ${me.role}` : "";
  $("#my-sites").replaceChildren(...(me && me.sites ? me.sites : []).map((s) => h("option", { value: s })));
}

/** Back to the sign-in form, the session forgotten (the server already ended it, or will). */
function endSession(message) {
  // A view still loading for the last user is dropped when it arrives.
  routeGen++;
  setSession(null);
  siteInfo.clear();
  // Whoever signs in next at this browser sees nothing of the last user's
  // callers, notes or figures, not even hidden in the page.
  for (const v of ["calls", "sources", "pools", "exports"]) clearView(v);
  clearUsers();
  for (const id of ["#promo-result", "#promo-attach-result", "#cost-result", "#revenue-result", "#user-result"]) $(id).replaceChildren();
  $("#cost-csv").value = "";
  $("#password").value = "";
  $("#login-error").textContent = message || "";
  show("login");
  $("#username").focus();
}

async function signOut() {
  try {
    await api("/v1/auth/logout", { method: "POST" });
  } catch (e) {
    if (!(e instanceof Unauthorized) && !(e instanceof ApiError)) console.error(e);
  }
  endSession("Signed out.");
}

async function signIn(ev) {
  ev.preventDefault();
  const username = $("#username").value.trim();
  const password = $("#password").value;
  const s = $("#login-site").value.trim() || localStorage.getItem(SITE_KEY) || "demo";
  try {
    const resp = await fetch("/v1/auth/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) {
      const msg = body && body.error ? body.error.message : `HTTP ${resp.status}`;
      $("#login-error").textContent = resp.status === 429 ? `${msg}.` : resp.status === 401 ? "Wrong user name or password." : `Sign-in failed: ${msg}`;
      return;
    }
    setSession(body);
  } catch (e) {
    $("#login-error").textContent = `Sign-in failed: ${e.message || e}`;
    return;
  }
  // A user of some sites opens one of theirs.
  const site = session.me.sites && !session.me.sites.includes(s) ? session.me.sites[0] : s;
  localStorage.setItem(SITE_KEY, site);
  $("#password").value = "";
  $("#login-error").textContent = "";
  const wanted = readHash();
  if (!location.hash || wanted.view === "login") location.hash = hashOf("calls", { site });
  else if (wanted.site !== site) location.hash = hashOf(wanted.view, { ...wanted, site }, wanted.arg);
  else route();
}

// ---------------------------------------------------------------- calls

const calls = { rows: [], total: 0 };

function callFilters() {
  const p = period("calls");
  return {
    site: params.site, from: p.from, to: p.to, channel: params.channel, source: params.source,
    campaign: params.campaign, status: params.status, target: params.target, tag: params.tag,
  };
}

/** The site's tags (built-in first, then those in use), for the tag filters and the tag editor. */
const tagCache = new Map();
async function siteTags(siteId) {
  if (!tagCache.has(siteId)) {
    const { body } = await api(`/v1/tags${query({ site: siteId })}`);
    const names = [...body.built_in, ...body.tags.map((t) => t.tag).filter((t) => !body.built_in.includes(t))];
    tagCache.set(siteId, names);
  }
  return tagCache.get(siteId);
}

/** Fills a tag <select> with the site's tags, keeping `chosen` (even one not in use). */
async function fillTagSelect(select, siteId, chosen, anyLabel) {
  const names = may("read_tags") ? await siteTags(siteId) : [];
  const all = chosen && !names.includes(chosen) ? [...names, chosen] : names;
  select.replaceChildren(h("option", { value: "" }, anyLabel), ...all.map((t) => h("option", { value: t }, t)));
  select.value = chosen || "";
}

function tagChips(tags) {
  return (tags || []).map((t) => h("span", { class: `tag tag-${["lead", "sale", "spam"].includes(t) ? t : "own"}` }, t));
}

/** "Khimki, Moscow Oblast" (the country too when it is not the site's usual one). */
function placeText(p) {
  if (!p) return "";
  const where = [p.city, p.region && p.region !== p.city ? p.region : null].filter(Boolean).join(", ");
  return p.country && p.country !== "RU" ? `${where}${where ? ", " : ""}${p.country}` : where || p.country || "";
}

/** "phone · Chrome Mobile 127 · Android 10". */
function deviceText(d, { name = false } = {}) {
  if (!d) return "";
  return [d.type, name ? d.name : null, d.browser, d.os].filter(Boolean).join(" · ");
}

function fillForm(form, keys) {
  for (const k of keys) if (form.elements[k]) form.elements[k].value = params[k] || "";
}

function clearCalls() {
  calls.rows = [];
  calls.total = 0;
  $("#calls-table").replaceChildren();
  $("#calls-summary").textContent = "";
  $("#calls-prev").disabled = true;
  $("#calls-next").disabled = true;
  clearDetail(h("p", { class: "muted" }, "Choose a call to see the visitor's path and why it was attributed so."));
}

function clearDetail(...content) { $("#call-detail").replaceChildren(...content); }

/** How the dialled number is known: "pool paid-search", "static: Instagram", "the site's own number". */
function numberRole(c) {
  switch (c.number_kind) {
    case "pool": return c.pool_id ? `pool ${c.pool_id}` : "pool";
    case "static": return c.static_label ? `static: ${c.static_label}` : "static number";
    case "overflow": return "overflow number";
    case "original": return "the site's own number";
    default: return "not one of the site's numbers";
  }
}

// The calls table: tags share the confidence column, the visitor's city
// and device have their own.
const CALL_COLUMNS = [
  { label: "Rang", key: "rang", get: (c) => fmtTime(c.ring_at_ms, { short: true }) },
  { label: "Caller", key: "caller", get: (c) => [dash(c.caller), h("span", { class: "sub" }, c.caller_kind)] },
  { label: "Number dialled", key: "dialled", get: (c) => [c.dialled, h("span", { class: "sub" }, numberRole(c))] },
  { label: "Status", key: "status", get: (c) => [c.status, h("span", { class: "sub" }, c.target ? "target" : c.missed ? "missed" : "")] },
  { label: "Talk", key: "talk", num: true, get: (c) => fmtSecs(c.talk_secs) },
  { label: "Channel / source", key: "source", get: (c) => [c.channel, h("span", { class: "sub" }, c.source)] },
  { label: "Campaign / keyword", key: "campaign", wrap: true, get: (c) => [dash(c.campaign), h("span", { class: "sub" }, c.term || "")] },
  { label: "Visitor from / on", key: "visitor", wrap: true, get: (c) => [placeText(c.place) || "—", h("span", { class: "sub" }, c.device ? c.device.type : "")] },
  { label: "Confidence / tags", key: "confidence", wrap: true, get: (c) => [badge(c.confidence), h("span", { class: "tags" }, tagChips(c.tags))] },
];

const CALL_FILTERS = ["channel", "source", "campaign", "status", "target", "tag"];

async function loadCalls(current) {
  const form = $("#calls-filter");
  fillForm(form, CALL_FILTERS);
  // On a phone the filters fold away unless some are set; the summary says how many.
  const on = CALL_FILTERS.filter((k) => params[k]).length;
  const box = $("#calls-filters-box");
  box.querySelector("summary").textContent = on ? `Filters (${on} set)` : "Filters";
  if (!box.dataset.touched) box.open = on > 0 || !matchMedia("(max-width: 760px)").matches;
  const offset = Math.max(0, Number(params.offset) || 0);
  const siteId = params.site;
  const [{ body }] = await Promise.all([
    api(`/v1/calls${query({ ...callFilters(), limit: PAGE, offset })}`),
    fillTagSelect(form.elements.tag, siteId, params.tag, "any"),
  ]);
  if (!current()) return;
  remember(siteId, body);
  calls.rows = body.calls;
  calls.total = body.total;
  const last = Math.min(offset + body.calls.length, body.total);
  $("#calls-summary").textContent = body.total
    ? `Calls ${fmtCount(offset + 1)}–${fmtCount(last)} of ${fmtCount(body.total)}, newest first.`
    : "No calls match these filters in this period.";
  $("#calls-prev").disabled = offset === 0;
  $("#calls-next").disabled = last >= body.total;
  $("#csv-export").href = `/v1/calls.csv${query({ ...callFilters(), excel: $("#csv-excel").checked ? 1 : null })}`;
  $("#csv-export").hidden = !may("export_calls");
  $("#csv-excel").closest("label").hidden = !may("export_calls");
  renderCalls();
  if (params.view === "call") await openCall(params.arg, current);
  else clearDetail(h("p", { class: "muted" }, "Choose a call to see the visitor's path and why it was attributed so."));
}

function renderCalls() {
  const selected = params.view === "call" ? Number(params.arg) : null;
  for (const c of calls.rows) c.href = hashOf("call", { ...params }, c.id);
  table($("#calls-table"), CALL_COLUMNS, calls.rows, {
    onRow: (c) => { location.hash = c.href; },
    selected: (c) => c.id === selected,
    caption: "Calls",
  });
}

/** Why the call went where it did, in words for people; the collector's own note stays below it. */
function explain(c) {
  const a = c.attribution || {};
  const chosen = (a.candidates || []).find((k) => k.chosen);
  // "10 min before the call"; a gap of a few seconds is "just before".
  const before = (ms) => (c.ring_at_ms - ms < 5000 ? "just" : fmtSpan(c.ring_at_ms - ms));
  const role = numberRole(c);
  if (chosen && chosen.relation === "promo") {
    return `The caller named promo code ${c.promo_code || ""}, which was given to this visitor on the site.`.replace("code  ", "code ");
  }
  switch (c.number_kind) {
    case "static":
      return `The caller dialled the static number of ${c.static_label || "a source"}: every call to it is credited to ${[c.channel, c.source].filter(Boolean).join(" / ")}.`;
    case "pool":
      if (chosen && chosen.relation === "live") {
        return `A visitor had this number (${role}) on screen when the call rang: the site gave it to them ${before(chosen.held_from_ms)} before the call, and nobody else had it then.`;
      }
      if (chosen && chosen.relation === "grace") {
        return `The visitor's hold on this number (${role}) had ended only ${before(chosen.held_until_ms)} before the call, within the grace time, so the call is most likely theirs.`;
      }
      if (chosen && chosen.relation === "caller-history") {
        return `Nobody held this number (${role}) when the call rang; the same caller's earlier call came from this visitor, so it is credited to them, with low confidence.`;
      }
      {
        const last = (a.candidates || []).find((k) => k.relation === "expired");
        return last
          ? `Nobody held this number (${role}) when the call rang: the last visitor's hold ended ${before(last.held_until_ms)} before the call, too long ago to credit them.`
          : `Nobody had been given this number (${role}) before the call, so no visit can be credited.`;
      }
    case "overflow":
      return "The overflow number was dialled: the pool had run out of numbers, so the visitor cannot be told apart from others.";
    case "original":
      return chosen
        ? "The caller dialled the site's own number; their earlier call came from a known visitor, so it is credited to them, with low confidence."
        : "The caller dialled the site's own number: no tracking number was involved, so the call cannot be tied to a visit.";
    default:
      return "The number dialled is not one of the site's numbers.";
  }
}

const RELATIONS = {
  live: "held the number when it rang",
  grace: "hold ended within the grace time",
  expired: "hold ended before, beyond the grace time",
  promo: "was given the promo code",
  "caller-history": "the caller's earlier call",
};

async function openCall(arg, current) {
  const id = Number(arg);
  if (!Number.isInteger(id) || id <= 0) {
    clearDetail(backLink(), h("p", { class: "error" }, `"${arg}" is not a call id.`));
    return;
  }
  clearDetail(backLink(), h("p", { class: "muted" }, `Loading call #${id}…`));
  let c;
  try {
    ({ body: c } = await api(`/v1/calls/${id}`));
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (!current()) return;
    // The previous call must not stay on screen under this one's id.
    clearDetail(backLink(), h("h2", {}, `Call #${id}`),
      h("p", { class: "error", role: "alert" }, e.code === "unknown_call" ? `There is no call #${id}: ${e.message}.` : e.message));
    return;
  }
  if (!current()) return;
  if (c.site !== params.site) {
    clearDetail(backLink(), h("h2", {}, `Call #${id}`),
      h("p", { class: "error", role: "alert" }, `Call #${id} belongs to site "${c.site}", not "${params.site}".`), h("a", { href: hashOf("call", { ...shared(), site: c.site }, id) }, `Open it in site ${c.site}`));
    return;
  }
  const a = c.attribution || {};
  const v = c.visitor;
  clearDetail(
    backLink(),
    h("h2", {}, `Call #${c.id} `, badge(c.status, c.target ? "ok" : c.missed ? "warn" : "none")),
    h("dl", { class: "kv" },
      h("dt", {}, "Rang"), h("dd", {}, fmtTime(c.ring_at_ms, { seconds: true })),
      h("dt", {}, "Caller"), h("dd", {}, `${dash(c.caller)} (${c.caller_kind})`),
      h("dt", {}, "Number dialled"), h("dd", {}, `${c.dialled} (${numberRole(c)})`),
      h("dt", {}, "Status"), h("dd", {}, `${c.status}${c.target ? ", target call" : ""}${c.missed ? ", missed" : ""}`),
      h("dt", {}, "Talk"), h("dd", {}, dash(fmtSecs(c.talk_secs))),
      h("dt", {}, "Source"), h("dd", {}, [c.channel, c.source, c.medium, c.campaign, c.term].filter(Boolean).join(" / ")),
      c.promo_code ? [h("dt", {}, "Promo code"), h("dd", {}, c.promo_code)] : "",
      h("dt", {}, "Visitor from"), h("dd", { class: "place" }, placeText(c.place) || "—",
        // DB-IP's licence (CC BY 4.0) asks for this wherever its data shows.
        c.place ? [" ", h("span", { class: "muted attribution-note" }, "(IP geolocation by ", h("a", { href: "https://db-ip.com", rel: "noreferrer" }, "DB-IP"), ")")] : ""),
      h("dt", {}, "Device"), h("dd", { class: "device" }, deviceText(c.device, { name: true }) || "—"),
    ),
    recordingPlayer(c),
    tagEditor(c),
    notesBox(c),
    h("h3", {}, "Why it is credited here"),
    h("p", { class: "attribution" }, badge(`${a.confidence || "none"} confidence`, a.confidence || "none"), " ", explain(c)),
    h("details", { class: "note" }, h("summary", {}, "The collector's note"), h("p", {}, `${a.reason || ""} (model: ${a.model || c.model})`)),
    a.candidates && a.candidates.length
      ? h("table", { class: "data candidates cards" },
        h("caption", { class: "sr-only" }, "Sessions considered"),
        h("thead", {}, h("tr", {}, ["Visitor session", "Why considered", "Held the number", "Chosen"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, a.candidates.map((k) => h("tr", { class: k.chosen ? "selected" : null },
          h("td", { "data-label": "Visitor session" }, k.session_id.slice(0, 12)),
          h("td", { "data-label": "Why considered", class: "wrap" }, RELATIONS[k.relation] || k.relation),
          h("td", { "data-label": "Held the number", class: "wrap" }, k.held_from_ms != null ? `${fmtTime(k.held_from_ms, { seconds: true, short: true })} – ${fmtTime(k.held_until_ms, { seconds: true, short: true })}` : ""),
          h("td", { "data-label": "Chosen" }, k.chosen ? "yes" : "")))))
      : "",
    a.credits && a.credits.length > 1
      ? [h("h3", {}, "Credit"), h("ul", {}, a.credits.map((cr) => h("li", {}, `${fmtPct(cr.share)} → ${[cr.channel, cr.source, cr.campaign].filter(Boolean).join(" / ")}`)))]
      : "",
    h("h3", {}, "Visitor's path"),
    v ? visitorPath(v) : h("p", { class: "muted" }, "No website visit behind this call (static number or unattributed)."),
  );
  $("#call-detail").focus({ preventScroll: true });
}

/** The call's recording, streamed by the collector (which holds the PBX's credentials). */
function recordingPlayer(c) {
  if (!c.recording_url || !may("play_recordings")) return "";
  const src = `/v1/calls/${c.id}/recording`;
  const audio = h("audio", { controls: true, preload: "metadata", src, "aria-label": `Recording of call #${c.id}` });
  const note = h("p", { class: "muted recording-note" });
  audio.addEventListener("error", () => {
    note.textContent = "The recording could not be loaded from the PBX; the collector's log says why.";
  });
  return h("section", { class: "recording" }, h("h3", {}, "Recording"), audio,
    h("p", { class: "muted" }, h("a", { href: src, download: `call-${c.id}-recording` }, "Download the recording")), note);
}

/** A manager's tags on the call: chips, removable, and a field to add one. */
function tagEditor(c) {
  if (!may("read_tags")) return "";
  const box = h("section", { class: "tag-editor", "aria-label": "Tags" });
  const status = h("p", { class: "muted tag-status", role: "status" });
  const editable = may("tag_calls");
  const render = (tags) => {
    c.tags = tags;
    const row = calls.rows.find((r) => r.id === c.id);
    if (row) { row.tags = tags; renderCalls(); }
    const chips = tags.map((t) => h("span", { class: `tag tag-${["lead", "sale", "spam"].includes(t) ? t : "own"}` }, t,
      editable ? h("button", { type: "button", class: "untag", "aria-label": `Remove tag ${t}`, onclick: () => change("DELETE", t) }, "×") : ""));
    const quick = editable ? ["lead", "sale", "spam"].filter((t) => !tags.includes(t))
      .map((t) => h("button", { type: "button", class: "secondary quick-tag", "data-tag": t, onclick: () => change("POST", t) }, `+ ${t}`)) : [];
    const input = h("input", { name: "tag", list: "tag-names", maxlength: 32, autocomplete: "off", "aria-label": "New tag", placeholder: "own tag, e.g. repeat" });
    box.replaceChildren(
      h("h3", {}, "Tags"),
      h("div", { class: "tags" }, chips.length ? chips : h("span", { class: "muted" }, "No tags yet."), ...quick),
      editable ? h("form", { class: "add-tag", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) change("POST", input.value.trim()); } },
        input, h("button", { type: "submit" }, "Add tag")) : "",
      status,
    );
  };
  const change = async (method, tag) => {
    status.textContent = "";
    try {
      const path = method === "POST" ? `/v1/calls/${c.id}/tags` : `/v1/calls/${c.id}/tags/${encodeURIComponent(tag)}`;
      const { body } = await api(path, method === "POST"
        ? { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ tag }) } : { method });
      tagCache.delete(c.site);
      render(body.tags);
      status.textContent = method === "POST" ? `Tagged ${tag}.` : `Tag ${tag} removed.`;
    } catch (e) {
      if (e instanceof Unauthorized) { endSession(`${e.message} Sign in again.`); return; }
      status.textContent = e.message;
      status.className = "error tag-status";
    }
  };
  render(c.tags || []);
  siteTags(c.site).then((names) => {
    $("#tag-names").replaceChildren(...names.map((t) => h("option", { value: t })));
  }).catch(() => {});
  return box;
}

/** The manager's notes on the call, newest last, and a box to write one. */
function notesBox(c) {
  if (!may("read_notes")) return "";
  const list = h("ol", { class: "notes" });
  const status = h("p", { class: "muted", role: "status" });
  const box = h("section", { class: "notes-box", "aria-label": "Notes" }, h("h3", {}, "Notes"), list);
  const me = session.me.user ? session.me.user.username : "admin token";
  const render = (notes) => {
    list.replaceChildren(...notes.map((n) => h("li", { "data-note": n.id },
      h("span", { class: "muted" }, `${n.author}, ${fmtTime(n.at_ms, { short: true })}`),
      (n.author === me || session.me.role === "admin") && may("write_notes")
        ? h("button", { type: "button", class: "secondary remove-note", "aria-label": `Remove the note of ${fmtTime(n.at_ms, { short: true })}`, onclick: () => remove(n.id) }, "Remove") : "",
      h("p", { class: "note-body" }, n.body))));
    if (!notes.length) list.append(h("li", { class: "muted" }, "No notes yet."));
  };
  const load = async () => {
    const { body } = await api(`/v1/calls/${c.id}/notes`);
    render(body.notes);
  };
  const fail = (e) => {
    if (e instanceof Unauthorized) { endSession(`${e.message} Sign in again.`); return; }
    status.textContent = e.message;
  };
  const remove = async (id) => {
    try { await api(`/v1/calls/${c.id}/notes/${id}`, { method: "DELETE" }); await load(); } catch (e) { fail(e); }
  };
  if (may("write_notes")) {
    const text = h("textarea", { name: "note", rows: 3, maxlength: 2000, "aria-label": `A note on call #${c.id}`, placeholder: "What the caller wanted, what was agreed" });
    box.append(h("form", { class: "add-note", onsubmit: async (e) => {
      e.preventDefault();
      if (!text.value.trim()) return;
      try {
        await api(`/v1/calls/${c.id}/notes`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ body: text.value }) });
        text.value = "";
        status.textContent = "Note saved.";
        await load();
      } catch (err) { fail(err); }
    } }, text, h("button", { type: "submit" }, "Add note")));
  }
  box.append(status);
  load().catch(fail);
  return box;
}

function backLink() {
  return h("a", { class: "back", href: hashOf("calls", { ...params }) }, "← All calls");
}

function visitorPath(v) {
  return h("div", { class: "visitor-path" },
    h("dl", { class: "kv" },
      h("dt", {}, "Landing page"), h("dd", { class: "url" }, dash(v.landing_page)),
      h("dt", {}, "Keyword"), h("dd", {}, dash(v.keyword)),
      h("dt", {}, "First seen"), h("dd", {}, fmtTime(v.first_seen_ms, { seconds: true })),
      h("dt", {}, "Client id"), h("dd", {}, dash(v.client_id)),
    ),
    h("h3", {}, `Touches (${v.touches.length})`),
    h("ol", { class: "path touches" }, v.touches.map((t) => h("li", {},
      h("b", {}, `${t.channel} / ${t.source} / ${t.medium}`),
      t.campaign ? ` · campaign ${t.campaign}` : "", t.term ? ` · keyword "${t.term}"` : "",
      t.click_id ? ` · ${t.click_id_kind || "click id"}` : "",
      h("br"), h("span", { class: "muted" }, `${fmtTime(t.at_ms, { seconds: true })} · landed on `), h("span", { class: "url" }, t.landing_path)))),
    h("h3", {}, `Pages (${v.page_views.length})`),
    h("ol", { class: "path pages" }, v.page_views.map((p) => h("li", {},
      h("span", { class: "muted" }, fmtTime(p.at_ms, { seconds: true })), " ", p.title ? h("b", {}, p.title) : "", h("br"),
      h("span", { class: "url" }, p.url)))),
  );
}

async function exportCsv(ev) {
  ev.preventDefault();
  await guard(async () => {
    const excel = $("#csv-excel").checked;
    const r = await fetch(`/v1/calls.csv${query({ ...callFilters(), excel: excel ? 1 : null })}`, { credentials: "same-origin" });
    if (r.status === 401) throw new Unauthorized("Your session has ended.");
    if (!r.ok) throw new Error(`CSV export failed: HTTP ${r.status}`);
    const url = URL.createObjectURL(await r.blob());
    const p = period("calls");
    const a = h("a", { href: url, download: `calls-${params.site}-${p.from}-${p.to}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
}

// -------------------------------------------------------------- sources

const METRICS = {
  calls: "Calls", target_calls: "Target calls", missed_calls: "Missed calls", first_time_callers: "First-time callers",
  cost: "Cost", revenue: "Revenue",
};
const MONEY = ["cost", "revenue"];

function clearSources() {
  dropChart("sources");
  $("#sources-chart").replaceChildren();
  $("#sources-table").replaceChildren();
  $("#sources-note").textContent = "";
}

async function loadSources(current) {
  const form = $("#sources-filter");
  const groupBy = ["channel", "source", "campaign", "term", "medium"].includes(params.group_by) ? params.group_by : "channel";
  form.elements.group_by.value = groupBy;
  const p = period("sources");
  const siteId = params.site;
  const [{ body }] = await Promise.all([
    api(`/v1/reports/calls${query({ site: siteId, from: p.from, to: p.to, group_by: groupBy, interval: "day", tag: params.tag })}`),
    fillTagSelect(form.elements.tag, siteId, params.tag, "any call"),
  ]);
  if (!current()) return;
  remember(siteId, body);
  const groupName = form.elements.group_by.selectedOptions[0].textContent;
  const groupTitle = groupName[0].toUpperCase() + groupName.slice(1);
  $("#sources-group").textContent = groupName;
  const rows = body.rows || [];
  // Money columns appear once a site has cost or revenue at all; per
  // keyword the API has no cost (it is uploaded per campaign).
  const hasMoney = rows.some((r) => isNum(r.cost) && r.cost > 0) || rows.some((r) => r.revenue > 0) || (isNum(body.totals?.cost) && body.totals.cost > 0);
  const blank = (group) => ({ group, calls: 0, target_calls: 0, missed_calls: 0, first_time_callers: 0, cost: null, revenue: 0 });
  const groups = new Map();
  for (const r of rows) {
    const g = groups.get(r.group) || blank(r.group);
    for (const k of ["calls", "target_calls", "missed_calls", "first_time_callers", "revenue"]) g[k] += Number(r[k]) || 0;
    if (isNum(r.cost)) g.cost = (g.cost || 0) + r.cost;
    groups.set(r.group, g);
  }
  const list = [...groups.values()].sort((a, b) => b.calls - a.calls || (b.cost || 0) - (a.cost || 0) || a.group.localeCompare(b.group));
  // Ratios as the API defines them: none without target calls, or without cost.
  // The API counts a group without uploaded cost as costing 0; the table
  // shows no cost there, and no ratio built on it.
  for (const g of list) {
    g.cost_per_target_call = g.cost > 0 && g.target_calls > 0 ? g.cost / g.target_calls : null;
    g.roi = g.cost > 0 ? (g.revenue - g.cost) / g.cost : null;
  }
  const totals = { group: "Total", ...(body.totals || {}) };
  const columns = [
    { label: groupTitle, key: "group", wrap: true, get: (g) => g.group },
    { label: "Calls", key: "calls", num: true, get: (g) => fmtCount(g.calls) },
    { label: "Target", key: "target", num: true, get: (g) => fmtCount(g.target_calls) },
    { label: "Missed", key: "missed", num: true, get: (g) => fmtCount(g.missed_calls) },
    { label: "First-time", key: "first", num: true, get: (g) => fmtCount(g.first_time_callers) },
  ];
  if (hasMoney) {
    columns.push(
      { label: "Cost", key: "cost", num: true, get: (g) => (g.cost > 0 ? fmtMoney(g.cost) : "") },
      { label: "Revenue", key: "revenue", num: true, get: (g) => (g.revenue > 0 ? fmtMoney(g.revenue) : "") },
      { label: "Cost/target", key: "cpt", num: true, get: (g) => (g.cost > 0 ? fmtMoney(g.cost_per_target_call) : "") },
      { label: "ROI", key: "roi", num: true, get: (g) => fmtPct(g.roi) },
    );
  }
  $("#view-sources .split").classList.toggle("wide-table", hasMoney);
  table($("#sources-table"), columns, list, { footer: (c) => c.get(totals), caption: `Calls by ${groupName}` });
  $("#sources-note").textContent = `${body.model || ""} attribution; counts are sums of credit.` +
    (hasMoney ? " Cost per target call = cost ÷ target calls; ROI = (revenue − cost) ÷ cost. An empty cell: no cost uploaded for it." : "") +
    (groupBy === "term" ? " Cost is uploaded per campaign, not per keyword." : "") +
    (body.tag ? ` Only calls tagged "${body.tag}"; cost is each group's whole cost.` : "") +
    (body.demo_data ? " This site holds demo data (ringsource demo-data)." : "");

  // The chart: the metric per day, stacked by group (the top groups, the rest as "Other").
  const metricSelect = form.elements.metric;
  for (const k of MONEY) metricSelect.querySelector(`option[value=${k}]`).hidden = !hasMoney;
  const metric = METRICS[params.metric] && (hasMoney || !MONEY.includes(params.metric)) ? params.metric : "calls";
  metricSelect.value = metric;
  const days = [];
  for (let d = siteDay(body.from_ms); d <= siteDay(body.to_ms - 1); d = addDays(d, 1)) days.push(d);
  const value = (r) => (isNum(r[metric]) ? r[metric] : 0);
  const byGroupDay = new Map(rows.map((r) => [`${r.group}\u0000${r.day}`, value(r)]));
  const ranked = [...list].sort((a, b) => (metric in b ? (b[metric] || 0) - (a[metric] || 0) : 0));
  const shown = ranked.filter((g) => (g[metric] || 0) > 0);
  const top = shown.slice(0, shown.length > COLORS.length ? COLORS.length - 1 : COLORS.length);
  const rest = shown.slice(top.length);
  const series = top.map((g, i) => ({ label: g.group, color: COLORS[i], values: days.map((d) => byGroupDay.get(`${g.group}\u0000${d}`) || 0) }));
  if (rest.length) {
    series.push({ label: `Other (${rest.length})`, color: OTHER_COLOR, values: days.map((d) => rest.reduce((s, g) => s + (byGroupDay.get(`${g.group}\u0000${d}`) || 0), 0)) });
  }
  $("#sources-chart-title").textContent = `${METRICS[metric]} per day by ${groupName}`;
  const chartBox = $("#sources-chart");
  chartBox.setAttribute("aria-label", `${METRICS[metric]} per day by ${groupName}, stacked; the table beside it has the totals.`);
  stackedBars("sources", chartBox, days, series, { money: MONEY.includes(metric), height: innerWidth < 700 ? 220 : 300 });
}

// ---------------------------------------------------------------- pools

function clearPools() {
  for (const key of [...charts.keys()]) if (key.startsWith("pool-")) dropChart(key);
  $("#pools").replaceChildren();
}

async function loadPools(current) {
  const p = period("pools");
  const siteId = params.site;
  const { body } = await api(`/v1/reports/pools${query({ site: siteId, from: p.from, to: p.to })}`);
  if (!current()) return;
  remember(siteId, body);
  clearPools();
  const box = $("#pools");
  if (!body.pools.length) {
    box.append(h("p", { class: "muted" }, `Site ${body.site} has no number pools.`));
    return;
  }
  for (const pool of body.pools) {
    const chartBox = h("div", { class: "chart", role: "img", "aria-label": `Pool ${pool.pool_id}: share of numbers live and busy per hour` });
    const hoursTable = h("table", { class: "data hours cards" });
    const busy = pool.hours.filter((r) => r.max_busy || r.new_sessions || r.exhaustions).reverse().slice(0, 48);
    const undersized = pool.recommended_size > pool.size;
    const z = pool.sizing;
    const mins = (secs) => `${fmtCount(Math.round((secs / 60) * 10) / 10)} min`;
    const sizing = h("table", { class: "data sizing cards" });
    box.append(h("section", { class: "pool card", "data-pool": pool.pool_id },
      h("h2", {}, `Pool ${pool.pool_id} `, pool.warning ? badge("busy ≥ 75%", "warn") : badge("ok", "ok"),
        undersized ? [" ", badge(`needs ${pool.recommended_size} numbers`, "warn")] : ""),
      h("div", { class: "stats" },
        h("span", {}, "Size ", h("b", {}, pool.size)),
        h("span", {}, "Live now ", h("b", {}, `${pool.live_now} (${fmtPct(pool.utilisation_now)})`)),
        h("span", {}, "Peak live ", h("b", {}, `${pool.peak_live} (${fmtPct(pool.peak_utilisation)})`)),
        h("span", {}, "Peak busy ", h("b", {}, `${pool.peak_busy} (${fmtPct(pool.peak_busy_share)})`)),
        h("span", {}, "Peak new sessions/hour ", h("b", {}, pool.peak_new_sessions_per_hour)),
        h("span", {}, "Recommended size ", h("b", { class: "recommended" }, pool.recommended_size)),
        h("span", {}, "Exhaustions ", h("b", {}, pool.exhaustion_count)),
        pool.over_share_count ? h("span", {}, "Refused to flooding networks ", h("b", {}, pool.over_share_count)) : null,
        h("span", { class: "muted" }, `when it runs out: ${pool.on_exhaustion}`)),
      // The formula with this period's figures, so the recommendation can be
      // checked by hand.
      sizing,
      h("p", { class: "muted formula" },
        `${z.peak_new_sessions_per_hour}/hour × (${mins(z.mean_renewed_secs)} renewed + ${mins(z.hold_secs)} hold + ${mins(z.cooldown_secs)} cooldown) ÷ 60 × ${fmtCount(z.margin)} = ${fmtCount(z.busy_at_peak * z.margin)} → ${z.recommended_size} numbers. ` +
        "A visitor who stays renews the number; after the lease ends it cools down before anyone else gets it."),
      h("div", { class: "split even" },
        h("div", { class: "pane-plain" }, h("h3", {}, "Share of the numbers in use per hour"), chartBox),
        h("div", { class: "pane-plain" }, h("h3", {}, "Busiest recent hours"), hoursTable,
          pool.exhaustions.length ? [h("h3", {}, "Latest exhaustions"), h("ul", {}, pool.exhaustions.slice(-10).reverse().map((e) =>
            // One row per minute and kind: how many visitors, and why.
            h("li", {}, `${fmtTime(e.at_ms, { seconds: true })}: ${e.count > 1 ? `${fmtCount(e.count)} visitors, ` : ""}${e.reason === "over-share" ? "over their network's share, " : ""}${e.policy} → ${e.outcome}${e.number ? ` (${e.number})` : ""}`)))] : "")),
    ));
    table(sizing, [
      { label: "Peak new sessions/hour", num: true, key: "peak", get: () => z.peak_new_sessions_per_hour },
      { label: "Mean renewed", num: true, key: "renewed", get: () => mins(z.mean_renewed_secs) },
      { label: "Hold", num: true, key: "hold", get: () => mins(z.hold_secs) },
      { label: "Cooldown", num: true, key: "cooldown", get: () => mins(z.cooldown_secs) },
      { label: "A session keeps a number", num: true, key: "occupancy", get: () => mins(z.occupancy_secs) },
      { label: "Busy at peak", num: true, key: "busy", get: () => fmtCount(z.busy_at_peak) },
      { label: "Margin", num: true, key: "margin", get: () => `× ${fmtCount(z.margin)}` },
      { label: "Recommended", num: true, key: "recommended", get: () => h("b", {}, z.recommended_size) },
    ], [{}], { caption: `How pool ${pool.pool_id}'s size is worked out` });
    for (const td of sizing.querySelectorAll("tbody td")) td.dataset.input = td.className.match(/col-(\w+)/)?.[1] || "";
    sizing.querySelector("[data-input=renewed]").title = `mean over ${z.leases_measured} leases of this period`;
    table(hoursTable, [
      { label: "Hour", key: "hour", get: (r) => fmtTime(r.hour_ms, { short: true }) },
      { label: "Most live", num: true, key: "live", get: (r) => r.max_live },
      { label: "Used", num: true, key: "used", get: (r) => fmtPct(r.utilisation) },
      { label: "Busy (live + cooling)", num: true, key: "busy", get: (r) => r.max_busy },
      { label: "New sessions", num: true, key: "new", get: (r) => r.new_sessions },
      { label: "Exhausted", num: true, key: "exhausted", get: (r) => r.exhaustions },
    ], busy, { caption: `Busiest recent hours of pool ${pool.pool_id}` });
    if (!busy.length) hoursTable.after(h("p", { class: "muted" }, "No leases in this period."));
    lineChart(`pool-${pool.pool_id}`, chartBox, pool.hours.map((r) => r.hour_ms / 1000), [
      { label: "live %", values: pool.hours.map((r) => Math.round(r.utilisation * 1000) / 10) },
      { label: "busy (live + cooling) %", values: pool.hours.map((r) => Math.round((r.max_busy / pool.size) * 1000) / 10), color: "#e8590c" },
      { label: "warning 75%", values: pool.hours.map(() => body.warning_utilisation * 100), color: "#c92a2a", dash: [6, 4] },
    ], { yRange: [0, 100], yLabel: "%", height: innerWidth < 700 ? 200 : 240 });
  }
}

// ---------------------------------------------------------------- promo

let promoCode = null;

function renderPromoForm() {
  if (params.code && $("#promo-code").value !== params.code) {
    $("#promo-code").value = params.code;
    lookupPromo();
  }
}

async function lookupPromo(ev) {
  if (ev) ev.preventDefault();
  await guard(async () => {
    const code = $("#promo-code").value.trim().toUpperCase();
    const out = $("#promo-result");
    out.replaceChildren();
    $("#promo-attach").hidden = true;
    if (!code) return;
    if (params.code !== code) history.replaceState(null, "", hashOf("promo", { ...params, code }));
    params.code = code;
    let body;
    try {
      ({ body } = await api(`/v1/promo/${encodeURIComponent(code)}${query({ site: params.site })}`));
      remember(params.site, body);
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      out.append(h("p", { class: "error" }, `Code ${code}: ${e.message}`));
      return;
    }
    promoCode = body.code;
    const touches = body.visitor.touches;
    const last = touches[touches.length - 1];
    out.append(
      h("h2", {}, `Code ${body.code}`),
      h("dl", { class: "kv" },
        h("dt", {}, "Source"), h("dd", { class: "promo-source" }, last ? [last.channel, last.source, last.medium, last.campaign, last.term].filter(Boolean).join(" / ") : "—"),
        h("dt", {}, "Issued"), h("dd", {}, fmtTime(body.issued_at_ms)),
        h("dt", {}, "Reserved until"), h("dd", {}, `${fmtTime(body.reserved_until_ms)}${body.live ? "" : " (given to another visitor since)"}`),
      ),
      h("h3", {}, "Visitor's path"),
      visitorPath(body.visitor),
    );
    $("#promo-attach").hidden = !may("attach_promo");
    $("#promo-attach-result").textContent = "";
  });
}

async function attachPromo(ev) {
  ev.preventDefault();
  await guard(async () => {
    const id = $("#promo-call").value.trim();
    try {
      const { body } = await api(`/v1/calls/${encodeURIComponent(id)}/promo`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code: promoCode }),
      });
      $("#promo-attach-result").replaceChildren(`Call #${body.id} is now credited to ${body.channel} / ${body.source} (${body.attribution.confidence} confidence). `,
        h("a", { href: hashOf("call", shared(), body.id) }, "Open the call"));
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      $("#promo-attach-result").replaceChildren(h("span", { class: "error" }, e.message));
    }
  });
}

// ------------------------------------------------------ costs and revenue

function renderMoney() {
  $("#money-site").textContent = params.site;
  const cur = siteInfo.get(params.site)?.currency;
  const field = $("#revenue-form").elements.currency;
  if (!field.value && cur) field.value = cur;
  field.placeholder = cur || "e.g. EUR";
}

async function readCostFile() {
  const file = $("#cost-file").files[0];
  if (!file) return;
  // File.text() decodes UTF-8 and drops a byte order mark (Excel writes one).
  $("#cost-csv").value = await file.text();
}

async function uploadCosts(ev) {
  ev.preventDefault();
  const out = $("#cost-result");
  out.replaceChildren();
  const text = $("#cost-csv").value;
  if (!text.trim()) {
    out.append(h("p", { class: "error" }, "Choose a CSV file or paste its rows first."));
    return;
  }
  await guard(async () => {
    try {
      const { body } = await api(`/v1/costs${query({ site: params.site })}`, {
        method: "POST", headers: { "Content-Type": "text/csv; charset=utf-8" }, body: text,
      });
      out.append(h("p", { class: "ok", role: "status" }, `Stored ${fmtCount(body.upserted)} cost row${body.upserted === 1 ? "" : "s"} for site ${params.site}. The source report shows them now.`));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const rows = e.body?.error?.rows;
      if (e.code === "invalid_rows" && Array.isArray(rows)) {
        const lines = text.split(/\r?\n/);
        out.append(
          h("p", { class: "error", role: "alert" }, `Nothing was stored: ${rows.length} problem${rows.length === 1 ? "" : "s"} in the file. Fix ${rows.length === 1 ? "it" : "them"} and upload again.`),
          h("table", { class: "data issues cards" },
            h("caption", { class: "sr-only" }, "Problems in the uploaded file"),
            h("thead", {}, h("tr", {}, ["Line", "Column", "Problem", "The line as uploaded"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, rows.map((r) => h("tr", {},
              h("td", { "data-label": "Line", class: "num" }, r.line ?? (r.index != null ? `#${r.index}` : "")),
              h("td", { "data-label": "Column" }, r.field || "(row)"),
              h("td", { "data-label": "Problem", class: "wrap" }, r.message),
              h("td", { "data-label": "The line as uploaded", class: "wrap mono" }, r.line ? lines[r.line - 1] ?? "" : ""))))),
        );
      } else {
        out.append(h("p", { class: "error", role: "alert" }, e.message));
      }
    }
  });
}

async function postRevenue(ev) {
  ev.preventDefault();
  const form = $("#revenue-form");
  const out = $("#revenue-result");
  out.replaceChildren();
  const f = Object.fromEntries(new FormData(form));
  const amount = Number(String(f.amount).replace(/\s/g, "").replace(",", "."));
  const body = { site: params.site, amount };
  if (f.call_id.trim()) body.call_id = Number(f.call_id.trim());
  if (f.caller.trim()) body.caller = f.caller.trim();
  if (f.currency.trim()) body.currency = f.currency.trim().toUpperCase();
  if (f.deal_id.trim()) body.deal_id = f.deal_id.trim();
  if (f.at) {
    // The deal's day on the site's calendar, at its end: the caller's latest call that day or before.
    const zoneInfo = siteInfo.get(params.site);
    body.at = zoneInfo ? endOfSiteDay(f.at, zoneInfo.zone) : Date.parse(`${f.at}T23:59:59Z`);
  }
  if (!Number.isFinite(amount)) {
    out.append(h("p", { class: "error" }, `"${f.amount}" is not an amount.`));
    return;
  }
  if (!body.call_id === !body.caller) {
    out.append(h("p", { class: "error" }, "Give the call id or the caller's number (one of the two)."));
    return;
  }
  await guard(async () => {
    try {
      const { body: r } = await api("/v1/revenue", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const what = { recorded: "Recorded", updated: "Updated", unchanged: "Already recorded, unchanged:" }[r.outcome] || r.outcome;
      const amountText = r.currency && r.currency !== ways.currency
        ? `${fmt("num", { maximumFractionDigits: 2, minimumFractionDigits: 2 }).format(r.amount)} ${r.currency}`
        : fmtMoney(r.amount);
      out.append(h("p", { class: "ok", role: "status" }, `${what} ${amountText} for call #${r.call_id}${r.deal_id ? ` (deal ${r.deal_id})` : ""}. `,
        h("a", { href: hashOf("call", shared(), r.call_id) }, "Open the call")));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      out.append(h("p", { class: "error", role: "alert" }, e.message));
    }
  });
}

/** The last millisecond of day `day` on the clock of `zone`. */
function endOfSiteDay(day, zone) {
  // Start from the UTC end of the day and step by the zone's offset there.
  const guess = Date.parse(`${day}T23:59:59.999Z`);
  for (let ms = guess - 14 * 3600_000; ms <= guess + 14 * 3600_000; ms += 15 * 60_000) {
    if (siteDay(ms, zone) > day) return ms - 1;
  }
  return guess;
}

// ---------------------------------------------------------------- exports

// ------------------------------------------------------------------ users

const users = { rows: [], editing: null };

function clearUsers() {
  $("#users-table").replaceChildren();
  $("#users-summary").textContent = "";
}

async function loadUsers(current) {
  const { body } = await api("/v1/users");
  if (!current()) return;
  users.rows = body.users;
  $("#users-summary").textContent = `${body.users.length} user${body.users.length === 1 ? "" : "s"}. Scripts and automation use the admin token instead.`;
  const me = session.me.user ? session.me.user.id : null;
  table($("#users-table"), [
    { label: "User", key: "name", get: (u) => [u.username, u.demo ? h("span", { class: "sub" }, "demo user") : ""] },
    { label: "Role", key: "role", get: (u) => u.role },
    { label: "Sites", key: "sites", wrap: true, get: (u) => (u.sites ? u.sites.join(", ") : "every site") },
    { label: "Added", key: "added", get: (u) => fmtTime(u.created_at_ms, { short: true }) },
    { label: "Actions", key: "actions", get: (u) => h("span", { class: "actions" },
      h("button", { type: "button", class: "secondary edit-user", "data-user": u.username, onclick: () => editUser(u) }, `Change ${u.username}`),
      u.id === me ? "" : h("button", { type: "button", class: "secondary remove-user", "data-user": u.username, onclick: () => removeUser(u) }, `Remove ${u.username}`)) },
  ], body.users, { caption: "Dashboard users" });
  editUser(users.editing ? body.users.find((u) => u.id === users.editing.id) || null : null);
}

/** Fills the form to change `u`, or empties it to add a user. */
function editUser(u) {
  users.editing = u;
  const f = $("#user-form");
  $("#user-form-title").textContent = u ? `Change ${u.username}` : "Add a user";
  f.elements.username.value = u ? u.username : "";
  f.elements.username.readOnly = Boolean(u);
  f.elements.role.value = u ? u.role : "manager";
  f.elements.sites.value = u && u.sites ? u.sites.join(", ") : "";
  f.elements.password.value = "";
  f.elements.password.required = !u;
  f.elements.password.placeholder = u ? "leave empty to keep it" : "";
  f.querySelector("button[type=submit]").textContent = u ? "Save changes" : "Add user";
  $("#user-form-cancel").hidden = !u;
}

async function saveUser(ev) {
  ev.preventDefault();
  const f = $("#user-form");
  const out = $("#user-result");
  out.replaceChildren();
  const sitesText = f.elements.sites.value.trim();
  const sites = sitesText ? sitesText.split(/[\s,]+/).filter(Boolean) : null;
  const body = { role: f.elements.role.value, sites: f.elements.role.value === "admin" ? null : sites };
  if (f.elements.password.value) body.password = f.elements.password.value;
  const editing = users.editing;
  if (!editing) body.username = f.elements.username.value.trim();
  await guard(async () => {
    try {
      const { body: u } = await api(editing ? `/v1/users/${editing.id}` : "/v1/users", {
        method: editing ? "PATCH" : "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      users.editing = null;
      await route();
      $("#user-result").replaceChildren(h("p", { class: "ok", role: "status" },
        editing ? `Saved ${u.username} (${u.role}); their sessions ended.` : `Added ${u.username} (${u.role}).`));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      out.append(h("p", { class: "error", role: "alert" }, e.message));
    }
  });
}

async function removeUser(u) {
  await guard(async () => {
    try {
      await api(`/v1/users/${u.id}`, { method: "DELETE" });
      await route();
      showStatus(`Removed ${u.username}.`);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showError(e.message);
    }
  });
}

const EXPORT_STATUSES = ["pending", "sent", "dead", "skipped"];

function clearExports() {
  $("#exports-table").replaceChildren();
  $("#exports-summary").textContent = "";
  $("#exports-counts").replaceChildren();
}

async function loadExports(current) {
  const form = $("#exports-filter");
  fillForm(form, ["status", "kind"]);
  const offset = Math.max(0, Number(params.offset) || 0);
  const filter = { site: params.site, status: params.status, kind: params.kind };
  const [{ body }, ...counts] = await Promise.all([
    api(`/v1/exports${query({ ...filter, limit: PAGE, offset })}`),
    ...EXPORT_STATUSES.map((s) => api(`/v1/exports${query({ ...filter, status: s, limit: 1 })}`)),
  ]);
  if (!current()) return;
  $("#exports-counts").replaceChildren(...EXPORT_STATUSES.map((s, i) => h("a", {
    class: `chip ${s}${params.status === s ? " active" : ""}`, href: hashOf("exports", { ...params, status: params.status === s ? null : s, offset: null }),
    "aria-current": params.status === s ? "true" : null,
  }, `${s[0].toUpperCase()}${s.slice(1)} `, h("b", {}, fmtCount(counts[i].body.total)))));
  const last = Math.min(offset + body.exports.length, body.total);
  $("#exports-summary").textContent = body.total ? `Exports ${offset + 1}–${last} of ${fmtCount(body.total)}, newest first.` : "No exports match.";
  $("#exports-prev").disabled = offset === 0;
  $("#exports-next").disabled = last >= body.total;
  table($("#exports-table"), [
    { label: "Export", key: "id", get: (x) => `#${x.id}` },
    { label: "To", key: "kind", get: (x) => (x.kind === "ga4" ? "GA4" : "CRM") },
    { label: "Call", key: "call", get: (x) => (x.call_id ? h("a", { href: hashOf("call", shared(), x.call_id) }, `#${x.call_id}`) : "") },
    { label: "Status", key: "status", get: (x) => badge(x.status, { sent: "ok", dead: "warn", pending: "medium", skipped: "none" }[x.status]) },
    { label: "Attempts", key: "attempts", num: true, get: (x) => fmtCount(x.attempts) },
    { label: "Created", key: "created", get: (x) => fmtTime(x.created_at_ms, { short: true }) },
    { label: "Sent / next attempt", key: "when", get: (x) => (x.status === "sent" ? fmtTime(x.sent_at_ms, { short: true }) : x.status === "pending" ? `next ${fmtTime(x.next_attempt_at_ms, { short: true })}` : "") },
    { label: "Last error", key: "error", wrap: true, get: (x) => x.last_error || "" },
    { label: "Action", key: "action", get: (x) => (x.status === "dead"
      ? h("button", { type: "button", class: "retry", "data-export": x.id, onclick: () => retryExport(x.id) }, `Retry #${x.id}`)
      : "") },
  ], body.exports, { caption: "Exports of ended calls" });
}

async function retryExport(id) {
  await guard(async () => {
    try {
      const { body } = await api(`/v1/exports/${id}/retry`, { method: "POST" });
      await route();
      showStatus(`Export #${body.id} is ${body.status} again; the worker sends it now.`);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      await route();
      showError(`Export #${id}: ${e.message}`);
    }
  });
}

function showStatus(message) { $("#status").textContent = message; }

// ----------------------------------------------------------------- wiring

function filterSubmit(formSel, view, keys) {
  const form = $(formSel);
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    const patch = { offset: null };
    for (const k of keys) patch[k] = form.elements[k].value.trim() || null;
    go(view, patch);
  };
  form.addEventListener("submit", apply);
  for (const el of form.querySelectorAll("select")) el.addEventListener("change", () => apply());
}

function init() {
  const fromUrl = new URLSearchParams(location.search).get("site");
  if (fromUrl) localStorage.setItem(SITE_KEY, fromUrl);
  $("#login-site").value = fromUrl || localStorage.getItem(SITE_KEY) || "demo";
  const periodSelect = $("#period").elements.period;
  periodSelect.replaceChildren(...PERIODS.map(([k, label]) => h("option", { value: k }, label)));
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", () => { signOut(); });
  $("#csv-excel").addEventListener("change", () => {
    $("#csv-export").href = `/v1/calls.csv${query({ ...callFilters(), excel: $("#csv-excel").checked ? 1 : null })}`;
  });
  $("#user-form").addEventListener("submit", saveUser);
  $("#user-form-cancel").addEventListener("click", () => editUser(null));
  $("#site-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const s = $("#site").value.trim();
    if (s) go(params.view === "call" ? "calls" : params.view, { site: s, offset: null, code: null });
  });
  $("#period").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = $("#period").elements;
    go(params.view === "call" ? "calls" : params.view, { period: "custom", from: f.from.value, to: f.to.value, offset: null });
  });
  periodSelect.addEventListener("change", () => {
    const name = periodSelect.value;
    const f = $("#period").elements;
    const view = params.view === "call" ? "calls" : params.view;
    if (name === "custom") go(view, { period: "custom", from: f.from.value, to: f.to.value, offset: null });
    else go(view, { period: name, from: null, to: null, offset: null });
  });
  filterSubmit("#calls-filter", "calls", CALL_FILTERS);
  $("#calls-filters-box summary").addEventListener("click", () => { $("#calls-filters-box").dataset.touched = "1"; });
  filterSubmit("#sources-filter", "sources", ["group_by", "metric", "tag"]);
  filterSubmit("#exports-filter", "exports", ["status", "kind"]);
  $("#calls-prev").addEventListener("click", () => go("calls", { offset: Math.max(0, (Number(params.offset) || 0) - PAGE) || null }));
  $("#calls-next").addEventListener("click", () => go("calls", { offset: (Number(params.offset) || 0) + PAGE }));
  $("#exports-prev").addEventListener("click", () => go("exports", { offset: Math.max(0, (Number(params.offset) || 0) - PAGE) || null }));
  $("#exports-next").addEventListener("click", () => go("exports", { offset: (Number(params.offset) || 0) + PAGE }));
  $("#csv-export").addEventListener("click", exportCsv);
  $("#promo-form").addEventListener("submit", lookupPromo);
  $("#promo-attach").addEventListener("submit", attachPromo);
  $("#cost-file").addEventListener("change", () => guard(readCostFile));
  $("#cost-form").addEventListener("submit", uploadCosts);
  $("#revenue-form").addEventListener("submit", postRevenue);
  window.addEventListener("hashchange", () => { showStatus(""); route(); });
  route().finally(() => { document.body.dataset.ready = "1"; });
}

init();
