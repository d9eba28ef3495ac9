// Panoptic dashboard: the little that needs a script. Every page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "/" jumps to the page's search field, as on many sites; Escape leaves it.
  const search = document.querySelector("[data-shortcut='/']");
  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement?.tagName ?? "");
    if (search && event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === "Escape" && document.activeElement === search) {
      search.blur();
    }
  });

  // Times are written in UTC; the tooltip adds the reader's local time.
  for (const element of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      element.title = `${moment.toLocaleString()} (your time)`;
    }
  }
});
