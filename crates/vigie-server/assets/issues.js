// The issues list refreshes itself: /live/issues pulses (SSE, or polling through Vigie.live)
// when the project's issues change, and the table is then read again from the page's own
// address, so filters, sort and paging stay as the user set them.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const table = document.querySelector("[data-issues]");
    if (!table || !window.Vigie || !Vigie.live) return;
    let last = null;
    let busy = false;
    Vigie.live(table.dataset.liveUrl, (pulse) => {
      const key = pulse.total + ":" + pulse.last_seen;
      if (last === null) { last = key; return; }
      if (key === last || busy) return;
      last = key;
      busy = true;
      fetch(location.href, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => {
          const fresh = new DOMParser().parseFromString(html, "text/html");
          const rows = fresh.querySelector("[data-issues-rows]");
          const total = fresh.querySelector("[data-issues-total]");
          if (rows) document.querySelector("[data-issues-rows]").replaceWith(rows);
          if (total) document.querySelector("[data-issues-total]").replaceWith(total);
        })
        .catch(() => {})
        .finally(() => { busy = false; });
    });
  });
})();
