// Ringsource dashboard: a small ES module over the collector's admin API.
// The admin token lives in sessionStorage (this tab only); every API call
// sends it as `Authorization: Bearer`, and a 401 returns to the sign-in form.
// All text from the API is written with textContent (visitor URLs and UTM
// values are untrusted), never as HTML.

const TOKEN_KEY = "ringsource.dashboard.token";
const SITE_KEY = "ringsource.dashboard.site";
const PAGE = 50;
const COLORS = ["#2f6fdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#5c940d", "#862e9c"];

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

function token() { return sessionStorage.getItem(TOKEN_KEY); }
function site() { return ($("#site").value || "").trim(); }

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
  const resp = await fetch(path, { ...options, headers });
  if (resp.status === 401) throw new Unauthorized("The collector refused the admin token.");
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!resp.ok) {
    const msg = body && body.error ? `${body.error.message} (${body.error.code})` : `HTTP ${resp.status}`;
    throw new Error(msg);
  }
  return { body, resp };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Runs an async view action; 401 goes back to sign-in, other errors show on the page. */
async function guard(fn) {
  $("#error").textContent = "";
  try {
    await fn();
  } catch (e) {
    if (e instanceof Unauthorized) {
      signOut(`${e.message} Sign in again with the current admin token.`);
    } else {
      $("#error").textContent = e.message || String(e);
      console.error(e);
    }
  }
}

// ------------------------------------------------------------ formatting

const pad = (n) => String(n).padStart(2, "0");

// Times are shown on the site's clock, whatever the browser's: the API says
// which zone with every answer the dashboard reads times from (its reports
// cut days at that zone's midnight).
let zone = "UTC";
const formatters = new Map();
function setZone(name) {
  if (typeof name !== "string" || !name) return;
  zone = name;
  const label = $("#zone");
  if (label) label.textContent = `Times in ${zone}`;
}
/** Year, month, day, hour, minute, second of `ms` on the site's clock, as strings. */
function clockParts(ms) {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
    formatters.set(zone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return parts;
}
function fmtTime(ms) {
  if (ms === null || ms === undefined) return "—";
  const p = clockParts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}
/** The site's calendar day of `ms`, `YYYY-MM-DD`. */
function localDay(ms) { return fmtTime(ms).slice(0, 10); }
/** The calendar day after `day` (`YYYY-MM-DD`). */
function nextDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}
function fmtNum(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  const r = Math.round(v * 100) / 100;
  return Number.isInteger(r) && digits === 0 ? String(r) : r.toFixed(digits || 2);
}
function fmtPct(v) { return v === null || v === undefined || !Number.isFinite(v) ? "—" : `${Math.round(v * 100)}%`; }
function fmtSecs(s) { return s === null || s === undefined ? "—" : `${Math.floor(s / 60)}:${pad(s % 60)}`; }
const dash = (v) => (v === null || v === undefined || v === "" ? "—" : v);

function table(el, columns, rows, { onRow, footer, selected } = {}) {
  el.replaceChildren(
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null }, c.label)))),
    h("tbody", {}, rows.map((r, i) => h("tr", {
      class: [onRow ? "clickable" : "", selected && selected(r) ? "selected" : ""].join(" ").trim() || null,
      tabindex: onRow ? 0 : null,
      "data-id": r.id ?? null,
      onclick: onRow ? () => onRow(r, i) : null,
      onkeydown: onRow ? (e) => { if (e.key === "Enter") onRow(r, i); } : null,
    }, columns.map((c) => h("td", { class: [c.num ? "num" : "", c.wrap ? "wrap" : ""].join(" ").trim() || null }, c.get(r)))))),
    footer ? h("tfoot", {}, h("tr", {}, columns.map((c) => h("td", { class: c.num ? "num" : null }, footer(c))))) : "",
  );
}

function badge(text, kind) { return h("span", { class: `badge ${kind || text}` }, text); }

// --------------------------------------------------------------- charts

const charts = new Map();

