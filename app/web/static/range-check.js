/* Checks of the chosen date range before anything is asked of the server, and date-axis
   ticks that fall on whole days (plotly would put 12-hour ticks on short ranges and
   print each day twice). */
(function () {
  "use strict";
  const fmt = window.ShopFormat;
  const DAY_MS = 86400000;

  /** What is wrong with a range, for the page to show: null when it can be asked for. */
  function problem(start, end, today) {
    if (start && end && start > end) {
      return {
        kind: "invalid",
        fields: ["start-date", "end-date"],
        text: `The start date (From, ${fmt.day(start)}) is after the end date (To, ${fmt.day(end)}). ` +
          "Choose a From date on or before the To date.",
      };
    }
    if (start && start > today) {
      return {
        kind: "future",
        fields: ["start-date"],
        text: `No data yet: the range starts on ${fmt.day(start)}, after today (${fmt.day(today)}), ` +
          "so there is nothing to show or compare. Choose a range that starts today or earlier.",
      };
    }
    return null;
  }

  /** Plotly x-axis settings with one tick per whole day, or every few days, for `days` days in `width` pixels. */
  function dayTicks(firstDay, days, width) {
    const fits = Math.max(2, Math.floor(width / 70));
    if (days > 62) return {}; // weeks and months: plotly's own ticks never repeat a day
    const step = Math.max(1, Math.ceil(days / fits));
    return { tickmode: "linear", tick0: firstDay, dtick: step * DAY_MS };
  }

  /** Ticks for buckets of a day, an ISO week (from Monday) or a calendar month, every few buckets when they do not fit. */
  function bucketTicks(interval, firstBucket, count, width) {
    if (interval === "day") return dayTicks(firstBucket, count, width);
    const step = Math.max(1, Math.ceil(count / Math.max(2, Math.floor(width / 70))));
    if (interval === "week") return { tickmode: "linear", tick0: firstBucket, dtick: 7 * step * DAY_MS };
    if (interval === "month") return { tickmode: "linear", tick0: firstBucket, dtick: `M${step}`, tickformat: "%b %Y" };
    return {};
  }

  window.ShopRangeCheck = { problem, dayTicks, bucketTicks };
})();
