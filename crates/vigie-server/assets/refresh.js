// Server-rendered pages that refresh themselves. An element with data-live-refresh="<pulse
// URL>" listens to that pulse (SSE, or polling through Vigie.live); when the pulse changes,
// the page is read again from its own address (so filters, sort and paging stay as the user
// set them) and every [data-live-part] element is replaced by its fresh copy.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const root = document.querySelector("[data-live-refresh]");
    if (!root || !window.Vigie || !Vigie.live) return;
    let last = null;
    let busy = false;
    Vigie.live(root.dataset.liveRefresh, (pulse) => {
      const key = JSON.stringify(pulse);
      if (last === null) { last = key; return; }
      if (key === last || busy) return;
      last = key;
      busy = true;
      fetch(location.href, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
        .then((html) => {
          const fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live-part]").forEach((old) => {
            const name = old.dataset.livePart;
            const part = fresh.querySelector(`[data-live-part="${name}"]`);
            if (part) old.replaceWith(part);
          });
        })
        .catch(() => {})
        .finally(() => { busy = false; });
    });
  });
})();