/** A uPlot line chart over days or hours; `null` (and a note) when the library is missing. */
function lineChart(key, container, xs, series, opts = {}) {
  // `opts.clock`: the zone the x axis is read in (the site's by default).
  charts.get(key)?.destroy();
  charts.delete(key);
  container.replaceChildren();
  if (typeof window.uPlot !== "function") {
    container.append(h("p", { class: "muted" }, "The chart library is missing (run `cargo xtask bundle`); the table has the same figures."));
    return null;
  }
  if (xs.length === 0) {
    container.append(h("p", { class: "muted" }, "No data in this period."));
    return null;
  }
  const width = Math.max(320, Math.floor(container.getBoundingClientRect().width || 640));
  const chart = new window.uPlot({
    width,
    height: opts.height || 320,
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 2, dash: s.dash,
      points: { show: xs.length < 40 },
    }))],
    axes: [{}, { label: opts.yLabel || "", size: 50 }],
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), opts.clock || zone),
    scales: { x: { time: true }, y: opts.yRange ? { range: opts.yRange } : { range: (_u, _min, max) => [0, Math.max(1, max)] } },
  }, [xs, ...series.map((s) => s.values)], container);
  charts.set(key, chart);
  return chart;
}

// ---------------------------------------------------------------- views

const views = ["login", "calls", "sources", "pools", "promo"];
const state = { calls: { offset: 0, total: 0, rows: [], selected: null } };

function show(view) {
  for (const v of views) $(`#view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  const signedIn = view !== "login";
  $("#nav").hidden = !signedIn;
  $("#site-box").hidden = !signedIn;
  document.body.dataset.view = view;
}

function route() {
  if (!token()) { show("login"); return; }
  const [name, arg] = location.hash.replace(/^#/, "").split("/");
  switch (name) {
    case "sources": show("sources"); guard(loadSources); break;
    case "pools": show("pools"); guard(loadPools); break;
    case "promo": show("promo"); break;
    case "call": show("calls"); guard(async () => { if (!state.calls.rows.length) await loadCalls(); await openCall(Number(arg)); }); break;
    default: show("calls"); guard(loadCalls);
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("#login-error").textContent = message || "";
  show("login");
  $("#token").focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const t = $("#token").value.trim();
  const s = $("#login-site").value.trim() || site() || "demo";
  sessionStorage.setItem(TOKEN_KEY, t);
  localStorage.setItem(SITE_KEY, s);
  $("#site").value = s;
  try {
    await api(`/v1/calls${query({ site: s, limit: 1 })}`);
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#login-error").textContent = e instanceof Unauthorized
      ? "That admin token was refused (401). Check server.admin_token or RINGSOURCE_ADMIN_TOKEN."
      : `Signed-in check failed: ${e.message}`;
    return;
  }
  $("#token").value = "";
  $("#login-error").textContent = "";
  if (!location.hash || location.hash === "#login") location.hash = "#calls";
  route();
}

// ---------------------------------------------------------------- calls

function callFilters() {
  const f = Object.fromEntries(new FormData($("#calls-filter")));
  return { site: site(), ...f };
}

async function loadCalls() {
  const st = state.calls;
  const { body } = await api(`/v1/calls${query({ ...callFilters(), limit: PAGE, offset: st.offset })}`);
  setZone(body.time_zone);
  st.rows = body.calls;
  st.total = body.total;
  const last = Math.min(st.offset + body.calls.length, body.total);
  $("#calls-summary").textContent = body.total
    ? `Calls ${st.offset + 1}–${last} of ${body.total}, newest first.`
    : "No calls match these filters.";
  $("#calls-prev").disabled = st.offset === 0;
  $("#calls-next").disabled = last >= body.total;
  renderCalls();
}

function renderCalls() {
  const st = state.calls;
  table($("#calls-table"), [
    { label: "Rang", get: (c) => fmtTime(c.ring_at_ms).slice(5, 16) },
    { label: "Caller", get: (c) => [dash(c.caller), h("span", { class: "sub" }, c.caller_kind)] },
    { label: "Status", get: (c) => [c.status, h("span", { class: "sub" }, c.target ? "target" : c.missed ? "missed" : "")] },
    { label: "Talk", num: true, get: (c) => fmtSecs(c.talk_secs) },
    { label: "Channel / source", get: (c) => [c.channel, h("span", { class: "sub" }, c.source)] },
    { label: "Campaign", get: (c) => [dash(c.campaign), h("span", { class: "sub" }, c.term || "")] },
    { label: "Confidence", get: (c) => badge(c.confidence) },
  ], st.rows, {
    onRow: (c) => { location.hash = `#call/${c.id}`; },
    selected: (c) => c.id === st.selected,
  });
}

