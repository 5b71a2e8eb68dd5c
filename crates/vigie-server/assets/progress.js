// VigieProgress: a live progress bar for one Vigie job, to include in your own pages.
//
//   <div id="progress"></div>
//   <script src="https://vigie.example.org/static/progress.js"></script>
//   <script>
//     VigieProgress.mount(document.getElementById("progress"), {
//       server: "https://vigie.example.org",   // where Vigie is
//       job: "JOB_ID",                           // the job's id
//       token: "READ_TOKEN",                     // the read token returned when it was created
//       onComplete: (job) => {},                 // called once when the job finishes
//       onError: (error) => {},                  // called when Vigie cannot be reached or refuses:
//                                                // error.code "origin_not_allowed" when this
//                                                // page's origin is not allowed
//     });
//   </script>
//
// It shows a bar, the percent, the counts and the last message; it listens over Server-Sent
// Events and falls back to polling every 2 s. Your site's origin must be listed in the
// project's allowed origins (Settings → Projects) for the browser to let it read the answers.
// mount() returns { stop() } to stop listening. No dependency, no styles outside the element.
(function () {
  "use strict";
  const FINISHED = ["completed", "failed", "cancelled"];
  const COLOURS = { running: "#2563eb", completed: "#15803d", failed: "#c62828", stalled: "#b45309" };

  function node(tag, css, parent) {
    const n = document.createElement(tag);
    Object.assign(n.style, css || {});
    if (parent) parent.appendChild(n);
    return n;
  }

  function mount(element, options) {
    const opts = Object.assign({ pollMs: 2000 }, options || {});
    if (!element || !opts.server || !opts.job || !opts.token) {
      throw new Error("VigieProgress.mount(element, {server, job, token}) needs all four");
    }
    const base = opts.server.replace(/\/+$/, "");
    const url = base + "/api/v1/live/jobs/" + encodeURIComponent(opts.job) + "?token=" + encodeURIComponent(opts.token);

    element.replaceChildren();
    element.classList.add("vigie-progress");
    const head = node("div", { display: "flex", justifyContent: "space-between", font: "600 14px system-ui, sans-serif", marginBottom: "4px" }, element);
    const name = node("span", {}, head);
    const percent = node("span", { fontVariantNumeric: "tabular-nums" }, head);
    const track = node("div", { height: "10px", borderRadius: "5px", background: "#e5e7eb", overflow: "hidden" }, element);
    const fill = node("div", { height: "100%", width: "0%", background: COLOURS.running, transition: "width .4s ease" }, track);
    const counts = node("div", { font: "12px system-ui, sans-serif", color: "#5f6b7c", marginTop: "4px", fontVariantNumeric: "tabular-nums" }, element);
    const message = node("div", { font: "12px ui-monospace, monospace", color: "#5f6b7c", marginTop: "2px", overflowWrap: "anywhere" }, element);

    let stopped = false, completed = false, source = null, timer = null, failures = 0;
    const fmt = (n) => Number(n).toLocaleString();

    function show(job) {
      name.textContent = job.name;
      const pct = job.percent === null ? null : Number(job.percent);
      percent.textContent = pct === null ? job.status : pct.toFixed(1) + " %";
      fill.style.width = (pct === null ? (FINISHED.includes(job.status) ? 100 : 0) : pct) + "%";
      fill.style.background = COLOURS[job.status] || "#6b7280";
      let text = fmt(job.processed) + (job.total !== null ? " / " + fmt(job.total) : "") + " processed";
      if (job.failed) text += " · " + fmt(job.failed) + " errors";
      if (job.status === "stalled") text += " · stalled";
      counts.textContent = text;
      message.textContent = job.summary ? job.summary.line : job.message || "";
      if (FINISHED.includes(job.status) && !completed) {
        completed = true;
        if (opts.onComplete) opts.onComplete(job);
        stop();
      }
    }

    function failed(error) {
      // What Vigie refused (a page whose origin is not allowed, a wrong token) is shown in
      // the bar too: the reader sees why it does not move, not a silent empty bar.
      if (error.refused) {
        message.textContent = error.message;
        message.style.color = COLOURS.failed;
      }
      if (opts.onError) opts.onError(error);
    }

    // Vigie's JSON error (`{"error": {"code", "message"}}`), as an Error with `status`,
    // `code` and `refused`; readable here because Vigie answers refusals with CORS headers.
    function refusal(r) {
      return r.json().catch(() => ({})).then((body) => {
        const e = body && body.error ? body.error : {};
        const error = new Error(e.message || "Vigie answered HTTP " + r.status);
        Object.assign(error, { status: r.status, code: e.code || null, refused: r.status < 500 });
        throw error;
      });
    }

    function poll() {
      if (stopped) return;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "omit" })
        .then((r) => (r.ok ? r.json() : refusal(r)))
        .then(show)
        .catch(failed)
        .finally(() => { if (!stopped) timer = setTimeout(poll, opts.pollMs); });
    }

    function stop() {
      stopped = true;
      if (source) source.close();
      if (timer) clearTimeout(timer);
    }

    if (window.EventSource && !opts.poll) {
      source = new EventSource(url);
      source.onmessage = (event) => { failures = 0; show(JSON.parse(event.data)); };
      source.onerror = () => {
        failures += 1;
        if (failures >= 3 || source.readyState === EventSource.CLOSED) {
          source.close();
          source = null;
          failed(new Error("live stream unavailable; polling instead"));
          poll();
        }
      };
    } else {
      poll();
    }
    return { stop };
  }

  window.VigieProgress = { mount };
})();
