// The stores page's map: a click on the map probes the point clicked (the
// nearest stores to it); the QR page's Print button prints. Without the
// script the points are links and the probe is a form.
(function () {
  "use strict";
  var svg = document.getElementById("map-svg");
  var form = document.getElementById("probe-form");
  if (svg && form) {
    svg.addEventListener("click", function (ev) {
      if (ev.target.closest && ev.target.closest("a")) return; // a store's own link
      var m = svg.getScreenCTM();
      if (!m) return;
      var pt = svg.createSVGPoint();
      pt.x = ev.clientX; pt.y = ev.clientY;
      var p = pt.matrixTransform(m.inverse());
      var d = svg.dataset;
      var lng = parseFloat(d.lng0) + (p.x - parseFloat(d.ox)) / parseFloat(d.kx);
      var lat = parseFloat(d.lat0) - (p.y - parseFloat(d.oy)) / parseFloat(d.ky);
      form.elements.lat.value = lat.toFixed(5);
      form.elements.lng.value = lng.toFixed(5);
      form.submit();
    });
  }
  var print = document.querySelector("[data-print]");
  if (print) print.addEventListener("click", function () { window.print(); });
})();