async function openCall(id) {
  if (!Number.isFinite(id)) return;
  state.calls.selected = id;
  renderCalls();
  const { body: c } = await api(`/v1/calls/${id}`);
  const a = c.attribution || {};
  const v = c.visitor;
  const box = $("#call-detail");
  box.replaceChildren(
    h("h2", {}, `Call #${c.id}`),
    h("dl", { class: "kv" },
      h("dt", {}, "Rang"), h("dd", {}, fmtTime(c.ring_at_ms)),
      h("dt", {}, "Caller"), h("dd", {}, `${dash(c.caller)} (${c.caller_kind})`),
      h("dt", {}, "Dialled"), h("dd", {}, `${c.dialled} (${c.number_kind}${c.pool_id ? ` pool ${c.pool_id}` : ""}${c.static_label ? `: ${c.static_label}` : ""})`),
      h("dt", {}, "Status"), h("dd", {}, `${c.status}${c.target ? ", target call" : ""}${c.missed ? ", missed" : ""}; talk ${fmtSecs(c.talk_secs)}`),
      h("dt", {}, "Source"), h("dd", {}, [c.channel, c.source, c.medium, c.campaign, c.term].filter(Boolean).join(" / ")),
      c.promo_code ? [h("dt", {}, "Promo code"), h("dd", {}, c.promo_code)] : "",
      c.recording_url ? [h("dt", {}, "Recording"), h("dd", {}, h("a", { href: c.recording_url, rel: "noreferrer", target: "_blank" }, "listen"))] : "",
    ),
    h("h3", {}, "Why this attribution"),
    h("p", { class: "attribution" }, badge(a.confidence || "none"), " ", a.reason || "", ` (model: ${a.model || c.model})`),
    a.candidates && a.candidates.length
      ? h("table", { class: "data candidates" },
        h("thead", {}, h("tr", {}, ["Session", "Relation", "Held from", "Held until", "Chosen"].map((t) => h("th", {}, t)))),
        h("tbody", {}, a.candidates.map((k) => h("tr", { class: k.chosen ? "selected" : null },
          h("td", {}, k.session_id.slice(0, 12)), h("td", {}, k.relation), h("td", {}, fmtTime(k.held_from_ms)),
          h("td", {}, fmtTime(k.held_until_ms)), h("td", {}, k.chosen ? "✓" : "")))))
      : h("p", { class: "muted" }, "No candidate sessions."),
    a.credits && a.credits.length > 1
      ? [h("h3", {}, "Credit"), h("ul", {}, a.credits.map((cr) => h("li", {}, `${fmtPct(cr.share)} → ${[cr.channel, cr.source, cr.campaign].filter(Boolean).join(" / ")}`)))]
      : "",
    h("h3", {}, "Visitor's path"),
    v ? visitorPath(v) : h("p", { class: "muted" }, "No website visit behind this call (static number or unattributed)."),
  );
}

function visitorPath(v) {
  return h("div", { class: "visitor-path" },
    h("dl", { class: "kv" },
      h("dt", {}, "Landing page"), h("dd", {}, dash(v.landing_page)),
      h("dt", {}, "Keyword"), h("dd", {}, dash(v.keyword)),
      h("dt", {}, "First seen"), h("dd", {}, fmtTime(v.first_seen_ms)),
      h("dt", {}, "Client id"), h("dd", {}, dash(v.client_id)),
    ),
    h("h3", {}, `Touches (${v.touches.length})`),
    h("ol", { class: "path touches" }, v.touches.map((t) => h("li", {},
      h("b", {}, `${t.channel} / ${t.source} / ${t.medium}`),
      t.campaign ? ` · campaign ${t.campaign}` : "", t.term ? ` · keyword "${t.term}"` : "",
      t.click_id ? ` · ${t.click_id_kind || "click id"}` : "",
      h("br"), h("span", { class: "muted" }, `${fmtTime(t.at_ms)} · landed on ${t.landing_path}`)))),
    h("h3", {}, `Pages (${v.page_views.length})`),
    h("ol", { class: "path pages" }, v.page_views.map((p) => h("li", {},
      h("span", { class: "muted" }, fmtTime(p.at_ms)), " ", p.title ? h("b", {}, p.title) : "", h("br"),
      h("span", { class: "url" }, p.url)))),
  );
}

