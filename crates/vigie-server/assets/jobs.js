// The Jobs pages, kept live: the list re-renders its rows from /api/v1/live/jobs, a job page
// binds its counters and appends feed lines and items from /api/v1/live/jobs/{id}.
// Everything is written with textContent: job names, messages and errors are never HTML.
(function () {
  "use strict";
  const V = window.Vigie;
  const number = (n) => Number(n).toLocaleString("en-US");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setBar(root, status, percent) {
    root.querySelectorAll("svg.bar").forEach((svg) => {
      svg.setAttribute("class", "bar " + status);
      svg.querySelector("[data-bar-fill]").setAttribute("width", String(percent || 0));
    });
  }

  function badge(status) {
    const b = el("span", "badge " + status);
    b.appendChild(el("span", "dot"));
    b.appendChild(document.createTextNode(status));
    return b;
  }

  function barSvg(status, percent) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "bar " + status);
    svg.setAttribute("viewBox", "0 0 100 10");
    svg.setAttribute("preserveAspectRatio", "none");
    const track = document.createElementNS(ns, "rect");
    track.setAttribute("class", "track");
    track.setAttribute("width", "100");
    track.setAttribute("height", "10");
    const fill = document.createElementNS(ns, "rect");
    fill.setAttribute("class", "fill");
    fill.setAttribute("data-bar-fill", "");
    fill.setAttribute("width", String(percent || 0));
    fill.setAttribute("height", "10");
    svg.appendChild(track);
    svg.appendChild(fill);
    return svg;
  }

  function ago(iso) {
    const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (s < 10) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " days ago";
  }

  // --- the jobs list ---
  function jobRow(job) {
    const tr = el("tr");
    tr.dataset.job = job.id;
    tr.appendChild(el("td")).appendChild(badge(job.status));
    const name = tr.appendChild(el("td", "job-name"));
    const link = name.appendChild(el("a", "", job.name));
    link.href = "/jobs/" + encodeURIComponent(job.id);
    const bits = [job.kind, job.application, job.message].filter((b) => b);
    name.appendChild(el("div", "muted small", bits.join(" · ")));
    const progress = tr.appendChild(el("td", "progress-col"));
    progress.appendChild(barSvg(job.status, job.percent));
    let counts = number(job.processed);
    if (job.total !== null) counts += " / " + number(job.total) + " · " + Number(job.percent).toFixed(1) + " %";
    progress.appendChild(el("div", "small muted num-line", counts));
    tr.appendChild(el("td", "num" + (job.failed > 0 ? " err" : ""), number(job.failed)));
    tr.appendChild(el("td", "num", Number(job.speed).toFixed(1) + "/s"));
    const started = tr.appendChild(el("td")).appendChild(el("span", "", ago(job.created_at)));
    started.title = job.created_at;
    tr.appendChild(el("td", "num", job.elapsed));
    return tr;
  }

  const list = document.querySelector("[data-jobs-list]");
  if (list) {
    V.live(list.dataset.liveUrl, (data) => {
      const body = list.querySelector("[data-jobs-rows]");
      body.replaceChildren(...data.jobs.map(jobRow));
      if (!data.jobs.length) {
        const tr = body.appendChild(el("tr"));
        const td = tr.appendChild(el("td", "muted", "No job matches these filters."));
        td.colSpan = 7;
      }
      document.querySelectorAll("[data-jobs-total]").forEach((n) => { n.textContent = number(data.total) + (data.total === 1 ? " job" : " jobs"); });
    });
  }

  // --- one job ---
  function feedLine(m) {
    const li = el("li");
    // Every digit kept (10:07:55.550, not 10:07:55.55), so lines align and sort by eye.
    const time = li.appendChild(el("time", "", new Date(m.at).toISOString().slice(11, 23)));
    time.title = m.at;
    li.appendChild(document.createTextNode(" " + m.text));
    return li;
  }

  /** An item's `fields` as `key=value` pairs, strings as they are, anything else as JSON. */
  function fieldsLine(fields) {
    if (!fields || typeof fields !== "object") return "";
    return Object.entries(fields)
      .map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v)))
      .join(" ");
  }

  function itemRow(item) {
    const tr = el("tr", item.status === "error" ? "row-error" : "");
    tr.appendChild(el("td", "mono small", item.id || ""));
    tr.appendChild(el("td")).appendChild(el("span", "badge " + item.status, item.status));
    const name = tr.appendChild(el("td", "", item.name || ""));
    if (item.comment) name.appendChild(el("div", "muted small", item.comment));
    if (item.error) name.appendChild(el("div", "error-text mono small", item.error));
    const fields = fieldsLine(item.fields);
    if (fields) name.appendChild(el("div", "muted mono small fields", fields));
    tr.appendChild(el("td", "", item.target || ""));
    tr.appendChild(el("td", "mono small", item.file || ""));
    tr.appendChild(el("td", "num", item.duration_ms === null ? "" : Math.round(item.duration_ms) + " ms"));
    const when = tr.appendChild(el("td", "small")).appendChild(el("span", "", ago(item.at)));
    when.title = item.at;
    return tr;
  }

  const MAX_ROWS = 50;
  const MAX_FEED = 200;
  const page = document.querySelector("[data-job-page]");
  if (page) {
    const feed = page.querySelector("[data-feed]");
    const items = page.querySelector("[data-items]");
    const liveItems = page.dataset.liveItems === "true";
    V.live(page.dataset.liveUrl, (job) => {
      V.bind(page, job);
      setBar(page, job.status, job.percent);
      page.querySelector("[data-job-status]").className = "badge " + job.status;
      page.querySelector("[data-stalled]").hidden = job.status !== "stalled";
      const summary = page.querySelector("[data-summary]");
      summary.hidden = !job.summary;
      if (job.summary) summary.querySelector("[data-summary-line]").textContent = job.summary.line;

      if (job.event === "snapshot") feed.replaceChildren();
      job.messages.forEach((m) => feed.appendChild(feedLine(m)));
      while (feed.children.length > MAX_FEED) feed.firstElementChild.remove();
      if (job.messages.length) {
        page.querySelectorAll("[data-feed-empty]").forEach((n) => n.remove());
        feed.scrollTop = feed.scrollHeight;
      }

      if (liveItems && job.items.length) {
        const rows = job.items.map(itemRow);
        if (job.event === "snapshot") items.replaceChildren(...rows);
        else items.prepend(...rows);
        while (items.children.length > MAX_ROWS) items.lastElementChild.remove();
        page.querySelectorAll("[data-items-empty]").forEach((n) => n.remove());
      }
    });
  }
})();
