/* Display formatting for the dashboard: money in minor units with each currency's own
   decimals (sent by the server from Babel's CLDR data), counts, ratios and dates. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const locale = undefined; // the browser's own language
  const cache = new Map();

  function decimals(currency) {
    const known = config.currencyDecimals[currency];
    return known === undefined ? config.defaultDecimals : known;
  }

  function currencyFormat(currency) {
    if (!cache.has(currency)) {
      const digits = decimals(currency);
      cache.set(currency, new Intl.NumberFormat(locale, {
        style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
      }));
    }
    return cache.get(currency);
  }

  const integer = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const oneDecimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const percent = new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const signedPercent = new Intl.NumberFormat(locale, {
    style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "exceptZero",
  });
  const dayFormat = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  const shortDayFormat = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });

  window.ShopFormat = {
    decimals,
    /** Minor units to the currency's major unit, e.g. 1999 USD -> 19.99, 1500 JPY -> 1500. */
    major(minorUnits, currency) {
      return minorUnits / Math.pow(10, decimals(currency));
    },
    money(minorUnits, currency) {
      return currencyFormat(currency).format(minorUnits / Math.pow(10, decimals(currency)));
    },
    count(value) { return integer.format(value); },
    decimal(value) { return oneDecimal.format(value); },
    percent(ratio) { return ratio === null || ratio === undefined ? "—" : percent.format(ratio); },
    signedPercent(ratio) { return signedPercent.format(ratio); },
    /** "25 Nov 2026" for an ISO day, read as a UTC calendar day. */
    day(isoDay) { return dayFormat.format(new Date(isoDay + "T00:00:00Z")); },
    /** "Wed, Nov 25": for rows of a table whose caption gives the years. */
    shortDay(isoDay) { return shortDayFormat.format(new Date(isoDay + "T00:00:00Z")); },
    /** The ISO day `days` after (or before, when negative) an ISO day. */
    addDays(isoDay, days) {
      const date = new Date(isoDay + "T00:00:00Z");
      date.setUTCDate(date.getUTCDate() + days);
      return date.toISOString().slice(0, 10);
    },
    daysBetween(startIso, endIso) {
      return Math.round((Date.parse(endIso + "T00:00:00Z") - Date.parse(startIso + "T00:00:00Z")) / 86400000) + 1;
    },
  };
})();