async function exportCsv(ev) {
  ev.preventDefault();
  await guard(async () => {
    const { resp } = await fetch(`/v1/calls.csv${query(callFilters())}`, { headers: { Authorization: `Bearer ${token()}` } })
      .then(async (r) => {
        if (r.status === 401) throw new Unauthorized("The collector refused the admin token.");
        if (!r.ok) throw new Error(`CSV export failed: HTTP ${r.status}`);
        return { resp: r };
      });
    const url = URL.createObjectURL(await resp.blob());
    const a = h("a", { href: url, download: `calls-${site() || "all"}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
}

// -------------------------------------------------------------- sources

const MONEY = ["cost", "revenue"];

async function loadSources() {
  const f = Object.fromEntries(new FormData($("#sources-filter")));
  const { body } = await api(`/v1/reports/calls${query({ site: site(), from: f.from, to: f.to, group_by: f.group_by, interval: "day" })}`);
  setZone(body.time_zone);
  $("#sources-group").textContent = f.group_by;
  const rows = body.rows || [];
  const hasMoney = rows.some((r) => MONEY.some((k) => typeof r[k] === "number"));
  // Per group totals; cost per target call and ROI are recomputed from the
  // sums. Cost is null where the API cannot know it (per keyword).
  const blank = (group) => ({ group, calls: 0, target_calls: 0, missed_calls: 0, first_time_callers: 0, cost: null, revenue: null });
  const add = (g, r) => {
    for (const k of ["calls", "target_calls", "missed_calls", "first_time_callers"]) g[k] += Number(r[k]) || 0;
    for (const k of MONEY) if (typeof r[k] === "number") g[k] = (g[k] || 0) + r[k];
    return g;
  };
  const groups = new Map();
  for (const r of rows) groups.set(r.group, add(groups.get(r.group) || blank(r.group), r));
  const list = [...groups.values()].sort((a, b) => b.calls - a.calls || a.group.localeCompare(b.group));
  const cpt = (g) => (g.cost !== null && g.target_calls > 0 ? g.cost / g.target_calls : null);
  const roi = (g) => (g.cost > 0 ? ((g.revenue || 0) - g.cost) / g.cost : null);
  const total = list.reduce(add, blank("Total"));
  const columns = [
    { label: f.group_by, get: (g) => g.group, key: "group" },
    { label: "Calls", num: true, get: (g) => fmtNum(g.calls), key: "calls" },
    { label: "Target", num: true, get: (g) => fmtNum(g.target_calls), key: "target_calls" },
    { label: "Missed", num: true, get: (g) => fmtNum(g.missed_calls), key: "missed_calls" },
    { label: "First-time", num: true, get: (g) => fmtNum(g.first_time_callers), key: "first_time_callers" },
  ];
  if (hasMoney) {
    columns.push(
      { label: "Cost", num: true, get: (g) => fmtNum(g.cost, 2) },
      { label: "Revenue", num: true, get: (g) => fmtNum(g.revenue, 2) },
      { label: "Cost/target", num: true, get: (g) => fmtNum(cpt(g), 2) },
      { label: "ROI", num: true, get: (g) => fmtPct(roi(g)) },
    );
  }
  $("#view-sources .split").classList.toggle("wide-table", hasMoney);
  // Cost and revenue can be charted too once the API reports them.
  const metricSelect = $("#sources-filter [name=metric]");
  for (const k of MONEY) {
    const opt = metricSelect.querySelector(`option[value=${k}]`);
    if (hasMoney && !opt) metricSelect.append(h("option", { value: k }, k));
    if (!hasMoney && opt) opt.remove();
  }
  table($("#sources-table"), columns, list, { footer: (c) => c.get(total) });
  $("#sources-note").textContent = `${body.model || ""} attribution; counts are sums of credit; days run midnight to midnight in ${zone}.` +
    (hasMoney ? " Cost per target call = cost ÷ target calls; ROI = (revenue − cost) ÷ cost; no cost per keyword." : "") +
    (body.demo_data ? " This site holds demo data (ringsource demo-data)." : "");

  // Chart: the chosen metric per day for the top groups.
  const metric = [...metricSelect.options].some((o) => o.value === f.metric) ? f.metric : "calls";
  // Every day of the period on the site's calendar (the report's days), so
  // quiet days show as zero. A day is plotted at its date's UTC midnight and
  // the axis read in UTC: the labels are the calendar days themselves.
  const days = [];
  const lastDay = localDay(body.to_ms - 1);
  for (let d = localDay(body.from_ms); d <= lastDay; d = nextDay(d)) days.push(d);
  const xs = days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
  const top = list.slice(0, COLORS.length);
  const series = top.map((g) => ({
    label: g.group,
    values: days.map((d) => { const r = rows.find((x) => x.day === d && x.group === g.group); return r ? Number(r[metric]) || 0 : 0; }),
  }));
  metricSelect.value = metric;
  $("#sources-chart-title").textContent = `${metricSelect.selectedOptions[0].textContent} per day`;
  lineChart("sources", $("#sources-chart"), xs, series, { yLabel: metric.replace(/_/g, " "), clock: "UTC" });
}

// ---------------------------------------------------------------- pools

async function loadPools() {
  const f = Object.fromEntries(new FormData($("#pools-filter")));
  const { body } = await api(`/v1/reports/pools${query({ site: site(), from: f.from, to: f.to })}`);
  setZone(body.time_zone);
  const box = $("#pools");
  box.replaceChildren();
  if (!body.pools.length) {
    box.append(h("p", { class: "muted" }, `Site ${body.site} has no number pools.`));
    return;
  }
  for (const p of body.pools) {
    const chartBox = h("div", { class: "chart", id: `pool-chart-${p.pool_id}` });
    const hoursTable = h("table", { class: "data hours" });
    const busy = p.hours.filter((r) => r.max_busy || r.new_sessions || r.exhaustions).reverse().slice(0, 48);
    const undersized = p.recommended_size > p.size;
    const z = p.sizing;
    const mins = (secs) => fmtNum(secs / 60, secs % 60 ? 1 : 0);
    box.append(h("section", { class: "pool card", "data-pool": p.pool_id },
      h("h2", {}, `Pool ${p.pool_id} `, p.warning ? badge("busy ≥ 75%", "warn") : badge("ok", "ok"),
        undersized ? [" ", badge(`needs ${p.recommended_size} numbers`, "warn")] : ""),
      h("div", { class: "stats" },
        h("span", {}, "Size ", h("b", {}, p.size)),
        h("span", {}, "Live now ", h("b", {}, `${p.live_now} (${fmtPct(p.utilisation_now)})`)),
        h("span", {}, "Peak live ", h("b", {}, `${p.peak_live} (${fmtPct(p.peak_utilisation)})`)),
        h("span", {}, "Peak busy ", h("b", {}, `${p.peak_busy} (${fmtPct(p.peak_busy_share)})`)),
        h("span", {}, "Peak new sessions/hour ", h("b", {}, p.peak_new_sessions_per_hour)),
        h("span", {}, "Recommended size ", h("b", { class: "recommended" }, p.recommended_size)),
        h("span", {}, "Exhaustions ", h("b", {}, p.exhaustion_count)),
        h("span", { class: "muted" }, `on exhaustion: ${p.on_exhaustion}`)),
      // The formula with this window's figures, so the recommendation can be
      // checked by hand.
      h("table", { class: "data sizing" },
        h("thead", {}, h("tr", {}, ["Peak new sessions/hour", "Mean renewed", "Hold", "Cooldown", "A session keeps a number", "Busy at peak", "Margin", "Recommended"].map((t) => h("th", { class: "num" }, t)))),
        h("tbody", {}, h("tr", {},
          h("td", { class: "num", "data-input": "peak" }, z.peak_new_sessions_per_hour),
          h("td", { class: "num", "data-input": "renewed", title: `mean over ${z.leases_measured} leases of this period` }, `${mins(z.mean_renewed_secs)} min`),
          h("td", { class: "num", "data-input": "hold" }, `${mins(z.hold_secs)} min`),
          h("td", { class: "num", "data-input": "cooldown" }, `${mins(z.cooldown_secs)} min`),
          h("td", { class: "num", "data-input": "occupancy" }, `${mins(z.occupancy_secs)} min`),
          h("td", { class: "num", "data-input": "busy" }, fmtNum(z.busy_at_peak, 2)),
          h("td", { class: "num", "data-input": "margin" }, `× ${z.margin}`),
          h("td", { class: "num", "data-input": "recommended" }, h("b", {}, z.recommended_size))))),
      h("p", { class: "muted formula" },
        `${z.peak_new_sessions_per_hour}/hour × (${mins(z.mean_renewed_secs)} renewed + ${mins(z.hold_secs)} hold + ${mins(z.cooldown_secs)} cooldown) min ÷ 60 × ${z.margin} = ${fmtNum(z.busy_at_peak * z.margin, 2)} → ${z.recommended_size} numbers. ` +
        "A visitor who stays renews the number; after the lease ends it cools down before anyone else gets it."),
      h("div", { class: "split even" },
        h("div", {}, h("h3", {}, "Utilisation per hour (most numbers live at once ÷ size)"), chartBox),
        h("div", {}, h("h3", {}, "Busiest recent hours"), h("div", { class: "scroll" }, hoursTable),
          p.exhaustions.length ? [h("h3", {}, "Latest exhaustions"), h("ul", {}, p.exhaustions.slice(-10).reverse().map((e) =>
            h("li", {}, `${fmtTime(e.at_ms)}: ${e.policy} → ${e.outcome}${e.number ? ` (${e.number})` : ""}`)))] : "")),
    ));
    table(hoursTable, [
      { label: "Hour", get: (r) => fmtTime(r.hour_ms).slice(0, 16) },
      { label: "Most live", num: true, get: (r) => r.max_live },
      { label: "Used", num: true, get: (r) => fmtPct(r.utilisation) },
      { label: "Busy (live + cooling)", num: true, get: (r) => r.max_busy },
      { label: "New sessions", num: true, get: (r) => r.new_sessions },
      { label: "Exhausted", num: true, get: (r) => r.exhaustions },
    ], busy);
    if (!busy.length) hoursTable.after(h("p", { class: "muted" }, "No leases in this period."));
    lineChart(`pool-${p.pool_id}`, chartBox, p.hours.map((r) => r.hour_ms / 1000), [
      { label: "utilisation %", values: p.hours.map((r) => Math.round(r.utilisation * 1000) / 10) },
      { label: "busy (live + cooling) %", values: p.hours.map((r) => Math.round((r.max_busy / p.size) * 1000) / 10), color: "#e8590c" },
      { label: "warning 75%", values: p.hours.map(() => body.warning_utilisation * 100), color: "#c92a2a", dash: [6, 4] },
    ], { yRange: [0, 100], yLabel: "%", height: 240 });
  }
}

// ---------------------------------------------------------------- promo

let promoCode = null;

async function lookupPromo(ev) {
  ev.preventDefault();
  await guard(async () => {
    const code = $("#promo-code").value.trim().toUpperCase();
    const out = $("#promo-result");
    out.replaceChildren();
    $("#promo-attach").hidden = true;
    let body;
    try {
      ({ body } = await api(`/v1/promo/${encodeURIComponent(code)}${query({ site: site() })}`));
      setZone(body.time_zone);
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
        h("dt", {}, "Reserved until"), h("dd", {}, `${fmtTime(body.reserved_until_ms)}${body.live ? "" : " (reissued since)"}`),
      ),
      h("h3", {}, "Visitor's path"),
      visitorPath(body.visitor),
    );
    $("#promo-attach").hidden = false;
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
      $("#promo-attach-result").replaceChildren(`Call #${body.id} now credits ${body.channel} / ${body.source} (${body.attribution.confidence}: ${body.attribution.reason}). `,
        h("a", { href: `#call/${body.id}` }, "Open the call"));
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      $("#promo-attach-result").replaceChildren(h("span", { class: "error" }, e.message));
    }
  });
}

// ----------------------------------------------------------------- wiring

function init() {
  const fromUrl = new URLSearchParams(location.search).get("site");
  $("#site").value = fromUrl || localStorage.getItem(SITE_KEY) || "demo";
  $("#login-site").value = $("#site").value;
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", () => signOut("Signed out."));
  $("#site").addEventListener("change", () => { localStorage.setItem(SITE_KEY, site()); state.calls.offset = 0; route(); });
  $("#calls-filter").addEventListener("submit", (e) => { e.preventDefault(); state.calls.offset = 0; guard(loadCalls); });
  $("#calls-prev").addEventListener("click", () => { state.calls.offset = Math.max(0, state.calls.offset - PAGE); guard(loadCalls); });
  $("#calls-next").addEventListener("click", () => { state.calls.offset += PAGE; guard(loadCalls); });
  $("#csv-export").addEventListener("click", exportCsv);
  $("#sources-filter").addEventListener("submit", (e) => { e.preventDefault(); guard(loadSources); });
  $("#pools-filter").addEventListener("submit", (e) => { e.preventDefault(); guard(loadPools); });
  $("#promo-form").addEventListener("submit", lookupPromo);
  $("#promo-attach").addEventListener("submit", attachPromo);
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

init();
