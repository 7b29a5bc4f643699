/* Dashboard panels for finance and stock: revenue in the reporting currency (ECB rates) next to
   each original currency, refunds, net, failed payments, and eSIM stock per plan. They follow the
   dashboard's range: its URL holds start_date/end_date, and #range-label changes on every load. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const fmt = window.ShopFormat;
  const { el } = window.ShopPanels;
  const $ = (id) => document.getElementById(id);
  const target = config.reportingCurrency; // null: no ECB rates loaded for REPORTING_CURRENCY
  let seq = 0;

  async function getJson(path, params) {
    const response = await fetch(`${path}?${params || ""}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, body };
  }

  function rangeParams() {
    const url = new URLSearchParams(location.search);
    const params = new URLSearchParams();
    for (const name of ["start_date", "end_date"]) if (url.get(name)) params.set(name, url.get(name));
    // The same zone and users as the dashboard's figures beside these.
    const view = window.ShopView.read(url);
    if (view.tz) params.set("tz", view.tz);
    params.set("exclude_internal", String(view.exclude));
    return params;
  }

  function figure(label, value, id) {
    return el("div", { class: "finance-figure" }, el("span", { class: "muted small" }, label), el("strong", { id }, value));
  }

  function money(value, currency) {
    return value === null || value === undefined ? "—" : fmt.money(value, currency);
  }

  function renderFinance(overview) {
    const container = $("finance-body");
    const converted = overview.converted;
    const parts = [];
    if (converted) {
      const c = converted.currency;
      parts.push(el("div", { class: "finance-figures", id: "finance-converted" },
        figure(`Gross revenue (${c})`, money(converted.gross_revenue_minor_units, c), "finance-gross"),
        figure(`Refunds (${c})`, money(converted.refunds_minor_units, c), "finance-refunds"),
        figure(`Net revenue (${c})`, money(converted.net_revenue_minor_units, c), "finance-net"),
        figure("Average order value", money(converted.average_order_value_minor_units, c), "finance-aov"),
        figure("Revenue per paying user", money(converted.revenue_per_paying_user_minor_units, c), "finance-arppu"),
        figure("Failed payments", `${fmt.count(overview.payments_failed)} (${fmt.percent(overview.payment_failure_rate)} of attempts)`, "finance-failed")));
      const notes = [`Each day converted at that day's ECB reference rate (the last published one on weekends and holidays)` +
        (converted.rates_through ? `; rates through ${fmt.day(converted.rates_through)}.` : ".")];
      if (converted.oldest_rate_age_days > 4) {
        notes.push(`Some days use a rate ${converted.oldest_rate_age_days} days old: load newer rates with “python -m app fx-rates load FILE”.`);
      }
      const left = Object.entries(converted.unconverted);
      if (left.length) notes.push("Not converted (no rate): " + left.map(([cur, v]) => fmt.money(v, cur)).join(", ") + ".");
      parts.push(el("p", { class: "muted small", id: "finance-note" }, notes.join(" ")));
    } else {
      parts.push(el("p", { class: "muted small", id: "finance-note" },
        `No exchange rates for ${config.reportingCurrencySetting}: run “python -m app fx-rates load”. Amounts are shown per currency only.`));
    }
    const currencies = Object.keys(overview.revenue).sort();
    if (currencies.length === 0) {
      parts.push(el("p", { class: "empty", "data-state": "empty" }, "No payments in this range."));
    } else {
      const rows = currencies.map((cur) => el("tr", { "data-currency": cur },
        el("th", { scope: "row" }, cur),
        el("td", { class: "num" }, fmt.money(overview.revenue[cur], cur)),
        el("td", { class: "num" }, fmt.money(overview.refunds[cur] || 0, cur)),
        el("td", { class: "num" }, fmt.money(overview.net_revenue[cur], cur)),
        el("td", { class: "num" }, fmt.count(overview.payments_by_currency[cur] || 0)),
        el("td", { class: "num" }, money(overview.average_order_value[cur], cur))));
      parts.push(el("div", { class: "table-scroll" }, el("table", { class: "data-table", id: "finance-table" },
        el("caption", {}, "In each original currency"),
        el("thead", {}, el("tr", {}, ...["Currency", "Gross", "Refunds", "Net", "Payments", "Avg order"].map(
          (h, i) => el("th", { scope: "col", class: i ? "num" : null }, h)))),
        el("tbody", {}, ...rows))));
    }
    if (converted && overview.top_plans.length) {
      const rows = overview.top_plans.slice(0, 5).map((plan, index) => el("tr", { "data-plan-id": plan.plan_id },
        el("td", { class: "num" }, String(index + 1)),
        el("th", { scope: "row" }, plan.plan_name || `Plan #${plan.plan_id}`),
        el("td", { class: "num" }, money(plan.converted_revenue_minor_units, converted.currency)),
        el("td", { class: "num muted" }, fmt.money(plan.revenue_minor_units, plan.currency))));
      parts.push(el("div", { class: "table-scroll" }, el("table", { class: "data-table", id: "finance-top-plans" },
        el("caption", {}, `Top plans by revenue in ${converted.currency}`),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "num" }, "#"), el("th", { scope: "col" }, "Plan"),
          el("th", { scope: "col", class: "num" }, converted.currency), el("th", { scope: "col", class: "num" }, "Original"))),
        el("tbody", {}, ...rows))));
    }
    container.replaceChildren(...parts);
  }

  function renderStock(inventory) {
    const rows = inventory.plans.map((plan) => el("tr", { "data-plan-id": plan.plan_id, class: plan.low_stock ? "stock-low" : null },
      el("th", { scope: "row" }, plan.plan_name),
      el("td", { class: "num" }, fmt.count(plan.available_profiles)),
      el("td", { class: "num" }, fmt.decimal(plan.activations_per_day)),
      el("td", { class: "num" }, plan.days_of_stock_left === null ? "—" : fmt.decimal(plan.days_of_stock_left)),
      el("td", {}, plan.available_profiles === 0 ? "Sold out" : plan.low_stock ? "Low" : "")));
    const low = inventory.plans.filter((p) => p.low_stock).length;
    $("stock-body").replaceChildren(
      el("p", { class: "muted small", id: "stock-summary" },
        `${low} of ${inventory.plans.length} plans have under ${inventory.low_stock_days} days of stock at the last ` +
        `${inventory.window_days} days' activation rate.`),
      el("div", { class: "table-scroll table-tall" }, el("table", { class: "data-table", id: "stock-table" },
        el("thead", {}, el("tr", {}, ...["Plan", "Free profiles", "Activations / day", "Days left", ""].map(
          (h, i) => el("th", { scope: "col", class: i && i < 4 ? "num" : null }, h)))),
        el("tbody", {}, ...rows))));
  }

  async function loadFinance() {
    const mine = ++seq;
    const params = rangeParams();
    const start = params.get("start_date"), end = params.get("end_date");
    // The dashboard refuses these ranges itself and asks the server nothing: neither does this panel.
    const today = window.ShopView.todayIn(window.ShopView.read(new URLSearchParams(location.search)).tz || config.defaultTimezone);
    if ((start && end && start > end) || (start && start > today)) {
      $("finance-body").replaceChildren(el("p", { class: "muted" }, "No figures for this range."));
      return;
    }
    if (target) params.set("currency", target);
    const answer = await getJson("/admin/analytics/overview", params);
    if (mine !== seq) return;
    if (!answer.ok) {
      $("finance-body").replaceChildren(el("p", { class: "alert alert-error", role: "alert" }, "Could not load the finance figures."));
      return;
    }
    renderFinance(answer.body);
  }

  async function loadStock() {
    const answer = await getJson("/admin/inventory");
    if (answer.ok) renderStock(answer.body);
    else $("stock-body").replaceChildren(el("p", { class: "alert alert-error", role: "alert" }, "Could not load the stock."));
  }

  new MutationObserver(loadFinance).observe($("range-label"), { childList: true, characterData: true, subtree: true });
  loadFinance();
  loadStock();
})();
