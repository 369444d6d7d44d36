(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var SEV = { critical: "#8e1330", high: "#c62828", medium: "#d9822b", low: "#5b7fa6" };

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, String(attrs[k])); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el("text", { x: x, y: y, "text-anchor": anchor || "start" }, parent);
    t.textContent = s;
    return t;
  }
  function title(parent, s) { el("title", {}, parent).textContent = s; }
  function iso(ms) { return new Date(ms).toISOString().replace(".000Z", "Z"); }
  function span(ms) {
    var s = ms / 1000;
    if (s < 120) { return s + "s"; }
    if (s < 7200) { return Math.round(s / 60) + "m"; }
    if (s < 172800) { return Math.round(s / 360) / 10 + "h"; }
    return Math.round(s / 8640) / 10 + "d";
  }

  function timeline(svg, d) {
    var tl = d.timeline, W = 1000, H = 220, L = 48, R = 10, T = 10, B = 52;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    var series = tl.events || tl.findings, n = series.length || 1;
    var peak = Math.max.apply(null, series.concat([1]));
    var bw = (W - L - R) / n, ph = H - T - B;
    el("line", { "class": "axis", x1: L, y1: T + ph, x2: W - R, y2: T + ph }, svg);
    el("line", { "class": "axis", x1: L, y1: T, x2: L, y2: T + ph }, svg);
    text(svg, L - 4, T + 10, String(peak), "end");
    text(svg, L - 4, T + ph, "0", "end");
    text(svg, L, H - 28, iso(tl.start));
    text(svg, W - R, H - 28, iso(tl.start + n * tl.width), "end");
    text(svg, (L + W - R) / 2, H - 28, (tl.events ? "events" : "findings") + " per " + span(tl.width), "middle");
    for (var i = 0; i < series.length; i++) {
      if (!series[i]) { continue; }
      var h = Math.max(1, ph * series[i] / peak);
      var bar = el("rect", { "class": "bar", x: L + i * bw + 0.5, y: T + ph - h, width: Math.max(bw - 1, 0.5), height: h }, svg);
      title(bar, iso(tl.start + i * tl.width) + ": " + series[i] + (tl.events ? " events, " + tl.findings[i] + " findings began" : " findings"));
    }
    var t0 = tl.start, t1 = tl.start + n * tl.width;
    d.markers.forEach(function (m) {
      var x = L + (W - L - R) * Math.min(Math.max((m.t - t0) / (t1 - t0), 0), 1);
      var a = el("a", { href: "#" + m.anchor, "class": "marker" }, svg);
      el("path", { d: "M" + x + " " + (H - 22) + " l-5 9 h10 z", fill: SEV[m.severity] || "#555" }, a);
      title(a, m.severity + " " + m.detector + " " + m.subject + " at " + iso(m.t));
    });
    text(svg, L, H - 2, d.markers.length + " findings marked");
  }

  function detectors(svg, d) {
    var rows = d.detectors, W = 1000, RH = 20, L = 190, R = 50;
    var H = Math.max(rows.length, 1) * RH + 8;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("height", String(H));
    var peak = Math.max.apply(null, rows.map(function (r) { return r.count; }).concat([1]));
    rows.forEach(function (r, i) {
      var y = 4 + i * RH;
      text(svg, L - 8, y + 14, r.id, "end");
      var w = (W - L - R) * r.count / peak;
      var bar = el("rect", { x: L, y: y + 3, width: Math.max(w, r.count ? 2 : 0), height: RH - 6, fill: SEV[r.severity] || "#c4cbd6" }, svg);
      title(bar, r.id + ": " + r.count + " findings");
      text(svg, L + w + 6, y + 14, String(r.count));
    });
  }

  try {
    var data = JSON.parse(document.getElementById("twice-data").textContent);
    timeline(document.getElementById("timeline-chart"), data);
    detectors(document.getElementById("detector-chart"), data);
    document.body.setAttribute("data-ready", "1");
  } catch (e) {
    document.body.setAttribute("data-error", String(e && e.stack || e));
    document.body.setAttribute("data-ready", "error");
    throw e;
  }
})();
