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
      window.vegaEmbed(el, JSON.parse(el.dataset.spec), opts).catch(function (err) {
        el.dataset.rendered = "error";
        console.error("kpilot chart", err);
      });
    });
  }

  htmx.onLoad(render);
})();
