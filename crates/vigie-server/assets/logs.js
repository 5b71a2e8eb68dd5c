// Live tail for the Logs pages: the "Live" button streams matching records from
// /api/v1/logs/tail (SSE) into the table; without EventSource, or when the stream fails, it
// polls /api/v1/logs/search?after=. Rows are built with textContent: nothing a log line says
// is ever read as HTML.
(function () {
  "use strict";
  var toggle = document.querySelector("[data-live-toggle]");
  var rows = document.querySelector("[data-log-rows]");
  if (!toggle || !rows) return;
  var status = document.querySelector("[data-live-status]");
  var counter = document.querySelector("[data-live-count]");
  var append = toggle.hasAttribute("data-append");
  var MAX_ROWS = 2000;
  var stream = null, timer = null, running = false, received = 0, lastNs = 0;
  var seen = new Set();

  function badge(level) {
    if (level === "critical" || level === "error") return "error";
    if (level === "warning") return "warn";
    if (level === "notice" || level === "info") return "info";
    return "pending";
  }

  /** One logfmt pair, as the server writes it (ui::logs::logfmt). */
  function logfmt(k, v) {
    v = String(v);
    if (v && !/[ "=\\\n]/.test(v)) return k + "=" + v;
    return k + '="' + v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") + '"';
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text || "";
    tr.appendChild(td);
    return td;
  }

  function row(r) {
    var tr = document.createElement("tr");
    tr.className = "log " + r.level + " fresh";
    var time = document.createElement("span");
    time.title = r.time;
    var day = document.createElement("span");
    day.className = "day";
    day.textContent = r.time.slice(5, 10);
    time.append(day, " " + r.time.slice(11, 23));
    cell(tr, time, "mono nowrap");
    var level = document.createElement("span");
    level.className = "badge " + badge(r.level);
    level.textContent = r.level;
    cell(tr, level);
    cell(tr, r.source, "nowrap hide-sm");
    cell(tr, r.logger, "mono small hide-sm");
    var lines = (r.message || "").split("\n");
    var fields = r.fields ? Object.keys(r.fields) : [];
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    summary.textContent = lines[0];
    // The emitting process's OpenTelemetry resource is shown once the line is opened, as
    // the page's own rows do (logs/ui.rs, Row::fields_inline).
    var own = fields.filter(function (k) { return k.indexOf("resource.") !== 0; });
    if (own.length) {
      var inline = document.createElement("span");
      inline.className = "fields-inline";
      inline.textContent = own.map(function (k) { return logfmt(k, r.fields[k]); }).join(" ");
      summary.appendChild(document.createTextNode(" "));
      summary.appendChild(inline);
    }
    details.appendChild(summary);
    if (lines.length > 1) {
      var pre = document.createElement("pre");
      pre.textContent = lines.slice(1).join("\n");
      details.appendChild(pre);
    }
    if (fields.length) {
      var dl = document.createElement("dl");
      dl.className = "fields";
      fields.forEach(function (k) {
        var dt = document.createElement("dt"); dt.textContent = k;
        var dd = document.createElement("dd"); dd.textContent = r.fields[k];
        dl.appendChild(dt); dl.appendChild(dd);
      });
      details.appendChild(dl);
    }
    if (r.job_id) {
      var job = document.createElement("a");
      job.href = "/jobs/" + encodeURIComponent(r.job_id);
      job.textContent = "job " + r.job_id;
      details.appendChild(job);
    }
    var context = document.createElement("div");
    context.className = "small";
    var link = document.createElement("a");
    var t = Date.parse(r.time);
    var q = "source:" + r.source + " from:" + new Date(t - 30000).toISOString() +
      " to:" + new Date(t + 30000).toISOString();
    link.href = "/logs?range=&q=" + encodeURIComponent(q);
    link.textContent = "Show context";
    context.appendChild(link);
    details.appendChild(context);
    cell(tr, details, "mono msg");
    return tr;
  }

  /** Adds one to a count shown with thousands separators (a level chip, the total). */
  function bump(node) {
    if (!node) return;
    var n = parseInt(node.textContent.replace(/[^0-9]/g, ""), 10) || 0;
    node.textContent = (n + 1).toLocaleString("en-US");
  }

  function add(records) {
    var empty = rows.querySelector(".empty-row");
    if (empty && records.length) empty.remove();
    var atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    records.forEach(function (r) {
      var key = r.time_ns + "|" + r.source + "|" + r.message;
      if (seen.has(key)) return;
      seen.add(key);
      if (seen.size > 5000) seen.clear();
      lastNs = Math.max(lastNs, r.time_ns);
      received += 1;
      bump(document.querySelector('.chip[data-level="' + r.level + '"] [data-level-count]'));
      bump(document.querySelector("[data-total]"));
      var tr = row(r);
      if (append) rows.appendChild(tr); else rows.insertBefore(tr, rows.firstChild);
    });
    while (rows.children.length > MAX_ROWS) {
      rows.removeChild(append ? rows.firstChild : rows.lastChild);
    }
    if (counter) counter.textContent = received;
    // Auto-scroll: follow new lines while the reader stays at the end.
    if (append && atBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  function poll() {
    var url = toggle.getAttribute("data-poll-url") + "&limit=500" +
      (lastNs ? "&after=" + Math.floor(lastNs - 1e6) : "&limit=1");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { hits: [] }; })
      .then(function (j) { if (running) add((j.hits || []).reverse()); })
      .catch(function () {});
  }

  function start() {
    running = true;
    toggle.textContent = "Pause";
    toggle.classList.add("active");
    if (status) { status.hidden = false; status.classList.remove("reconnecting"); }
    if (window.EventSource) {
      stream = new EventSource(toggle.getAttribute("data-tail-url"));
      stream.onmessage = function (e) { add(JSON.parse(e.data)); };
      stream.onerror = function () {
        if (status) status.classList.add("reconnecting");
        if (stream.readyState === 2) { stream = null; timer = setInterval(poll, 2000); }
      };
      stream.onopen = function () { if (status) status.classList.remove("reconnecting"); };
    } else {
      timer = setInterval(poll, 2000);
    }
  }

  function pause() {
    running = false;
    toggle.textContent = "Resume";
    toggle.classList.remove("active");
    if (stream) { stream.close(); stream = null; }
    if (timer) { clearInterval(timer); timer = null; }
  }

  toggle.addEventListener("click", function () { if (running) pause(); else start(); });
})();
