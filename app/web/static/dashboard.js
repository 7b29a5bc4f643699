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
  const view = window.ShopView;

  class Redirecting extends Error {}
  const OWN_PARAMS = new Set([
    "start_date", "end_date", "event_types", "event_types[]", "window_days", "horizon_days", "currency",
    "tz", "interval", "breakdown", "exclude_internal", "breakdown_type",
  ]);
  const OTHER_ZONE = "other";

  let state = readState();
  let rangeSeq = 0;
  let projectionSeq = 0;
  let knownCurrencies = new Set([config.defaultCurrency]);
  let shown = null; // the answers on screen: [overview, timeseries]

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
      view: view.read(params),
      breakdownType: params.get("breakdown_type") || "",
    };
  }

  /** Today in the zone the figures are in. */
  function today() {
    return view.todayIn(view.zoneOf(state.view));
  }

  function stateUrl() {
    const params = new URLSearchParams();
    if (state.start) params.set("start_date", state.start);
    if (state.end) params.set("end_date", state.end);
    state.types.forEach((t) => params.append("event_types", t));
    if (state.window !== String(config.defaultWindowDays)) params.set("window_days", state.window);
    if (state.horizon !== String(config.defaultHorizonDays)) params.set("horizon_days", state.horizon);
    if (state.currency !== config.defaultCurrency) params.set("currency", state.currency);
    view.write(params, state.view);
    if (state.breakdownType) params.set("breakdown_type", state.breakdownType);
    // Other panels' parameters (funnel_*, retention_*, ...) stay as they are.
    for (const [key, value] of new URLSearchParams(location.search)) {
      if (!OWN_PARAMS.has(key)) params.append(key, value);
    }
    const query = params.toString();
    return location.pathname + (query ? "?" + query : "");
  }

  function pushState() {
    const url = stateUrl();
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    window.dispatchEvent(new Event("shop:statechange"));
  }

  function rangeParams() {
    const params = new URLSearchParams();
    if (state.start) params.set("start_date", state.start);
    if (state.end) params.set("end_date", state.end);
    state.types.forEach((t) => params.append("event_types", t));
    if (state.view.tz) params.set("tz", state.view.tz);
    params.set("exclude_internal", String(state.view.exclude));
    return params;
  }

  function overviewParams() {
    const params = rangeParams();
    if (state.view.breakdown) params.set("breakdown", state.view.breakdown);
    return params;
  }

  function timeseriesParams() {
    const params = overviewParams();
    if (state.view.interval !== view.DEFAULTS.interval) params.set("interval", state.view.interval);
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
    const wrong = window.ShopRangeCheck.problem(state.start, state.end, today());
    markFields(wrong);
    if (wrong) {
      setBusy(false);
      showRangeProblem(wrong);
      return;
    }
    setBusy(true);
    try {
      const [overview, series] = await Promise.all([
        api("/admin/analytics/overview", overviewParams()),
        api("/admin/analytics/timeseries", timeseriesParams()),
      ]);
      if (seq !== rangeSeq) return;
      showError(null);
      shown = [overview, series];
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
    const params = new URLSearchParams({ window_days: state.window, horizon_days: state.horizon, currency: state.currency, method: "auto" });
    if (state.view.tz) params.set("tz", state.view.tz);
    try {
      const projection = await api("/admin/analytics/projections", params);
      if (seq !== projectionSeq) return;
      window.ShopForecast.projection($("projection-body"), projection);
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
    // An answer without `tz` comes from an API that counts UTC days, whatever was asked.
    const zone = overview.tz || "UTC";
    $("range-label").textContent =
      `${fmt.day(overview.start_date)} – ${fmt.day(overview.end_date)} (${zone}, ${days} day${days === 1 ? "" : "s"}), ` +
      `compared with ${fmt.day(previous.start_date)} – ${fmt.day(previous.end_date)}` +
      (overview.exclude_internal ? "; internal users left out" : "");
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
    showIncompleteDay(overview, zone);
    const unit = series.interval || "day";
    $("revenue-heading").textContent = `Revenue per ${unit}`;
    $("events-heading").textContent = `Events per ${unit}`;
    $("table-heading").textContent = `${unit[0].toUpperCase()}${unit.slice(1)} by ${unit}`;
    charts.revenue($("revenue-chart"), $("revenue-summary"), series, labelOf);
    charts.events($("events-chart"), $("events-summary"), series, labelOf);
    panels.dailyTable($("daily-table"), $("table-caption"), series, zone);
    panels.topPlans($("top-plans"), overview.top_plans);
    renderBreakdown(overview, series);
    // The CSV has no breakdown columns: it gets the range, zone, users and interval.
    const csv = rangeParams();
    if (state.view.interval !== view.DEFAULTS.interval) csv.set("interval", state.view.interval);
    csv.set("start_date", overview.start_date);
    csv.set("end_date", overview.end_date);
    csv.set("format", "csv");
    $("csv-link").href = `/admin/analytics/timeseries?${csv}`;
  }


  /** Today's figures so far: said above the cards, with how the previous period was cut to match. */
  function showIncompleteDay(overview, zone) {
    const note = $("kpi-note");
    note.hidden = !overview.incomplete_day;
    if (!overview.incomplete_day) return;
    const cut = overview.previous.cut_at;
    const previous = overview.previous.compares === "same_elapsed_time" && cut
      ? `the previous period is cut at the same time (${view.timeIn(cut, zone)})`
      : "the previous period has whole days";
    note.dataset.incompleteDay = overview.incomplete_day;
    note.textContent = `Includes today (${fmt.day(overview.incomplete_day)}) so far; ${previous}.`;
  }

  function breakdownType(series) {
    const shown = series.event_types;
    if (shown.includes(state.breakdownType)) return state.breakdownType;
    return shown.includes("payment_succeeded") ? "payment_succeeded" : shown[0];
  }

  function renderBreakdown(overview, series) {
    const panel = $("breakdown-panel");
    panel.hidden = !state.view.breakdown;
    if (!state.view.breakdown) return;
    const type = breakdownType(series);
    const select = $("breakdown-type");
    select.replaceChildren(...series.event_types.map((t) => el("option", { value: t }, labelOf(t))));
    select.value = type;
    window.ShopBreakdown.render({
      heading: $("breakdown-heading"), chart: $("breakdown-chart"), summary: $("breakdown-summary"), table: $("breakdown-table"),
    }, state.view.breakdown, overview, series, type);
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

  /** [start, end] of a quick range: the last `days` days to today, or to yesterday for complete days only. */
  function quickRange(button) {
    const end = button.dataset.complete ? fmt.addDays(today(), -1) : today();
    return [fmt.addDays(end, 1 - Number(button.dataset.days)), end];
  }

  function syncViewControls() {
    const select = $("tz-select");
    if (!select.options.length) {
      select.append(...view.zoneChoices().map(([value, label]) => el("option", { value }, label)), el("option", { value: OTHER_ZONE }, "Other…"));
    }
    // A zone typed in (or from a shared link) that is not in the list is shown in the text field.
    const listed = [...select.options].some((o) => o.value === state.view.tz && o.value !== OTHER_ZONE);
    select.value = listed ? state.view.tz : OTHER_ZONE;
    $("tz-other-field").hidden = listed;
    $("tz-other").value = listed ? "" : state.view.tz;
    ensureOption($("interval"), state.view.interval, state.view.interval);
    ensureOption($("breakdown"), state.view.breakdown, state.view.breakdown);
    $("exclude-internal").checked = state.view.exclude;
  }

  function syncControls() {
    const localToday = today();
    for (const button of document.querySelectorAll(".quick-range")) {
      const [start, end] = quickRange(button);
      const matches = state.start || state.end
        ? state.start === start && state.end === end
        : !button.dataset.complete && Number(button.dataset.days) === config.defaultRangeDays;
      button.setAttribute("aria-pressed", String(matches));
    }
    syncViewControls();
    const chosen = selectedTypes();
    for (const chip of document.querySelectorAll(".chip")) {
      const on = chosen.includes(chip.dataset.type);
      chip.setAttribute("aria-pressed", String(on));
      // The last chip left on cannot be switched off: an empty filter would mean "all".
      chip.setAttribute("aria-disabled", String(on && chosen.length === 1));
    }
    // Without dates in the URL the API uses its default range, which ends today.
    $("start-date").value = state.start || (state.end ? "" : fmt.addDays(localToday, 1 - config.defaultRangeDays));
    $("end-date").value = state.end || (state.start ? "" : localToday);
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
      [state.start, state.end] = quickRange(button);
      pushState();
      loadRange();
    });
  }

  function setView(change) {
    const zoneBefore = state.view.tz;
    state.view = { ...state.view, ...change };
    pushState();
    loadRange();
    if (state.view.tz !== zoneBefore) loadProjection();
  }

  $("tz-select").addEventListener("change", () => {
    const chosen = $("tz-select").value;
    if (chosen === OTHER_ZONE) {
      $("tz-other-field").hidden = false;
      $("tz-other").focus();
      return;
    }
    $("tz-other").value = "";
    setView({ tz: chosen });
  });
  $("tz-other").addEventListener("change", () => {
    const typed = $("tz-other").value.trim();
    if (typed) setView({ tz: typed });
  });
  $("interval").addEventListener("change", () => setView({ interval: $("interval").value }));
  $("breakdown").addEventListener("change", () => setView({ breakdown: $("breakdown").value }));
  $("exclude-internal").addEventListener("change", () => setView({ exclude: $("exclude-internal").checked }));
  $("breakdown-type").addEventListener("change", () => {
    state.breakdownType = $("breakdown-type").value;
    pushState();
    if (shown) renderBreakdown(...shown);
  });

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
