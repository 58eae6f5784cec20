// Uptime bars: a day's figures on hover, tap or arrow keys. Without scripts each run of days keeps its <title>.
(() => {
  "use strict";

  const STEP = 4; // viewBox units per day, as statuspage/charts.py draws them
  let tip = null;
  let current = null; // the bars the tooltip belongs to

  function tooltip() {
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "tooltip";
      tip.id = "bar-tooltip";
      tip.setAttribute("role", "tooltip");
      tip.hidden = true;
      document.body.append(tip);
    }
    return tip;
  }

  function dayCount(svg) {
    return Math.round((svg.viewBox.baseVal.width + 1) / STEP);
  }

  // A rectangle covers the days from x / STEP, (width + 1) / STEP of them.
  function runAt(svg, index) {
    for (const rect of svg.querySelectorAll("rect[data-f]")) {
      const start = Number(rect.getAttribute("x")) / STEP;
      const length = (Number(rect.getAttribute("width")) + 1) / STEP;
      if (index >= start && index < start + length) return rect;
    }
    return null;
  }

  function dateOf(svg, index) {
    const day = new Date(`${svg.dataset.firstDay}T00:00:00Z`);
    day.setUTCDate(day.getUTCDate() + index);
    return day.toISOString().slice(0, 10);
  }

  function indexAt(svg, clientX) {
    const box = svg.getBoundingClientRect();
    const x = ((clientX - box.left) / box.width) * svg.viewBox.baseVal.width;
    return Math.max(0, Math.min(dayCount(svg) - 1, Math.floor(x / STEP)));
  }

  function cursor(svg, index) {
    let mark = svg.querySelector(".bar-cursor");
    if (!mark) {
      mark = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      mark.setAttribute("class", "bar-cursor");
      mark.setAttribute("height", "3");
      mark.setAttribute("width", "3");
      mark.setAttribute("fill", "currentColor");
      svg.append(mark);
    }
    mark.setAttribute("x", String(index * STEP));
    mark.setAttribute("y", String(svg.viewBox.baseVal.height - 3));
  }

  function show(svg, index) {
    const run = runAt(svg, index);
    if (!run) return hide();
    const t = tooltip();
    t.textContent = `${dateOf(svg, index)}: ${run.dataset.f}`;
    t.hidden = false;
    current = svg;
    svg.dataset.cursor = String(index);
    svg.setAttribute("aria-describedby", t.id);
    cursor(svg, index);
    const box = svg.getBoundingClientRect();
    const x = box.left + ((index * STEP + 1.5) / svg.viewBox.baseVal.width) * box.width;
    const left = Math.max(8, Math.min(x - t.offsetWidth / 2, document.documentElement.clientWidth - t.offsetWidth - 8));
    t.style.left = `${left + window.scrollX}px`;
    t.style.top = `${box.top + window.scrollY - t.offsetHeight - 6}px`;
  }

  function hide() {
    if (tip) tip.hidden = true;
    if (current) {
      current.querySelector(".bar-cursor")?.remove();
      current.removeAttribute("aria-describedby");
      current = null;
    }
  }

  // The script shows the figures itself, so the native <title> tooltips would double them: each title
  // ("2026-09-01 – 2026-09-04: 100% uptime") becomes the figures of its days, and goes.
  function enhance(root) {
    // "Collecting since …" covers the days before the first figures (no style attribute under the CSP).
    for (const note of root.querySelectorAll(".collecting[data-share]")) {
      note.style.width = `${note.dataset.share}%`;
    }
    for (const title of root.querySelectorAll("svg.bars rect > title")) {
      const text = title.textContent;
      title.parentNode.dataset.f = text.slice(text.indexOf(": ") + 2);
      title.remove();
    }
  }

  document.addEventListener("pointermove", (event) => {
    const svg = event.target.closest?.("svg.bars");
    if (svg) show(svg, indexAt(svg, event.clientX));
    else if (current && event.pointerType === "mouse") hide();
  });
  document.addEventListener("pointerdown", (event) => {
    const svg = event.target.closest?.("svg.bars");
    if (svg) show(svg, indexAt(svg, event.clientX));
    else hide();
  });
  document.addEventListener("focusin", (event) => {
    const svg = event.target.closest?.("svg.bars");
    if (svg) show(svg, Number(svg.dataset.cursor ?? dayCount(svg) - 1));
  });
  document.addEventListener("focusout", (event) => {
    if (event.target.closest?.("svg.bars")) hide();
  });
  document.addEventListener("keydown", (event) => {
    const svg = event.target.closest?.("svg.bars");
    if (!svg) return;
    const last = dayCount(svg) - 1;
    let index = Number(svg.dataset.cursor ?? last);
    if (event.key === "ArrowLeft") index -= 1;
    else if (event.key === "ArrowRight") index += 1;
    else if (event.key === "Home") index = 0;
    else if (event.key === "End") index = last;
    else if (event.key === "Escape") return hide();
    else return;
    event.preventDefault();
    show(svg, Math.max(0, Math.min(last, index)));
  });
  window.addEventListener("scroll", hide, { passive: true });
  document.addEventListener("statuspage:updated", (event) => enhance(event.detail?.root || document));
  enhance(document);
})();
