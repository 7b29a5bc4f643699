/* The breakdown panel: the overview's `breakdown.values` as a table, the timeseries' `series`
   as one line per value for one event type. */
(function () {
  "use strict";
  const fmt = window.ShopFormat;
  const charts = window.ShopCharts;
  const { el, labelOf } = window.ShopPanels;
  const NAMES = { plan: "plan", region: "region", currency: "currency", signup_week: "signup week", signup_month: "signup month" };
  const COLORS = ["#1f5fbf", "#e67700", "#2b8a3e", "#9c36b5", "#c2255c", "#0ca678", "#6741d9", "#f08c00", "#5c940d", "#1c7ed6", "#868e96"];

  function table(element, overview) {
    const types = Object.keys(overview.counts);
    const values = overview.breakdown.values;
    const currencies = [...new Set(values.flatMap((v) => Object.keys(v.revenue)))].sort();
    const head = el("tr", {}, el("th", { scope: "col" }, "Value"),
      ...types.map((t) => el("th", { scope: "col", class: "num", "data-column": t }, labelOf(t))),
      ...currencies.map((c) => el("th", { scope: "col", class: "num", "data-column": `revenue_${c}` }, `Revenue ${c}`)));
    const rows = values.map((v) => el("tr", { "data-value": v.value },
      el("th", { scope: "row" }, v.value),
      ...types.map((t) => el("td", { class: "num", "data-value": v.counts[t] || 0 }, fmt.count(v.counts[t] || 0))),
      ...currencies.map((c) => el("td", { class: "num", "data-value": v.revenue[c] || 0 }, fmt.money(v.revenue[c] || 0, c)))));
    // The values add up to the overall figures (the API's contract): the total row is the overview's own.
    const foot = el("tr", {}, el("th", { scope: "row" }, "All"),
      ...types.map((t) => el("td", { class: "num", "data-value": overview.counts[t] }, fmt.count(overview.counts[t]))),
      ...currencies.map((c) => el("td", { class: "num", "data-value": overview.revenue[c] || 0 }, fmt.money(overview.revenue[c] || 0, c))));
    element.replaceChildren(
      el("caption", { class: "visually-hidden" }, `Events and revenue by ${NAMES[overview.breakdown.by] || overview.breakdown.by}`),
      el("thead", {}, head), el("tbody", {}, ...rows), el("tfoot", {}, foot));
  }

  function chart(element, summary, series, type, by) {
    const unit = series.interval || "day";
    if (!series.series || series.series.length === 0) {
      charts.placeholder(element, "No values to chart.");
      summary.textContent = "";
      return;
    }
    const marks = charts.bucketMarks(series);
    const traces = series.series.map((one, i) => ({
      type: "scatter",
      mode: "lines+markers",
      name: one.value,
      meta: one.value,
      x: one.buckets.map((b) => b.date),
      y: one.buckets.map((b) => b.counts[type] || 0),
      customdata: marks.map((m) => m.note),
      hovertemplate: `%{x|%d %b %Y}: %{y:,d} %{customdata}<extra>${one.value}</extra>`,
      line: { color: COLORS[i % COLORS.length], width: 2 },
      marker: { color: COLORS[i % COLORS.length], size: 6, opacity: marks.map((m) => (m.partial || m.today ? 0.4 : 1)) },
    }));
    charts.lines(element, series, traces, marks);
    const totals = series.series.map((one) => `${one.value}: ${fmt.count(one.buckets.reduce((sum, b) => sum + (b.counts[type] || 0), 0))}`);
    summary.textContent = `Line chart of ${labelOf(type).toLowerCase()} per ${unit} by ${NAMES[by] || by}, one line per value. ` +
      `Totals: ${totals.join(", ")}.`;
  }

  /** The panel for a breakdown the page asked for; says so when the server's answer has none. */
  function render(parts, by, overview, series, type) {
    parts.heading.textContent = `By ${NAMES[by] || by}`;
    if (!overview.breakdown || !series.series) {
      charts.placeholder(parts.chart, `The server's answer has no breakdown by ${NAMES[by] || by}.`);
      parts.summary.textContent = "";
      parts.table.replaceChildren();
      return;
    }
    if (overview.breakdown.values.length === 0) {
      charts.placeholder(parts.chart, "No events of the chosen types to break down.");
      parts.summary.textContent = "";
      parts.table.replaceChildren();
      return;
    }
    chart(parts.chart, parts.summary, series, type, by);
    table(parts.table, overview);
  }

  window.ShopBreakdown = { render };
})();
