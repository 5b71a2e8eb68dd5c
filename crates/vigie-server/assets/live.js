// Vigie.live: keeps part of a page up to date without reloading it.
//
//   Vigie.live("/live/system", data => Vigie.bind(document, data));
//
// It opens an EventSource on the URL; each message is JSON handed to the callback. If the
// stream fails three times in a row (a proxy that buffers, a browser without EventSource) it
// falls back to fetching the same URL as JSON every few seconds. An element marked
// data-live-indicator shows "Live", "Polling" or "Reconnecting…". Add ?live=poll to a page's
// address to force polling.
(function () {
  "use strict";
  const Vigie = (window.Vigie = window.Vigie || {});
  const LABELS = { live: "Live", polling: "Polling", reconnecting: "Reconnecting…" };

  function indicate(state) {
    document.querySelectorAll("[data-live-indicator]").forEach((el) => {
      el.hidden = false;
      el.dataset.state = state;
      el.textContent = LABELS[state];
    });
  }

  Vigie.live = function (url, onData, options) {
    const opts = Object.assign({ pollMs: 5000, maxFailures: 3 }, options || {});
    const forced = new URLSearchParams(location.search).get("live");
    let failures = 0;

    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((r) => {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then((data) => {
          indicate("polling");
          onData(data);
        })
        .catch(() => indicate("reconnecting"))
        .finally(() => setTimeout(poll, opts.pollMs));
    }

    if (forced === "poll" || !window.EventSource) return poll();
    const source = new EventSource(url);
    source.onopen = () => {
      failures = 0;
      indicate("live");
    };
    source.onmessage = (event) => {
      failures = 0;
      indicate("live");
      onData(JSON.parse(event.data));
    };
    source.onerror = () => {
      failures += 1;
      indicate("reconnecting");
      if (failures >= opts.maxFailures || source.readyState === EventSource.CLOSED) {
        source.close();
        poll();
      }
    };
  };

  const FORMATS = {
    number: (v) => Number(v).toLocaleString("en-US"),
    bytes: (v) => {
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let n = Number(v), i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
      return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
    },
    duration: (v) => {
      let s = Math.floor(Number(v));
      const d = Math.floor(s / 86400); s %= 86400;
      const h = Math.floor(s / 3600); s %= 3600;
      const m = Math.floor(s / 60); s %= 60;
      if (d) return d + "d " + h + "h";
      if (h) return h + "h " + m + "m";
      if (m) return m + "m " + s + "s";
      return s + "s";
    },
    percent: (v) => Number(v).toFixed(1) + " %",
    rate: (v) => Number(v).toFixed(1) + "/s",
    text: (v) => String(v),
  };

  // Writes data[key] into every element marked data-bind="key" under root, formatted per the
  // element's data-format (number, bytes, duration, percent, rate, text); null shows "—", or
  // the element's data-empty text. Text only: never HTML.
  Vigie.bind = function (root, data) {
    root.querySelectorAll("[data-bind]").forEach((el) => {
      const key = el.dataset.bind;
      if (!(key in data)) return;
      const format = FORMATS[el.dataset.format || "text"] || FORMATS.text;
      const empty = el.dataset.empty === undefined ? "—" : el.dataset.empty;
      el.textContent = data[key] === null ? empty : format(data[key]);
    });
  };
})();
