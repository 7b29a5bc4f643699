/* The dashboard's panels built from API responses: KPI cards, tables and the projection. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const fmt = window.ShopFormat;
  const LABELS = Object.fromEntries(config.eventTypes.map((t) => [t.value, t.label]));
  const labelOf = (type) => LABELS[type] || type;
  // Which conversion each count card shows, and what it is a share of: `conversion` counts
  // people who signed up in the range, each step within 14 days (the ordered funnel).
  const CARD_RATIOS = {
    checkout_started: [["signup_to_checkout", "of new signups checked out"]],
    payment_succeeded: [["checkout_to_payment", "of those who checked out paid"]],
    esim_activated: [["payment_to_activation", "of payers activated"], ["signup_to_activation", "of new signups overall"]],
  };
  const RATIO_TITLE = "People who signed up in the range, each step within 14 days of the signup (ordered funnel)";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
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

  /** The KPI cards: counts with change and conversion, revenue per currency side by side. */
  function kpis(container, overview, days) {
    const cards = Object.entries(overview.counts).map(([type, count]) => {
      const before = overview.previous.counts[type];
      const delta = change(count, before, days);
      const ratios = (CARD_RATIOS[type] || []).map(([name, text]) =>
        el("p", { class: "kpi-sub", "data-ratio": name, "data-value": overview.conversion[name], title: RATIO_TITLE },
          `${fmt.percent(overview.conversion[name])} ${text}`),
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
    container.replaceChildren(...cards);
  }

  const monthFormat = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" });

  /** A bucket's row label: the day, "Week of <Monday>" or the month. */
  function bucketLabel(date, unit, sameYear) {
    if (unit === "month") return monthFormat.format(new Date(date + "T00:00:00Z"));
    const day = sameYear ? fmt.shortDay(date) : fmt.day(date);
    return unit === "week" ? `Week of ${day}` : day;
  }

  /** The bucket-by-bucket table: one row per local day, week or month, the raw numbers (as in the CSV) in data-value. */
  function dailyTable(table, captionCopy, series, zone) {
    const unit = series.interval || "day";
    const currencies = [...new Set(series.buckets.flatMap((b) => Object.keys(b.revenue)))].sort();
    const head = el("tr", {}, el("th", { scope: "col" }, "Date"),
      ...series.event_types.map((t) => el("th", { scope: "col", class: "num", "data-column": t }, labelOf(t))),
      ...currencies.map((c) => el("th", { scope: "col", class: "num", "data-column": `revenue_${c}` }, `Revenue ${c}`)));
    const totals = { counts: Object.fromEntries(series.event_types.map((t) => [t, 0])), revenue: {} };
    const rows = series.buckets.map((bucket, index) => {
      series.event_types.forEach((t) => { totals.counts[t] += bucket.counts[t]; });
      currencies.forEach((c) => { totals.revenue[c] = (totals.revenue[c] || 0) + (bucket.revenue[c] || 0); });
      const sameYear = series.start_date.slice(0, 4) === series.end_date.slice(0, 4);
      const next = series.buckets[index + 1];
      const today = Boolean(series.incomplete_day) && bucket.date <= series.incomplete_day && (!next || series.incomplete_day < next.date);
      const note = today ? (unit === "day" ? "today so far" : `partial ${unit}, today so far`) : bucket.partial ? `partial ${unit}` : "";
      return el("tr", { "data-date": bucket.date, "data-partial": bucket.partial || today ? "true" : null, class: note ? "row-partial" : null },
        el("th", { scope: "row" }, el("time", { datetime: bucket.date }, bucketLabel(bucket.date, unit, sameYear)),
          note ? el("span", { class: "row-note" }, ` (${note})`) : null),
        ...series.event_types.map((t) => el("td", { class: "num", "data-value": bucket.counts[t] }, fmt.count(bucket.counts[t]))),
        ...currencies.map((c) => el("td", { class: "num", "data-value": bucket.revenue[c] || 0 }, fmt.money(bucket.revenue[c] || 0, c))));
    });
    const foot = el("tr", {}, el("th", { scope: "row" }, "Total"),
      ...series.event_types.map((t) => el("td", { class: "num", "data-value": totals.counts[t] }, fmt.count(totals.counts[t]))),
      ...currencies.map((c) => el("td", { class: "num", "data-value": totals.revenue[c] }, fmt.money(totals.revenue[c], c))));
    const caption = `Events${currencies.length ? " and revenue" : ""} per ${unit} (${zone}), ${fmt.day(series.start_date)} to ${fmt.day(series.end_date)}`;
    // The caption scrolls with a wide table, so the visible copy sits outside the scroller.
    captionCopy.textContent = caption;
    table.replaceChildren(
      el("caption", { class: "visually-hidden" }, caption),
      el("thead", {}, head), el("tbody", {}, ...rows), el("tfoot", {}, foot));
  }

  function topPlans(container, plans) {
    if (plans.length === 0) {
      container.replaceChildren(el("p", { class: "empty", "data-state": "empty" }, "No payments in this range."));
      return;
    }
    const rows = plans.map((plan, index) => el("tr", { "data-plan-id": plan.plan_id, "data-currency": plan.currency },
      el("td", { class: "num rank" }, String(index + 1)),
      el("th", { scope: "row" }, plan.plan_name || `Plan #${plan.plan_id}`),
      el("td", { class: "num", "data-value": plan.revenue_minor_units }, fmt.money(plan.revenue_minor_units, plan.currency)),
      el("td", { class: "num", "data-value": plan.payments }, fmt.count(plan.payments))));
    container.replaceChildren(el("div", { class: "table-scroll" }, el("table", { class: "data-table", id: "top-plans-table" },
      el("caption", { class: "visually-hidden" }, "Top plans by revenue; currencies are not converted"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "num" }, "#"), el("th", { scope: "col" }, "Plan"),
        el("th", { scope: "col", class: "num" }, "Revenue"), el("th", { scope: "col", class: "num" }, "Payments"))),
      el("tbody", {}, ...rows))));
  }

  window.ShopPanels = { el, labelOf, kpis, dailyTable, topPlans };
})();
