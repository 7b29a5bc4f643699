/* The dashboard's two plotly.js charts and their text alternatives. */
(function () {
  "use strict";
  const fmt = window.ShopFormat;
  const TYPE_COLORS = {
    user_signup: "#3b5bdb",
    checkout_started: "#e67700",
    payment_succeeded: "#2b8a3e",
    esim_activated: "#9c36b5",
  };
  const CURRENCY_COLORS = ["#1c7ed6", "#0ca678", "#f08c00", "#c2255c", "#6741d9", "#5c940d"];
  const BASE_LAYOUT = {
    margin: { l: 64, r: 12, t: 12, b: 36 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#343a40" },
    bargap: 0.2,
    hoverlabel: { font: { size: 13 } },
  };
  const PLOT_CONFIG = { displayModeBar: false, responsive: true };

  function available() {
    return typeof window.Plotly !== "undefined";
  }

  function placeholder(element, text) {
    if (available()) window.Plotly.purge(element);
    element.replaceChildren();
    const p = document.createElement("p");
    p.className = "chart-empty";
    p.textContent = text;
    element.append(p);
  }

  function dateAxis(showLabels, series, element) {
    const ticks = window.ShopRangeCheck.dayTicks(series.start_date, series.buckets.length, element.clientWidth || 600);
    return { type: "date", fixedrange: true, showticklabels: showLabels, tickformat: "%b %d", gridcolor: "#f1f3f5", ...ticks };
  }

  function currenciesOf(series) {
    return [...new Set(series.buckets.flatMap((b) => Object.keys(b.revenue)))].sort();
  }

  function revenueHeight(series) {
    return 70 + 180 * currenciesOf(series).length;
  }

  /** Revenue bars, one panel per currency: amounts in different currencies are never added or stacked. */
  function revenue(element, summary, series, labelOf) {
    const currencies = currenciesOf(series);
    const period = `${fmt.day(series.start_date)} to ${fmt.day(series.end_date)}`;
    if (currencies.length === 0) {
      placeholder(element, "No revenue in this range.");
      summary.textContent = `No payments from ${period}.`;
      return;
    }
    const dates = series.buckets.map((b) => b.date);
    const traces = [];
    const layout = {
      ...BASE_LAYOUT,
      height: revenueHeight(series),
      showlegend: false,
      grid: { rows: currencies.length, columns: 1, pattern: "coupled", roworder: "top to bottom", ygap: 0.25 },
      xaxis: dateAxis(true, series, element),
    };
    const sentences = [];
    currencies.forEach((currency, index) => {
      const minor = series.buckets.map((b) => b.revenue[currency] || 0);
      const axis = index === 0 ? "y" : `y${index + 1}`;
      traces.push({
        type: "bar",
        name: currency,
        x: dates,
        y: minor.map((m) => fmt.major(m, currency)),
        customdata: minor.map((m) => fmt.money(m, currency)),
        hovertemplate: "%{x|%d %b %Y}: %{customdata}<extra>" + currency + "</extra>",
        marker: { color: CURRENCY_COLORS[index % CURRENCY_COLORS.length] },
        yaxis: axis,
      });
      const digits = fmt.decimals(currency);
      layout[index === 0 ? "yaxis" : `yaxis${index + 1}`] = {
        title: { text: currency },
        rangemode: "tozero",
        fixedrange: true,
        tickformat: digits ? `,.${digits}f` : ",d",
        gridcolor: "#e9ecef",
        zeroline: true,
        zerolinecolor: "#ced4da",
      };
      const total = minor.reduce((a, b) => a + b, 0);
      const best = minor.indexOf(Math.max(...minor));
      sentences.push(`${currency}: ${fmt.money(total, currency)} in total, highest ${fmt.money(minor[best], currency)} on ${fmt.day(dates[best])}`);
    });
    summary.textContent = `Bar chart of revenue per day from ${period}, one panel per currency. ${sentences.join("; ")}.`;
    draw(element, traces, layout);
  }

  /** Grouped bars of the chosen event types per day. */
  function events(element, summary, series, labelOf) {
    const period = `${fmt.day(series.start_date)} to ${fmt.day(series.end_date)}`;
    const dates = series.buckets.map((b) => b.date);
    const totals = series.event_types.map((type) => series.buckets.reduce((sum, b) => sum + b.counts[type], 0));
    if (totals.every((t) => t === 0)) {
      placeholder(element, "No events of the chosen types in this range.");
      summary.textContent = `No ${series.event_types.map(labelOf).join(", ").toLowerCase()} from ${period}.`;
      return;
    }
    // Grouped bars stay readable for about a month; longer ranges read better as lines.
    const asBars = dates.length <= 31;
    const traces = series.event_types.map((type) => ({
      type: asBars ? "bar" : "scatter",
      mode: asBars ? undefined : "lines",
      line: asBars ? undefined : { color: TYPE_COLORS[type], width: 2 },
      name: labelOf(type),
      meta: type,
      x: dates,
      y: series.buckets.map((b) => b.counts[type]),
      hovertemplate: "%{x|%d %b %Y}: %{y:,d}<extra>" + labelOf(type) + "</extra>",
      marker: { color: TYPE_COLORS[type] },
    }));
    const narrow = element.clientWidth < 520;
    const highest = Math.max(...series.buckets.flatMap((b) => series.event_types.map((type) => b.counts[type])));
    const layout = {
      ...BASE_LAYOUT,
      // As tall as the revenue chart beside it, so the two cards line up.
      // On a phone the legend wraps to a line per type: room for it above the bars.
      height: narrow ? 380 : Math.max(300, revenueHeight(series)),
      barmode: "group",
      showlegend: true,
      // Two legend entries per row on a phone instead of one per row.
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      margin: { ...BASE_LAYOUT.margin, t: 36 },
      xaxis: dateAxis(true, series, element),
      // Whole-number ticks: with small counts plotly would put ticks at halves and print each twice.
      yaxis: { rangemode: "tozero", fixedrange: true, tickformat: ",d", gridcolor: "#e9ecef", ...(highest <= 10 ? { dtick: 1 } : {}) },
    };
    const parts = series.event_types.map((type, i) => `${labelOf(type)}: ${fmt.count(totals[i])}`);
    summary.textContent = `${asBars ? "Bar" : "Line"} chart of events per day from ${period}. Totals: ${parts.join(", ")}.`;
    draw(element, traces, layout);
  }

  function draw(element, traces, layout) {
    if (!available()) {
      placeholder(element, "The chart could not be loaded; the table below has the same figures.");
      return;
    }
    if (element.querySelector(".chart-empty")) element.replaceChildren();
    window.Plotly.react(element, traces, layout, PLOT_CONFIG);
  }

  window.ShopCharts = { revenue, events, TYPE_COLORS };
})();
