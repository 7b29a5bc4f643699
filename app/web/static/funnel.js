/* The ordered funnel and the retention heatmap: state in the URL (funnel_*, retention_*; they
   follow the page's tz, exclude_internal and breakdown, see view.js), data from
   /admin/analytics/funnel and /admin/analytics/retention. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const fmt = window.ShopFormat;
  const $ = (id) => document.getElementById(id);
  const STEP_LABELS = {
    user_signup: "Signed up", verified: "Verified code", checkout_started: "Started checkout",
    payment_succeeded: "Paid", esim_activated: "Activated eSIM",
  };
  const COLORS = { reached: "#1f5fbf", in_progress: "#74c0fc", dropped: "#e9ecef", dropped_line: "#adb5bd" };
  const SERIES_COLORS = ["#1f5fbf", "#e67700", "#2b8a3e", "#9c36b5", "#c2255c", "#0ca678", "#6741d9", "#f08c00", "#5c940d", "#1c7ed6", "#868e96"];
  const PLOT_CONFIG = { displayModeBar: false, responsive: true };
  const LAYOUT = {
    margin: { l: 56, r: 12, t: 12, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#343a40" },
    hoverlabel: { font: { size: 13 } },
  };
  // funnel_breakdown "" follows the page's breakdown; "none" turns it off for the funnel alone.
  const DEFAULTS = { by: "user", window: "14", breakdown: "", verified: false, interval: "week" };
  let funnelSeq = 0;
  let retentionSeq = 0;
  let state = readState();

  // ---- state <-> URL (other panels' parameters are kept as they are) -------------------
  function readState() {
    const p = new URLSearchParams(location.search);
    const view = window.ShopView.read(p);
    return {
      start: p.get("start_date") || "",
      end: p.get("end_date") || "",
      tz: view.tz,
      exclude: view.exclude,
      pageBreakdown: view.breakdown,
      by: p.get("funnel_by") === "order" ? "order" : DEFAULTS.by,
      window: p.get("funnel_window") || DEFAULTS.window,
      breakdown: p.get("funnel_breakdown") || DEFAULTS.breakdown,
      verified: p.get("funnel_steps") === "verified",
      interval: p.get("retention_interval") === "month" ? "month" : DEFAULTS.interval,
    };
  }

  function pushState() {
    const p = new URLSearchParams(location.search);
    const set = (key, value, fallback) => (value === fallback ? p.delete(key) : p.set(key, value));
    set("funnel_by", state.by, DEFAULTS.by);
    set("funnel_window", state.window, DEFAULTS.window);
    set("funnel_breakdown", state.breakdown, DEFAULTS.breakdown);
    set("funnel_steps", state.verified ? "verified" : "", "");
    set("retention_interval", state.interval, DEFAULTS.interval);
    const query = p.toString();
    const url = location.pathname + (query ? "?" + query : "");
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
  }

  function commonParams() {
    const p = new URLSearchParams();
    if (state.start) p.set("start_date", state.start);
    if (state.end) p.set("end_date", state.end);
    if (state.tz) p.set("tz", state.tz);
    p.set("exclude_internal", String(state.exclude));
    return p;
  }

  async function api(path, params) {
    const response = await fetch(`${path}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.detail;
      throw new Error(Array.isArray(detail) ? detail.map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join("; ")
        : detail || `The server answered ${response.status}.`);
    }
    return body;
  }

  // ---- formatting ----------------------------------------------------------------------
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return `${Math.round(seconds)} s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
    if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} d`;
  }

  function cell(tag, text, attrs) {
    const node = document.createElement(tag);
    node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function row(cells, tag) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => tr.append(cell(i === 0 ? "th" : tag || "td", c, i === 0 ? { scope: "row" } : {})));
    return tr;
  }

  function table(element, head, rows) {
    const thead = document.createElement("thead");
    const tr = document.createElement("tr");
    head.forEach((h) => tr.append(cell("th", h, { scope: "col" })));
    thead.append(tr);
    const tbody = document.createElement("tbody");
    rows.forEach((r) => tbody.append(row(r)));
    element.replaceChildren(thead, tbody);
  }

  function draw(element, traces, layout) {
    if (typeof window.Plotly === "undefined") {
      element.replaceChildren(cell("p", "The chart could not be loaded; the table has the same figures.", { class: "chart-empty" }));
      return;
    }
    window.Plotly.react(element, traces, { ...LAYOUT, ...layout }, PLOT_CONFIG);
  }

  // ---- funnel --------------------------------------------------------------------------
  function renderFunnel(body) {
    const labels = body.steps.map((s) => STEP_LABELS[s] || s);
    const steps = body.funnel;
    const entrants = steps[0].count;
    const what = body.by === "order" ? "orders" : "people";
    $("funnel-label").textContent =
      `${fmt.count(entrants)} ${what} entered from ${fmt.day(body.start_date)} to ${fmt.day(body.end_date)} (${body.tz}); ` +
      `window ${body.window_days} day${body.window_days === 1 ? "" : "s"} from entry` +
      (body.exclude_internal ? "; internal users left out" : "");
    $("funnel-panel").dataset.state = entrants ? "ready" : "empty";
    if (!body.breakdowns) {
      const reached = steps.map((s) => s.count);
      draw($("funnel-chart"), [
        { type: "bar", name: "Reached", x: labels, y: reached, marker: { color: COLORS.reached },
          text: steps.map((s) => (s.conversion_from_start === null ? "" : fmt.percent(s.conversion_from_start))), textposition: "inside",
          hovertemplate: "%{x}: %{y} reached<extra></extra>" },
        { type: "bar", name: "Still in window", x: labels, y: steps.map((s) => s.in_progress), marker: { color: COLORS.in_progress },
          hovertemplate: "%{x}: %{y} still inside their window<extra></extra>" },
        { type: "bar", name: "Dropped", x: labels, y: steps.map((s) => s.dropped),
          marker: { color: COLORS.dropped, line: { color: COLORS.dropped_line, width: 1 } },
          hovertemplate: "%{x}: %{y} dropped (window closed)<extra></extra>" },
      ], { barmode: "stack", height: 300, legend: { orientation: "h", y: -0.15 }, yaxis: { fixedrange: true, rangemode: "tozero" }, xaxis: { fixedrange: true } });
      $("funnel-summary").textContent = "Stacked bars per step: reached, still inside the window, dropped. " +
        labels.map((l, i) => `${l}: ${fmt.count(steps[i].count)}`).join(", ") + ".";
      table($("funnel-table"), ["Step", "Reached", "From previous", "From start", "In window", "Dropped", "Median time", "p90 time"],
        steps.map((s, i) => [labels[i], fmt.count(s.count), fmt.percent(s.conversion_from_previous), fmt.percent(s.conversion_from_start),
          fmt.count(s.in_progress), fmt.count(s.dropped), duration(s.median_seconds), duration(s.p90_seconds)]));
      return;
    }
    const series = body.breakdowns;
    draw($("funnel-chart"), series.map((one, i) => ({
      type: "bar", name: `${one.value} (${fmt.count(one.entrants)})`, x: labels,
      y: one.steps.map((s) => s.conversion_from_start), marker: { color: SERIES_COLORS[i % SERIES_COLORS.length] },
      hovertemplate: `${one.value}<br>%{x}: %{y:.1%} of entrants<extra></extra>`,
    })), { barmode: "group", height: 320, legend: { orientation: "h", y: -0.2 }, yaxis: { tickformat: ".0%", range: [0, 1], fixedrange: true }, xaxis: { fixedrange: true } });
    $("funnel-summary").textContent = `Grouped bars: share of each ${body.breakdown.replace("_", " ")}'s entrants reaching each step. ` +
      series.map((one) => `${one.value}: ${fmt.count(one.entrants)} entrants`).join(", ") + ".";
    const head = ["Value", "Entrants", ...labels.slice(1).flatMap((l) => [l, "median"])];
    table($("funnel-table"), head, series.map((one) => [one.value, fmt.count(one.entrants),
      ...one.steps.slice(1).flatMap((s) => [`${fmt.count(s.count)} (${fmt.percent(s.conversion_from_start)})`, duration(s.median_seconds)])]));
  }

  /** The dashboard shows what is wrong with the range; these panels then ask nothing either. */
  function rangeProblem(panel, error) {
    const check = window.ShopRangeCheck;
    const today = window.ShopView.todayIn(state.tz || config.defaultTimezone);
    const problem = check ? check.problem(state.start, state.end, today) : null;
    if (!problem) return false;
    $(error).hidden = true;
    $(panel).dataset.state = problem.kind;
    $(panel).setAttribute("aria-busy", "false");
    return true;
  }

  async function loadFunnel() {
    const seq = ++funnelSeq;
    syncControls();
    if (rangeProblem("funnel-panel", "funnel-error")) return;
    const params = commonParams();
    params.set("by", state.by);
    params.set("window_days", state.window);
    const breakdown = state.breakdown === "none" ? "" : state.breakdown || state.pageBreakdown;
    if (breakdown) params.set("breakdown", breakdown);
    if (state.verified && state.by === "user") params.set("steps", "verified");
    $("funnel-panel").setAttribute("aria-busy", "true");
    try {
      const body = await api("/admin/analytics/funnel", params);
      if (seq !== funnelSeq) return;
      $("funnel-error").hidden = true;
      renderFunnel(body);
    } catch (error) {
      if (seq !== funnelSeq) return;
      $("funnel-error").hidden = false;
      $("funnel-error").textContent = `Could not load the funnel: ${error.message}`;
      $("funnel-panel").dataset.state = "error";
    } finally {
      if (seq === funnelSeq) $("funnel-panel").setAttribute("aria-busy", "false");
    }
  }

  // ---- retention -----------------------------------------------------------------------
  function renderRetention(body) {
    const cohorts = body.cohorts;
    const periods = Math.max(0, ...cohorts.map((c) => c.retained.length));
    const unit = body.interval === "week" ? "Week" : "Month";
    const x = Array.from({ length: periods }, (_, i) => `${unit} ${i + 1}`);
    const y = cohorts.map((c) => `${c.cohort_start} (${fmt.count(c.size)})`);
    const z = cohorts.map((c) => x.map((_, i) => (i < c.rates.length ? c.rates[i] : null)));
    const text = cohorts.map((c) => x.map((_, i) => (i < c.retained.length ? `${fmt.percent(c.rates[i])}<br>${c.retained[i]}` : "")));
    $("retention-panel").dataset.state = cohorts.some((c) => c.size) ? "ready" : "empty";
    if (periods === 0) {
      $("retention-chart").replaceChildren(cell("p", "Pick a range spanning more than one period to see repeat payments.", { class: "chart-empty" }));
    } else {
      draw($("retention-chart"), [{
        type: "heatmap", x, y, z, text, texttemplate: "%{text}", colorscale: [[0, "#f1f3f5"], [1, "#1f5fbf"]], zmin: 0,
        zmax: Math.max(0.05, ...z.flat().filter((v) => v !== null)),
        hovertemplate: "Cohort %{y}, %{x}: %{z:.1%}<extra></extra>", showscale: false, xgap: 2, ygap: 2,
      }], { height: Math.max(220, 60 + 28 * cohorts.length), margin: { l: 130, r: 12, t: 36, b: 12 },
        yaxis: { autorange: "reversed", fixedrange: true, type: "category" }, xaxis: { side: "top", fixedrange: true, type: "category" } });
    }
    $("retention-summary").textContent = `Cohorts by first payment (${body.interval}s, ${body.tz}); each cell: share of the cohort that paid again in that ${body.interval}. ` +
      cohorts.map((c) => `${c.cohort_start}: ${fmt.count(c.size)}`).join(", ") + ".";
  }

  async function loadRetention() {
    const seq = ++retentionSeq;
    if (rangeProblem("retention-panel", "retention-error")) return;
    const params = commonParams();
    params.set("interval", state.interval);
    $("retention-panel").setAttribute("aria-busy", "true");
    try {
      const body = await api("/admin/analytics/retention", params);
      if (seq !== retentionSeq) return;
      $("retention-error").hidden = true;
      renderRetention(body);
    } catch (error) {
      if (seq !== retentionSeq) return;
      $("retention-error").hidden = false;
      $("retention-error").textContent = `Could not load retention: ${error.message}`;
      $("retention-panel").dataset.state = "error";
    } finally {
      if (seq === retentionSeq) $("retention-panel").setAttribute("aria-busy", "false");
    }
  }

  // ---- controls ------------------------------------------------------------------------
  function syncControls() {
    $("funnel-by").value = state.by;
    if (![...$("funnel-window").options].some((o) => o.value === state.window)) {
      $("funnel-window").append(new Option(`${state.window} days`, state.window));
    }
    $("funnel-window").value = state.window;
    $("funnel-breakdown").value = state.breakdown;
    $("funnel-verified").checked = state.verified;
    $("funnel-verified").disabled = state.by === "order";
    $("retention-interval").value = state.interval;
  }

  const controls = [
    ["funnel-by", "by", "value"], ["funnel-window", "window", "value"], ["funnel-breakdown", "breakdown", "value"],
    ["funnel-verified", "verified", "checked"],
  ];
  for (const [id, key, prop] of controls) {
    $(id).addEventListener("change", () => {
      state[key] = $(id)[prop];
      pushState();
      loadFunnel();
    });
  }
  $("funnel-form").addEventListener("submit", (event) => event.preventDefault());
  $("retention-interval").addEventListener("change", () => {
    state.interval = $("retention-interval").value;
    pushState();
    loadRetention();
  });

  function reloadIfRangeChanged() {
    const next = readState();
    const changed = ["start", "end", "tz"].some((k) => next[k] !== state[k]) || next.exclude !== state.exclude;
    const mine = JSON.stringify(next) !== JSON.stringify(state);
    state = next;
    if (changed || mine) {
      loadFunnel();
      loadRetention();
    }
  }
  window.addEventListener("popstate", reloadIfRangeChanged);
  window.addEventListener("shop:statechange", reloadIfRangeChanged);

  loadFunnel();
  loadRetention();
})();
