/* The dashboard's plotly.js charts and their text alternatives. Buckets the range cuts
   (`partial`) are drawn lighter; the bucket holding today (`incomplete_day`) is hatched too. */
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
  const DAY_MS = 86400000;
  const CUT_OPACITY = 0.45;

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
    const interval = series.interval || "day";
    const first = series.buckets.length ? series.buckets[0].date : series.start_date;
    const ticks = window.ShopRangeCheck.bucketTicks(interval, first, series.buckets.length, element.clientWidth || 600);
    return { type: "date", fixedrange: true, showticklabels: showLabels, tickformat: "%b %d", gridcolor: "#f1f3f5", ...ticks };
  }

  /** Per bucket: whether the range cuts it, whether it holds today (still filling), and the words for its tooltip. */
  function bucketMarks(series) {
    const unit = series.interval || "day";
    const today = series.incomplete_day;
    return series.buckets.map((bucket, i) => {
      const next = series.buckets[i + 1];
      const holdsToday = Boolean(today) && bucket.date <= today && (!next || today < next.date);
      const partial = Boolean(bucket.partial);
      let note = "";
      if (holdsToday) note = unit === "day" ? "(today, incomplete)" : `(partial ${unit}, today incomplete)`;
      else if (partial) note = `(partial ${unit})`;
      return { partial, today: holdsToday, note };
    });
  }

  /** Bar styling for the marks: lighter for a cut bucket, hatched for today's. */
  function markedBars(color, marks) {
    return {
      color,
      opacity: marks.map((m) => (m.partial || m.today ? CUT_OPACITY : 1)),
      pattern: { shape: marks.map((m) => (m.today ? "/" : "")), fgcolor: color, size: 6, solidity: 0.3 },
    };
  }

  /** What tells the marks apart without hovering: "today, incomplete" above today's bucket; shading behind it and cut buckets on line charts. */
  function markLayout(series, marks, asLines, labelInside = false) {
    const unit = series.interval || "day";
    const annotations = [];
    const shapes = [];
    series.buckets.forEach((bucket, i) => {
      const mark = marks[i];
      if (mark.today) {
        annotations.push({
          // Inside the plot where a legend sits above it.
          x: bucket.date, y: 1, xref: "x", yref: "paper", yanchor: labelInside ? "top" : "bottom", showarrow: false,
          bgcolor: labelInside ? "rgba(255,255,255,0.85)" : undefined,
          // The last bucket's label would run off the chart's right edge when centred.
          xanchor: i === series.buckets.length - 1 && series.buckets.length > 1 ? "right" : "center",
          text: unit === "day" ? "today, incomplete" : `today, incomplete (partial ${unit})`,
          font: { size: 11, color: "#495057" },
        });
      }
      if (asLines && (mark.today || mark.partial)) {
        const next = series.buckets[i + 1];
        const start = Date.parse(bucket.date + "T00:00:00Z");
        const end = next ? Date.parse(next.date + "T00:00:00Z") : start + (unit === "day" ? DAY_MS : unit === "week" ? 7 * DAY_MS : 30 * DAY_MS);
        const half = unit === "day" ? DAY_MS / 2 : 0;
        shapes.push({
          type: "rect", xref: "x", yref: "paper", y0: 0, y1: 1, layer: "below", line: { width: 0 },
          x0: new Date(start - half).toISOString(), x1: new Date(end - half).toISOString(),
          fillcolor: mark.today ? "#ced4da" : "#e9ecef", opacity: 0.6,
        });
      }
    });
    return { annotations, shapes };
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
    const unit = series.interval || "day";
    const dates = series.buckets.map((b) => b.date);
    const marks = bucketMarks(series);
    const traces = [];
    const layout = {
      ...BASE_LAYOUT,
      height: revenueHeight(series),
      showlegend: false,
      grid: { rows: currencies.length, columns: 1, pattern: "coupled", roworder: "top to bottom", ygap: 0.25 },
      xaxis: dateAxis(true, series, element),
      margin: { ...BASE_LAYOUT.margin, t: series.incomplete_day ? 28 : BASE_LAYOUT.margin.t },
      ...markLayout(series, marks, false),
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
        customdata: minor.map((m, i) => [fmt.money(m, currency), marks[i].note]),
        hovertemplate: "%{x|%d %b %Y}: %{customdata[0]} %{customdata[1]}<extra>" + currency + "</extra>",
        marker: markedBars(CURRENCY_COLORS[index % CURRENCY_COLORS.length], marks),
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
      sentences.push(`${currency}: ${fmt.money(total, currency)} in total, highest ${fmt.money(minor[best], currency)} ${unit === "day" ? "on" : `in the ${unit} of`} ${fmt.day(dates[best])}`);
    });
    summary.textContent = `Bar chart of revenue per ${unit} from ${period}, one panel per currency. ${sentences.join("; ")}.${marksSentence(series, marks)}`;
    draw(element, traces, layout);
  }

  /** Grouped bars (lines for long ranges) of the chosen event types per bucket. */
  function events(element, summary, series, labelOf) {
    const period = `${fmt.day(series.start_date)} to ${fmt.day(series.end_date)}`;
    const unit = series.interval || "day";
    const dates = series.buckets.map((b) => b.date);
    const marks = bucketMarks(series);
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
      customdata: marks.map((m) => m.note),
      hovertemplate: "%{x|%d %b %Y}: %{y:,d} %{customdata}<extra>" + labelOf(type) + "</extra>",
      marker: asBars ? markedBars(TYPE_COLORS[type], marks) : { color: TYPE_COLORS[type] },
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
      ...markLayout(series, marks, !asBars, true),
      // Whole-number ticks: with small counts plotly would put ticks at halves and print each twice.
      yaxis: { rangemode: "tozero", fixedrange: true, tickformat: ",d", gridcolor: "#e9ecef", ...(highest <= 10 ? { dtick: 1 } : {}) },
    };
    const parts = series.event_types.map((type, i) => `${labelOf(type)}: ${fmt.count(totals[i])}`);
    summary.textContent = `${asBars ? "Bar" : "Line"} chart of events per ${unit} from ${period}. Totals: ${parts.join(", ")}.${marksSentence(series, marks)}`;
    draw(element, traces, layout);
  }

  /** The marks in words, for the text alternative. */
  function marksSentence(series, marks) {
    const unit = series.interval || "day";
    const cut = series.buckets.filter((b, i) => marks[i].partial && !marks[i].today).map((b) => fmt.day(b.date));
    const today = series.buckets.find((b, i) => marks[i].today);
    let text = "";
    if (today) text += unit === "day" ? ` ${fmt.day(today.date)} is today and not over yet.` : ` The ${unit} of ${fmt.day(today.date)} holds today, not over yet.`;
    if (cut.length) text += ` Partial ${unit}${cut.length === 1 ? "" : "s"} (cut by the range): ${cut.join(", ")}.`;
    return text;
  }

  /** A line chart over the buckets (the breakdown's), with the marks shaded. */
  function lines(element, series, traces, marks) {
    const highest = Math.max(0, ...traces.flatMap((t) => t.y));
    const layout = {
      ...BASE_LAYOUT,
      height: element.clientWidth < 520 ? 360 : 320,
      showlegend: true,
      legend: { orientation: "h", x: 0, y: -0.12, yanchor: "top" },
      margin: { ...BASE_LAYOUT.margin, t: 28, b: 24 },
      xaxis: dateAxis(true, series, element),
      // Whole-number ticks, one per count when the counts are small (as on the events chart).
      yaxis: { rangemode: "tozero", fixedrange: true, tickformat: ",d", gridcolor: "#e9ecef", ...(highest <= 10 ? { dtick: 1 } : {}) },
      ...markLayout(series, marks, true),
    };
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

  window.ShopCharts = { revenue, events, lines, placeholder, bucketMarks, TYPE_COLORS };
})();
