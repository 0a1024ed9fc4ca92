"use strict";
// How the status page writes counts, shares, durations and moments (status.js calls these).
const format = (() => {
  const pad = (number) => String(number).padStart(2, "0");

  function count(value) {
    return typeof value === "number" ? value.toLocaleString("en") : "–";
  }

  function percent(progress) {
    return Math.floor(Math.max(0, Math.min(1, progress)) * 100) + "%";
  }

  /** Seconds as people read them: ``< 1 ms``, ``340 ms``, ``4.2 s``, ``3 min 05 s``, ``2 h 07 min``. */
  function duration(seconds) {
    if (typeof seconds !== "number") {
      return "–";
    }
    if (seconds < 0.001) {
      return "< 1 ms";
    }
    if (seconds < 1) {
      return Math.round(seconds * 1000) + " ms";
    }
    if (seconds < 60) {
      return seconds.toFixed(1) + " s";
    }
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + pad(Math.floor(seconds % 60)) + " s";
    }
    return Math.floor(minutes / 60) + " h " + pad(minutes % 60) + " min";
  }

  /** A moment in local time: ``07:41:02`` today, ``2026-12-02 07:41`` before. */
  function clock(moment) {
    const now = new Date();
    const time = pad(moment.getHours()) + ":" + pad(moment.getMinutes());
    if (moment.toDateString() === now.toDateString()) {
      return time + ":" + pad(moment.getSeconds());
    }
    return moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) + " " + time;
  }

  function when(td, stamp) {
    td.textContent = stamp ? clock(new Date(stamp)) : "–";
    td.title = stamp || "";
  }

  return Object.freeze({count, percent, duration, clock, when});
})();
