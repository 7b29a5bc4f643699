/* The analytics dashboard: page state in the URL, data from /admin/analytics/*. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const fmt = window.ShopFormat;
  const charts = window.ShopCharts;
  const ALL_TYPES = config.eventTypes.map((t) => t.value);
  const LABELS = Object.fromEntries(config.eventTypes.map((t) => [t.value, t.label]));
  const labelOf = (type) => LABELS[type] || type;
  // Which conversion ratio each count card shows, and what it is a share of.
  const CARD_RATIOS = {
    checkout_started: [["signup_to_checkout", "of signups"]],
    payment_succeeded: [["checkout_to_payment", "of checkout starts"]],
    esim_activated: [["payment_to_activation", "of payments"], ["signup_to_activation", "of signups overall"]],
  };
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
    if (!response.ok) throw new Error(errorText(response.status, body));
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
      showError(`Could not load the figures: ${error.message}`);
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
      renderProjection(projection);
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

  function showError(message) {
    $("error").hidden = !message;
    $("error-message").textContent = message || "";
    // Figures of another range must not stay on screen under an error for this one.
    $("csv-link").hidden = Boolean(message);
    if (message) {
      setStatus("", "");
      $("range-label").textContent = "";
      $("dashboard").dataset.state = "error";
    }
  }

  // ---- rendering --------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function render(overview, series) {
    state.rangeStart = overview.start_date;
    state.rangeEnd = overview.end_date;
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
    renderKpis(overview, days);
    charts.revenue($("revenue-chart"), $("revenue-summary"), series, labelOf);
    charts.events($("events-chart"), $("events-summary"), series, labelOf);
    renderTable(series);
    renderTopPlans(overview.top_plans);
    const csv = rangeParams();
    csv.set("start_date", overview.start_date);
    csv.set("end_date", overview.end_date);
    csv.set("format", "csv");
    $("csv-link").href = `/admin/analytics/timeseries?${csv}`;
  }

  function change(current, previous, days) {
    const against = `vs previous ${days} day${days === 1 ? "" : "s"}`;
    if (previous === 0) {
      return current === 0
        ? { text: `No change ${against} (0)`, trend: "flat" }
        : { text: `New ${against} (0 before)`, trend: "up" };
    }
    const ratio = (current - previous) / previous;
    if (ratio === 0) return { text: `No change ${against}`, trend: "flat" };
    return { text: `${ratio > 0 ? "▲" : "▼"} ${fmt.signedPercent(ratio)} ${against}`, trend: ratio > 0 ? "up" : "down" };
  }

  function renderKpis(overview, days) {
    const cards = Object.entries(overview.counts).map(([type, count]) => {
      const before = overview.previous.counts[type];
      const delta = change(count, before, days);
      const ratios = (CARD_RATIOS[type] || []).map(([name, text]) =>
        el("p", { class: "kpi-sub", "data-ratio": name, "data-value": overview.conversion[name] }, `${fmt.percent(overview.conversion[name])} ${text}`),
      );
      return el(
        "article",
        { class: `card kpi kpi-${type}`, "data-kpi": type },
        el("h3", { class: "kpi-label" }, labelOf(type)),
        el("p", { class: "kpi-value", "data-value": count }, fmt.count(count)),
        el("p", { class: `kpi-change trend-${delta.trend}`, "data-previous": before, title: `${fmt.count(before)} in the previous period` }, delta.text),
        ...ratios,
        el("p", { class: "kpi-sub muted" }, `${fmt.count(overview.unique_users[type])} unique users${overview.unique_users_approximate ? " (approx.)" : ""}`),
      );
    });
    const currencies = [...new Set([...Object.keys(overview.revenue), ...Object.keys(overview.previous.revenue)])].sort();
    const rows = currencies.map((currency) => {
      const amount = overview.revenue[currency] || 0;
      const before = overview.previous.revenue[currency] || 0;
      const delta = change(amount, before, days);
      return el(
        "li",
        { "data-currency": currency },
        el("span", { class: "kpi-value", "data-value": amount }, fmt.money(amount, currency)),
        el("span", { class: `kpi-change trend-${delta.trend}`, "data-previous": before, title: `${fmt.money(before, currency)} in the previous period` }, delta.text),
      );
    });
    cards.push(
      el(
        "article",
        { class: "card kpi kpi-revenue", "data-kpi": "revenue" },
        el("h3", { class: "kpi-label" }, currencies.length > 1 ? "Revenue by currency" : "Revenue"),
        rows.length ? el("ul", { class: "money-list" }, ...rows) : el("p", { class: "kpi-value", "data-value": 0 }, "No revenue"),
        currencies.length > 1 ? el("p", { class: "kpi-sub muted" }, "Each currency on its own: not converted, not added up.") : null,
      ),
    );
    $("kpis").replaceChildren(...cards);
  }

  function renderTable(series) {
    const currencies = [...new Set(series.buckets.flatMap((b) => Object.keys(b.revenue)))].sort();
    const head = el("tr", {}, el("th", { scope: "col" }, "Date"),
      ...series.event_types.map((t) => el("th", { scope: "col", class: "num", "data-column": t }, labelOf(t))),
      ...currencies.map((c) => el("th", { scope: "col", class: "num", "data-column": `revenue_${c}` }, `Revenue ${c}`)));
    const totals = { counts: Object.fromEntries(series.event_types.map((t) => [t, 0])), revenue: {} };
    const rows = series.buckets.map((bucket) => {
      series.event_types.forEach((t) => { totals.counts[t] += bucket.counts[t]; });
      currencies.forEach((c) => { totals.revenue[c] = (totals.revenue[c] || 0) + (bucket.revenue[c] || 0); });
      const sameYear = series.start_date.slice(0, 4) === series.end_date.slice(0, 4);
      const label = sameYear ? fmt.shortDay(bucket.date) : fmt.day(bucket.date);
      return el("tr", { "data-date": bucket.date }, el("th", { scope: "row" }, el("time", { datetime: bucket.date }, label)),
        ...series.event_types.map((t) => el("td", { class: "num", "data-value": bucket.counts[t] }, fmt.count(bucket.counts[t]))),
        ...currencies.map((c) => el("td", { class: "num", "data-value": bucket.revenue[c] || 0 }, fmt.money(bucket.revenue[c] || 0, c))));
    });
    const foot = el("tr", {}, el("th", { scope: "row" }, "Total"),
      ...series.event_types.map((t) => el("td", { class: "num", "data-value": totals.counts[t] }, fmt.count(totals.counts[t]))),
      ...currencies.map((c) => el("td", { class: "num", "data-value": totals.revenue[c] }, fmt.money(totals.revenue[c], c))));
    const caption = `Events${currencies.length ? " and revenue" : ""} per UTC day, ${fmt.day(series.start_date)} to ${fmt.day(series.end_date)}`;
    // The caption scrolls with a wide table, so the visible copy sits outside the scroller.
    $("table-caption").textContent = caption;
    $("daily-table").replaceChildren(
      el("caption", { class: "visually-hidden" }, caption),
      el("thead", {}, head), el("tbody", {}, ...rows), el("tfoot", {}, foot));
  }

  function renderTopPlans(plans) {
    if (plans.length === 0) {
      $("top-plans").replaceChildren(el("p", { class: "empty", "data-state": "empty" }, "No payments in this range."));
      return;
    }
    const rows = plans.map((plan, index) => el("tr", { "data-plan-id": plan.plan_id, "data-currency": plan.currency },
      el("td", { class: "num rank" }, String(index + 1)),
      el("th", { scope: "row" }, plan.plan_name || `Plan #${plan.plan_id}`),
      el("td", { class: "num", "data-value": plan.revenue_minor_units }, fmt.money(plan.revenue_minor_units, plan.currency)),
      el("td", { class: "num", "data-value": plan.payments }, fmt.count(plan.payments))));
    $("top-plans").replaceChildren(el("div", { class: "table-scroll" }, el("table", { class: "data-table", id: "top-plans-table" },
      el("caption", { class: "visually-hidden" }, "Top plans by revenue; currencies are not converted"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "num" }, "#"), el("th", { scope: "col" }, "Plan"),
        el("th", { scope: "col", class: "num" }, "Revenue"), el("th", { scope: "col", class: "num" }, "Payments"))),
      el("tbody", {}, ...rows))));
  }

  function renderProjection(p) {
    const basis = `Moving average of the ${p.window_days} days before ${fmt.day(p.as_of)} (UTC), revenue in ${p.currency}.`;
    if (p.note) {
      $("projection-body").replaceChildren(el("div", { class: "empty", "data-state": "not-enough-data" },
        el("strong", {}, p.note),
        el("p", {}, `The shop's first event is later than the start of the ${p.window_days}-day window. Choose a shorter window.`)));
      return;
    }
    const growth = p.growth_rate === null
      ? el("dd", { "data-value": "" }, "—", el("span", { class: "hint" }, `no ${p.currency} revenue in the ${p.window_days} days before`))
      : el("dd", { "data-value": p.growth_rate, class: p.growth_rate >= 0 ? "trend-up" : "trend-down" }, fmt.signedPercent(p.growth_rate),
        el("span", { class: "hint" }, `vs the ${p.window_days} days before`));
    const horizon = `next ${p.horizon_days} day${p.horizon_days === 1 ? "" : "s"}`;
    $("projection-body").replaceChildren(
      el("dl", { class: "figures" },
        el("div", { "data-figure": "revenue" }, el("dt", {}, `Revenue, ${horizon}`),
          el("dd", { "data-value": p.projected_revenue_minor_units }, fmt.money(p.projected_revenue_minor_units, p.currency))),
        el("div", { "data-figure": "signups" }, el("dt", {}, `Signups, ${horizon}`),
          el("dd", { "data-value": p.projected_signups }, fmt.decimal(p.projected_signups))),
        el("div", { "data-figure": "growth" }, el("dt", {}, "Growth rate"), growth)),
      el("p", { class: "muted small" }, basis));
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
