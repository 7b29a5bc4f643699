/* The analytics dashboard: page state in the URL, data from /admin/analytics/*. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const fmt = window.ShopFormat;
  const charts = window.ShopCharts;
  const ALL_TYPES = config.eventTypes.map((t) => t.value);
  const panels = window.ShopPanels;
  const { el, labelOf } = panels;
  const $ = (id) => document.getElementById(id);

  class Redirecting extends Error {}

  let state = readState();
  let rangeSeq = 0;
  let projectionSeq = 0;
  let knownCurrencies = new Set([config.defaultCurrency]);

  // ---- state <-> URL ----------------------------------------------------------------
  function readState() {
    const params = new URLSearchParams(location.search);
    const asked = params.getAll("event_types").flatMap((v) => v.split(","));
    return {
      start: params.get("start_date") || "",
      end: params.get("end_date") || "",
      types: ALL_TYPES.filter((t) => asked.includes(t)), // empty: all types
      window: params.get("window_days") || String(config.defaultWindowDays),
      horizon: params.get("horizon_days") || String(config.defaultHorizonDays),
      currency: (params.get("currency") || config.defaultCurrency).toUpperCase(),
    };
  }

  function stateUrl() {
    const params = new URLSearchParams();
    if (state.start) params.set("start_date", state.start);
    if (state.end) params.set("end_date", state.end);
    state.types.forEach((t) => params.append("event_types", t));
    if (state.window !== String(config.defaultWindowDays)) params.set("window_days", state.window);
    if (state.horizon !== String(config.defaultHorizonDays)) params.set("horizon_days", state.horizon);
    if (state.currency !== config.defaultCurrency) params.set("currency", state.currency);
    const query = params.toString();
    return location.pathname + (query ? "?" + query : "");
  }

  function pushState() {
    const url = stateUrl();
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
  }

  function rangeParams() {
    const params = new URLSearchParams();
    if (state.start) params.set("start_date", state.start);
    if (state.end) params.set("end_date", state.end);
    state.types.forEach((t) => params.append("event_types", t));
    return params;
  }

  // ---- fetching ---------------------------------------------------------------------
  async function api(path, params) {
    const response = await fetch(`${path}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Redirecting();
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw Object.assign(new Error(errorText(response.status, body)), { status: response.status });
    return body;
  }

  function errorText(status, body) {
    const detail = body && body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((e) => `${(e.loc || []).slice(-1)[0]}: ${e.msg}`).join("; ");
    if (status === 403) return "Your account does not have access to analytics.";
    return `The server answered ${status}. Try again in a moment.`;
  }

  async function loadRange() {
    const seq = ++rangeSeq;
    syncControls();
    // A range that cannot be answered is said so here, with the fields named, and not sent.
    const wrong = window.ShopRangeCheck.problem(state.start, state.end, config.today);
    markFields(wrong);
    if (wrong) {
      setBusy(false);
      showRangeProblem(wrong);
      return;
    }
    setBusy(true);
    const params = rangeParams();
    try {
      const [overview, series] = await Promise.all([
        api("/admin/analytics/overview", params),
        api("/admin/analytics/timeseries", params),
      ]);
      if (seq !== rangeSeq) return;
      showError(null);
      render(overview, series);
    } catch (error) {
      if (seq !== rangeSeq || error instanceof Redirecting) return;
      // Asking again helps when the server or network failed, not when it refused the request (4xx).
      const retryable = !(error.status >= 400 && error.status < 500);
      showError(`Could not load the figures: ${error.message}`, retryable);
    } finally {
      if (seq === rangeSeq) setBusy(false);
    }
  }

  async function loadProjection() {
    const seq = ++projectionSeq;
    const body = $("projection-body");
    body.setAttribute("aria-busy", "true");
    const params = new URLSearchParams({ window_days: state.window, horizon_days: state.horizon, currency: state.currency });
    try {
      const projection = await api("/admin/analytics/projections", params);
      if (seq !== projectionSeq) return;
      panels.projection($("projection-body"), projection);
    } catch (error) {
      if (seq !== projectionSeq || error instanceof Redirecting) return;
      body.replaceChildren(el("p", { class: "alert alert-error", role: "alert", "data-state": "error" }, error.message));
    } finally {
      if (seq === projectionSeq) body.setAttribute("aria-busy", "false");
    }
  }

  // ---- states -----------------------------------------------------------------------
  function setBusy(busy) {
    $("dashboard").setAttribute("aria-busy", String(busy));
    if (busy) setStatus("Loading…", "loading");
  }

  function setStatus(text, kind) {
    $("status").textContent = text;
    $("status").dataset.kind = kind;
  }

  function markFields(wrong) {
    for (const id of ["start-date", "end-date"]) {
      const invalid = Boolean(wrong && wrong.fields.includes(id));
      $(id).setAttribute("aria-invalid", String(invalid));
      if (invalid) $(id).setAttribute("aria-describedby", wrong.kind === "invalid" ? "error-message" : "status");
      else $(id).removeAttribute("aria-describedby");
    }
  }

  function showRangeProblem(wrong) {
    if (wrong.kind === "invalid") {
      showError(wrong.text, false);
      return;
    }
    showError(null);
    $("csv-link").hidden = true;
    $("range-label").textContent = "";
    $("dashboard").dataset.state = wrong.kind;
    setStatus(wrong.text, "notice");
  }

  function showError(message, retryable = true) {
    $("error").hidden = !message;
    $("error-message").textContent = message || "";
    $("retry").hidden = !retryable;
    // Figures of another range must not stay on screen under an error for this one.
    $("csv-link").hidden = Boolean(message);
    if (message) {
      setStatus("", "");
      $("range-label").textContent = "";
      $("dashboard").dataset.state = "error";
    }
  }

  // ---- rendering --------------------------------------------------------------------

  function render(overview, series) {
    $("start-date").value = overview.start_date;
    $("end-date").value = overview.end_date;
    const days = fmt.daysBetween(overview.start_date, overview.end_date);
    const previous = overview.previous;
    $("range-label").textContent =
      `${fmt.day(overview.start_date)} – ${fmt.day(overview.end_date)} (UTC, ${days} day${days === 1 ? "" : "s"}), ` +
      `compared with ${fmt.day(previous.start_date)} – ${fmt.day(previous.end_date)}`;
    const empty = Object.values(overview.counts).every((n) => n === 0) && Object.keys(overview.revenue).length === 0;
    $("dashboard").dataset.state = empty ? "empty" : "ready";
    setStatus(
      (overview.clamped ? "The range was shortened to its last 365 days. " : "") +
        (empty ? `No events from ${fmt.day(overview.start_date)} to ${fmt.day(overview.end_date)}. Try a longer range or other event types.` : ""),
      "notice",
    );
    for (const currency of [...Object.keys(overview.revenue), ...overview.top_plans.map((p) => p.currency)]) {
      knownCurrencies.add(currency);
    }
    fillCurrencySelect();
    panels.kpis($("kpis"), overview, days);
    charts.revenue($("revenue-chart"), $("revenue-summary"), series, labelOf);
    charts.events($("events-chart"), $("events-summary"), series, labelOf);
    panels.dailyTable($("daily-table"), $("table-caption"), series);
    panels.topPlans($("top-plans"), overview.top_plans);
    const csv = rangeParams();
    csv.set("start_date", overview.start_date);
    csv.set("end_date", overview.end_date);
    csv.set("format", "csv");
    $("csv-link").href = `/admin/analytics/timeseries?${csv}`;
  }


  // ---- controls ---------------------------------------------------------------------
  function selectedTypes() {
    return state.types.length ? state.types : ALL_TYPES;
  }

  function ensureOption(select, value, label) {
    if (![...select.options].some((o) => o.value === value)) select.append(el("option", { value }, label));
    select.value = value;
  }

  function fillCurrencySelect() {
    knownCurrencies.add(state.currency);
    const select = $("projection-currency");
    const wanted = [...knownCurrencies].sort();
    if ([...select.options].map((o) => o.value).join() !== wanted.join()) {
      select.replaceChildren(...wanted.map((c) => el("option", { value: c }, c)));
    }
    select.value = state.currency;
  }

  function syncControls() {
    const today = config.today;
    for (const button of document.querySelectorAll(".quick-range")) {
      const days = Number(button.dataset.days);
      const matches = state.start || state.end
        ? state.end === today && state.start === fmt.addDays(today, 1 - days)
        : days === config.defaultRangeDays;
      button.setAttribute("aria-pressed", String(matches));
    }
    const chosen = selectedTypes();
    for (const chip of document.querySelectorAll(".chip")) {
      const on = chosen.includes(chip.dataset.type);
      chip.setAttribute("aria-pressed", String(on));
      // The last chip left on cannot be switched off: an empty filter would mean "all".
      chip.setAttribute("aria-disabled", String(on && chosen.length === 1));
    }
    // Without dates in the URL the API uses its default range, which ends today.
    $("start-date").value = state.start || (state.end ? "" : fmt.addDays(today, 1 - config.defaultRangeDays));
    $("end-date").value = state.end || (state.start ? "" : today);
    ensureOption($("window-days"), state.window, `${state.window} days`);
    ensureOption($("horizon-days"), state.horizon, `${state.horizon} days`);
    fillCurrencySelect();
  }

  $("range-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.start = $("start-date").value;
    state.end = $("end-date").value;
    pushState();
    loadRange();
  });

  for (const button of document.querySelectorAll(".quick-range")) {
    button.addEventListener("click", () => {
      state.end = config.today;
      state.start = fmt.addDays(config.today, 1 - Number(button.dataset.days));
      pushState();
      loadRange();
    });
  }

  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => {
      const type = chip.dataset.type;
      const chosen = selectedTypes();
      if (chosen.includes(type) && chosen.length === 1) return;
      const next = chosen.includes(type) ? chosen.filter((t) => t !== type) : [...chosen, type];
      state.types = next.length === ALL_TYPES.length ? [] : ALL_TYPES.filter((t) => next.includes(t));
      pushState();
      loadRange();
    });
  }

  for (const [id, key] of [["window-days", "window"], ["horizon-days", "horizon"], ["projection-currency", "currency"]]) {
    $(id).addEventListener("change", () => {
      state[key] = $(id).value;
      pushState();
      loadProjection();
    });
  }

  $("retry").addEventListener("click", () => loadRange());

  window.addEventListener("popstate", () => {
    state = readState();
    loadRange();
    loadProjection();
  });

  loadRange();
  loadProjection();
})();
