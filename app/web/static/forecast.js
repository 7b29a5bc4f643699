/* The projection panel: figures with their ranges, the method and its measured error in
   plain words, and a plotly chart of history, forecast and interval band per metric. */
(function () {
  "use strict";
  const fmt = window.ShopFormat;
  const el = (...args) => window.ShopPanels.el(...args);
  const METHOD_NAMES = {
    moving_average: "a moving average",
    seasonal_naive: "“same weekday last week” (seasonal naive)",
    ets: "exponential smoothing with a weekly pattern and a damped trend (ETS)",
  };
  const METRICS = [
    { key: "revenue", label: "Revenue", value: "revenue_minor_units" },
    { key: "signups", label: "Signups", value: "signups" },
    { key: "payments", label: "Payments", value: "payments" },
  ];
  const COLORS = { history: "#1c7ed6", forecast: "#e8590c", band: "rgba(232, 89, 12, 0.16)" };
  let shownMetric = "revenue";

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function amount(metric, value, currency) {
    return metric === "revenue" ? fmt.money(value, currency) : fmt.count(Math.round(value));
  }

  /** "typically off by 8 % per day" from the backtest's WAPE (total error over total actual). */
  function errorWords(score) {
    if (!score) return null;
    if (score.wape === null) return "the backtest days had no activity, so no relative error";
    return `typically off by ${Math.round(score.wape * 100)} % per day`;
  }

  function accuracy(p, metric) {
    const backtest = p.backtest[metric];
    const chosen = backtest.methods[backtest.chosen];
    const method = p.models[metric];
    const parts = [`Method: ${METHOD_NAMES[method]}${p.method === "auto" ? ", picked by the lowest backtest error" : ""}.`];
    if (!chosen) {
      parts.push("Too little history for a backtest yet: no measured error.");
      return parts.join(" ");
    }
    const made = backtest.origins.length;
    parts.push(`Backtest: ${plural(made, "forecast")} made in past weeks, ${plural(backtest.horizon_days, "day")} ahead each, were ${errorWords(chosen)}.`);
    if (chosen.mase !== null) {
      const versus = chosen.mase < 1 ? "better than" : chosen.mase > 1 ? "worse than" : "as good as";
      parts.push(`That is ${versus} “same weekday last week” (MASE ${chosen.mase.toFixed(2)}).`);
    }
    parts.push(`The actual fell inside the ${p.level} % band on ${Math.round(chosen.coverage * 100)} % of days.`);
    const average = backtest.methods.moving_average;
    if (method !== "moving_average" && average) {
      parts.push(`A ${p.window_days}-day moving average was ${errorWords(average)}.`);
    }
    return parts.join(" ");
  }

  function growthFigure(p) {
    const compares = p.growth_rate_compares;
    if (p.growth_rate === null) {
      const why = compares
        ? `no ${p.currency} revenue from ${fmt.day(compares.previous.start)} to ${fmt.day(compares.previous.end)}`
        : "no earlier days: the shop's data starts inside the history";
      return el("dd", { "data-value": "" }, "—", el("span", { class: "hint" }, why));
    }
    const previous = compares.previous;
    const span = previous.days === compares.current.days ? `the ${plural(previous.days, "day")} before` : `${fmt.day(previous.start)}–${fmt.day(previous.end)} (${plural(previous.days, "day")}, since the first event)`;
    return el("dd", { "data-value": p.growth_rate, class: p.growth_rate >= 0 ? "trend-up" : "trend-down" }, fmt.signedPercent(p.growth_rate),
      el("span", { class: "hint" }, `revenue per day, last ${plural(compares.current.days, "day")} vs ${span}`));
  }

  function figure(p, metric, label) {
    const total = p.totals[metric];
    return el("div", { "data-figure": metric },
      el("dt", {}, label),
      el("dd", { "data-value": total.value }, amount(metric, total.value, p.currency),
        el("span", { class: "hint", "data-lower": total.lower, "data-upper": total.upper },
          `${p.level} % range ${amount(metric, total.lower, p.currency)} – ${amount(metric, total.upper, p.currency)}`)));
  }

  function scale(metric, value, currency) {
    return metric.key === "revenue" ? fmt.major(value, currency) : value;
  }

  function chart(element, summary, p, metric) {
    const history = p.history.map((h) => scale(metric, h[metric.value], p.currency));
    const dates = p.forecast.map((f) => f.date);
    const point = p.forecast.map((f) => scale(metric, f[metric.value], p.currency));
    const lower = p.forecast.map((f) => scale(metric, f[`${metric.key}_lower`], p.currency));
    const upper = p.forecast.map((f) => scale(metric, f[`${metric.key}_upper`], p.currency));
    const unit = metric.key === "revenue" ? ` (${p.currency})` : "";
    const traces = [
      { type: "scatter", mode: "lines", name: `${p.level} % range`, meta: "lower", x: dates, y: lower, line: { width: 0 }, hoverinfo: "skip", showlegend: false },
      { type: "scatter", mode: "lines", name: `${p.level} % range`, meta: "band", x: dates, y: upper, fill: "tonexty", fillcolor: COLORS.band, line: { width: 0 }, hoverinfo: "skip" },
      { type: "scatter", mode: "lines+markers", name: "History", meta: "history", x: p.history.map((h) => h.date), y: history,
        line: { color: COLORS.history, width: 2 }, marker: { size: 4 }, hovertemplate: "%{x|%a %d %b}: %{y:,}<extra>History</extra>" },
      { type: "scatter", mode: "lines+markers", name: "Forecast", meta: "forecast", x: dates, y: point,
        line: { color: COLORS.forecast, width: 2, dash: "dash" }, marker: { size: 4 }, hovertemplate: "%{x|%a %d %b}: %{y:,.0f}<extra>Forecast</extra>" },
    ];
    const layout = {
      margin: { l: 56, r: 12, t: 28, b: 36 }, height: 260, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#343a40" },
      showlegend: true, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
      xaxis: { type: "date", fixedrange: true, tickformat: "%b %d", gridcolor: "#f1f3f5" },
      yaxis: { rangemode: "tozero", fixedrange: true, gridcolor: "#e9ecef", title: { text: metric.label + unit } },
      // The first forecast day: where the solid line ends and the dashed one begins.
      shapes: [{ type: "line", xref: "x", yref: "paper", x0: dates[0], x1: dates[0], y0: 0, y1: 1, line: { color: "#adb5bd", width: 1, dash: "dot" } }],
    };
    summary.textContent = `Line chart of ${metric.label.toLowerCase()} per day: ${plural(history.length, "day")} of history to ${fmt.day(p.last_complete_day)}, then the forecast from ${fmt.day(dates[0])} to ${fmt.day(dates[dates.length - 1])} with its ${p.level} % range as a shaded band.`;
    if (typeof window.Plotly === "undefined") {
      element.replaceChildren(el("p", { class: "chart-empty" }, "The chart could not be loaded."));
      return;
    }
    window.Plotly.react(element, traces, layout, { displayModeBar: false, responsive: true });
  }

  /** Fill the projection card from a /projections answer. */
  function projection(container, p) {
    if (p.note === "Not enough data") {
      container.replaceChildren(el("div", { class: "empty", "data-state": "not-enough-data" },
        el("strong", {}, p.note),
        el("p", {}, p.method === "moving_average"
          ? `The shop's first event is later than the start of the ${p.window_days}-day window. Choose a shorter window.`
          : "A forecast needs at least 14 complete days since the shop's first event.")));
      return;
    }
    const horizon = `next ${plural(p.horizon_days, "day")}`;
    // One metric at a time: a radio group (the event-type chips above are toggle buttons).
    const tabs = el("div", { class: "forecast-tabs", role: "radiogroup", "aria-label": "Metric to chart" },
      ...METRICS.map((m) => el("button", { type: "button", role: "radio", class: "forecast-tab", "data-metric": m.key, "aria-checked": String(m.key === shownMetric) }, m.label)));
    const plot = el("div", { id: "forecast-chart", class: "chart", role: "img", "aria-labelledby": "forecast-summary" });
    const summary = el("p", { id: "forecast-summary", class: "chart-summary" });
    const words = el("p", { class: "small", "data-accuracy": shownMetric }, accuracy(p, shownMetric));
    const basis = `Complete UTC days only: history ends ${fmt.day(p.last_complete_day)}; the models learn from ${plural(p.training.days, "day")} since ${fmt.day(p.training.start)}. The projection does not follow the date range above.`;
    container.replaceChildren(...[
      el("dl", { class: "figures" },
        figure(p, "revenue", `Revenue, ${horizon}`),
        figure(p, "signups", `Signups, ${horizon}`),
        figure(p, "payments", `Payments, ${horizon}`),
        el("div", { "data-figure": "growth" }, el("dt", {}, "Growth rate"), growthFigure(p))),
      tabs, plot, summary, words,
      p.note ? el("p", { class: "muted small", "data-state": "fallback" }, p.note) : null,
      el("p", { class: "muted small" }, basis)].filter((node) => node !== null));
    const show = (key) => {
      shownMetric = key;
      for (const button of tabs.querySelectorAll("button")) button.setAttribute("aria-checked", String(button.dataset.metric === key));
      words.dataset.accuracy = key;
      words.textContent = accuracy(p, key);
      chart(plot, summary, p, METRICS.find((m) => m.key === key));
    };
    tabs.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-metric]");
      if (button) show(button.dataset.metric);
    });
    show(shownMetric);
  }

  window.ShopForecast = { projection, errorWords };
})();
