/* The page-wide view settings every panel follows: time zone (`tz`), timeseries interval
   (`interval`), breakdown (`breakdown`) and leaving out internal users (`exclude_internal`).
   They live in the URL; a default is left out of it. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const DEFAULTS = { tz: "", interval: "day", breakdown: "", exclude: true };
  const COMMON_ZONES = [
    "UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles",
    "Asia/Tokyo", "Asia/Singapore", "Australia/Sydney",
  ];
  // The server's clock, moved on by the browser's: "today" is the same day the API takes it to be.
  const clockSkew = Date.parse(config.now) - Date.now();

  /** The view settings in a URL query (URLSearchParams). Unknown values are kept: the server says what is wrong with them. */
  function read(params) {
    return {
      tz: (params.get("tz") || "").trim(),
      interval: params.get("interval") || DEFAULTS.interval,
      breakdown: params.get("breakdown") || DEFAULTS.breakdown,
      exclude: params.get("exclude_internal") !== "false",
    };
  }

  /** Writes the view settings into a URL query, leaving the defaults out. */
  function write(params, view) {
    const set = (key, value, fallback) => (value === fallback ? params.delete(key) : params.set(key, value));
    set("tz", view.tz, DEFAULTS.tz);
    set("interval", view.interval, DEFAULTS.interval);
    set("breakdown", view.breakdown, DEFAULTS.breakdown);
    set("exclude_internal", view.exclude ? "true" : "false", "true");
    return params;
  }

  /** The zone the figures are in: the one asked for, else the shop's ANALYTICS_TIMEZONE. */
  function zoneOf(view) {
    return view.tz || config.defaultTimezone;
  }

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  /** Today's date (YYYY-MM-DD) in a zone; the UTC day the page was served on when the browser does not know the zone. */
  function todayIn(zone) {
    try {
      const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
        .formatToParts(new Date(Date.now() + clockSkew));
      const part = (type) => parts.find((p) => p.type === type).value;
      return `${part("year")}-${part("month")}-${part("day")}`;
    } catch (error) {
      return config.today; // an unknown zone: the server refuses it and the page shows its reason
    }
  }

  /** "14:05 on 18 Nov 2026" for a UTC instant, in a zone. */
  function timeIn(instant, zone) {
    const date = new Date(instant);
    try {
      const time = new Intl.DateTimeFormat(undefined, { timeZone: zone, hour: "2-digit", minute: "2-digit" }).format(date);
      const day = new Intl.DateTimeFormat(undefined, { timeZone: zone, day: "numeric", month: "short", year: "numeric" }).format(date);
      return `${time} on ${day}`;
    } catch (error) {
      return date.toISOString();
    }
  }

  /** The zone selector's choices: [value, label], the shop default first, then this browser's zone. */
  function zoneChoices() {
    const choices = [["", `Shop default (${config.defaultTimezone})`]];
    const own = browserZone();
    if (own && own !== "UTC") choices.push([own, `${own} (this browser)`]);
    for (const zone of COMMON_ZONES) if (zone !== own) choices.push([zone, zone]);
    return choices;
  }

  window.ShopView = { DEFAULTS, read, write, zoneOf, todayIn, timeIn, zoneChoices, browserZone };
})();
