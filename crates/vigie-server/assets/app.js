// Small behaviours shared by every page. No framework; each is opt-in through a data attribute.
(function () {
  "use strict";

  // data-copy="#id" or data-copy-text="…": copy to the clipboard, say "Copied".
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy], [data-copy-text]");
    if (button) {
      const source = button.dataset.copy && document.querySelector(button.dataset.copy);
      const text = button.dataset.copyText || (source ? source.textContent.trim() : "");
      const label = button.textContent;
      copyText(text)
        .then(() => { button.textContent = "Copied"; button.dataset.copied = "true"; })
        .catch(() => { button.textContent = "Press Ctrl+C"; })
        .finally(() => setTimeout(() => { button.textContent = label; }, 1600));
      return;
    }
    const toggle = event.target.closest("[data-toggle]");
    if (toggle) {
      document.getElementById(toggle.dataset.toggle).classList.toggle("open");
    }
  });

  // <form data-confirm="Really?">: ask before submitting.
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // <select data-autosubmit>: submit its form on change (the project switcher).
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-autosubmit]")) event.target.form.submit();
  });

  // <time datetime="…">: show the exact local time on hover.
  document.querySelectorAll("time[datetime]").forEach((el) => {
    const date = new Date(el.getAttribute("datetime"));
    if (!isNaN(date)) el.title = date.toLocaleString();
  });

  // A waterfall row with data-fold folds the rows under it (the deeper ones that follow
  // it); rows marked data-folded open folded (a long trace's deep subtrees).
  function fold(row, open) {
    const depth = Number(row.dataset.depth);
    const button = row.querySelector("[data-fold]");
    if (button) button.setAttribute("aria-expanded", String(open));
    let next = row.nextElementSibling;
    let closedBelow = Infinity;
    while (next && Number(next.dataset.depth) > depth) {
      const d = Number(next.dataset.depth);
      if (d <= closedBelow) closedBelow = Infinity;
      next.hidden = !open || d > closedBelow;
      const inner = next.querySelector("[data-fold]");
      if (open && inner && inner.getAttribute("aria-expanded") === "false") closedBelow = Math.min(closedBelow, d);
      next = next.nextElementSibling;
    }
  }
  document.querySelectorAll("[data-waterfall] [data-folded]").forEach((row) => fold(row, false));
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-fold]");
    if (button) fold(button.closest(".wf-row"), button.getAttribute("aria-expanded") === "false");
  });

  // <div data-live="/live/…">: bind the stream's fields into the element.
  document.querySelectorAll("[data-live]").forEach((el) => {
    if (window.Vigie && Vigie.live) Vigie.live(el.dataset.live, (data) => Vigie.bind(el, data));
  });
})();
