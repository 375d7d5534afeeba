/* kpilot: render every chart (a Vega-Lite spec in data-spec) with the vendored vega-embed.
   htmx.onLoad runs for the first page and for every part of a page swapped in later. */
(function () {
  "use strict";

  function options() {
    var node = document.getElementById("embed-options");
    var opts = node ? JSON.parse(node.textContent) : {};
    opts.ast = true; // vega's expression interpreter: no eval, so the page's CSP can forbid it
    return opts;
  }

  function render(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var charts = scope.querySelectorAll("[data-spec]");
    if (!charts.length) return;
    var opts = options();
    charts.forEach(function (el) {
      if (el.dataset.rendered) return;
      el.dataset.rendered = "1";
      window.vegaEmbed(el, JSON.parse(el.dataset.spec), opts).then(function () {
        // The container (role="img") states the numbers in words: the drawing itself is hidden from screen readers.
        el.querySelectorAll("svg").forEach(function (svg) { svg.setAttribute("aria-hidden", "true"); });
      }).catch(function (err) {
        el.dataset.rendered = "error";
        console.error("kpilot chart", err);
      });
    });
  }

  htmx.onLoad(render);

  // The phone menu: a button (shown by CSS on narrow screens, once this script runs) that opens the nav,
  // the date picker and the language switch. Without JS the menu simply stays open.
  document.documentElement.classList.add("js");
  function setMenu(toggle, open) {
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (menu) menu.classList.toggle("open", open);
  }
  document.addEventListener("click", function (ev) {
    var toggle = ev.target.closest ? ev.target.closest(".menu-toggle") : null;
    if (toggle) setMenu(toggle, toggle.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    var toggle = document.querySelector(".menu-toggle[aria-expanded=true]");
    if (toggle) { setMenu(toggle, false); toggle.focus(); }
  });
})();
