/* Lineage graph and mesh map, drawn with the vendored cytoscape.js.
 *
 * Product lineage uses a layered layout computed here: a column per hop (upstream left,
 * downstream right) and a horizontal band per domain, so that the domain boxes never overlap.
 */
(function () {
  "use strict";

  var COL = 260, ROW = 70, BAND_GAP = 60;
  var STATUS_COLOURS = {
    draft: "#6c757d", published: "#198754", deprecated: "#ffc107", retired: "#212529",
    hidden: "#adb5bd"
  };

  // Columns per hop; a band per domain; a hop with many products in one domain wraps into
  // sub-columns of at most `rows` products, `rows` chosen so the drawing is about twice as wide
  // as high (like its container) and stays readable when zoomed in at 500 nodes.
  function layered(data) {
    var bands = {}, order = [], depths = {};
    data.nodes.forEach(function (n) {
      var band = n.parent;
      if (!bands[band]) { bands[band] = {}; order.push(band); }
      (bands[band][n.depth] = bands[band][n.depth] || []).push(n);
      depths[n.depth] = true;
    });
    order.sort(function (a, b) { return a === "d-hidden" ? 1 : b === "d-hidden" ? -1 : a < b ? -1 : 1; });
    var hops = Object.keys(depths).map(Number).sort(function (a, b) { return a - b; });

    function plan(rows) {
      var cols = {}, height = 0;
      order.forEach(function (band) {
        var h = 0;
        hops.forEach(function (d) {
          var n = (bands[band][d] || []).length;
          cols[d] = Math.max(cols[d] || 1, Math.ceil(n / rows));
          h = Math.max(h, Math.min(n, rows));
        });
        height += h * ROW + BAND_GAP;
      });
      var width = hops.reduce(function (w, d) { return w + cols[d] * COL; }, 0);
      return { rows: rows, cols: cols, ratio: width / Math.max(height, 1) };
    }
    var best = plan(6);
    for (var rows = 7; rows <= 80; rows++) {
      var p = plan(rows);
      if (Math.abs(Math.log(p.ratio / 2)) < Math.abs(Math.log(best.ratio / 2))) { best = p; }
    }
    var x0 = {}, x = 0;
    hops.forEach(function (d) { x0[d] = x; x += best.cols[d] * COL; });

    var positions = {}, top = 0;
    order.forEach(function (band) {
      var h = 0;
      hops.forEach(function (d) {
        var col = bands[band][d] || [];
        col.sort(function (a, b) { return a.label < b.label ? -1 : 1; });
        col.forEach(function (n, i) {
          positions[n.id] = { x: x0[d] + Math.floor(i / best.rows) * COL, y: top + (i % best.rows) * ROW };
        });
        h = Math.max(h, Math.min(col.length, best.rows));
      });
      top += h * ROW + BAND_GAP;
    });
    return positions;
  }

  function productElements(data) {
    var els = data.groups.map(function (g) {
      return { group: "nodes", data: { id: g.id, label: g.label }, classes: "domain" };
    });
    data.nodes.forEach(function (n) {
      var label = n.label + (n.badge ? "\n" + n.badge.label : "");
      els.push({
        group: "nodes",
        data: Object.assign({}, n, { label: label, colour: STATUS_COLOURS[n.status] || "#0d6efd" }),
        classes: (n.root ? "root " : "") + (n.hidden ? "hidden" : "product")
      });
    });
    data.edges.forEach(function (e) {
      // observed: seen in the query logs, not declared (?observed=1)
      els.push({ group: "edges", data: e, classes: e.observed ? "observed" : e.approved ? "" : "unapproved" });
    });
    return els;
  }

  var baseStyle = [
    { selector: "node", style: {
      "label": "data(label)", "font-size": 12, "text-wrap": "wrap", "text-max-width": 180,
      "text-valign": "center", "text-halign": "center", "min-zoomed-font-size": 7 } },
    { selector: "node.product, node.hidden", style: {
      "shape": "round-rectangle", "width": 200, "height": 42, "background-color": "#fff",
      "border-width": 3, "border-color": "data(colour)" } },
    { selector: "node.hidden", style: { "border-style": "dashed", "color": "#6c757d" } },
    { selector: "node.root", style: { "background-color": "#e7f1ff", "border-width": 5 } },
    { selector: "node.domain", style: {
      "shape": "round-rectangle", "background-color": "#f1f3f5", "background-opacity": 0.6,
      "border-color": "#ced4da", "text-valign": "top", "text-halign": "center", "font-weight": "bold",
      "padding": 14 } },
    { selector: "edge", style: {
      "width": 2, "line-color": "#6c757d", "target-arrow-color": "#6c757d",
      "target-arrow-shape": "triangle", "curve-style": "bezier" } },
    { selector: "edge.unapproved", style: { "line-style": "dashed", "line-color": "#dc3545",
      "target-arrow-color": "#dc3545" } },
    { selector: "edge.observed", style: { "line-style": "dotted", "line-color": "#0d6efd",
      "target-arrow-color": "#0d6efd" } }
  ];

  // Zoom limits: fitting two nodes would blow their labels up to three times their size, and
  // fitting two hundred would shrink them to dots. The first view is clamped between these two
  // (labels 12 px: 9 to 16 px on screen); past them one zooms and pans (min/max below).
  var MIN_ZOOM = 0.1, MAX_ZOOM = 2, FIRST_MIN = 0.75, FIRST_MAX = 1.3;

  function readable(cy) {
    var z = cy.zoom();
    if (z > FIRST_MAX) {
      cy.zoom(FIRST_MAX);
      cy.center();
    } else if (z < FIRST_MIN) {
      var root = cy.nodes(".root");
      cy.zoom(FIRST_MIN);
      cy.center(root.length ? root : undefined);
    }
  }

  // Search to focus: the form next to a graph finds the nodes whose name holds what is typed,
  // marks them, and centres the next one at a readable zoom (Enter again: the one after).
  // The count is said in a live region, so it works by keyboard and with a screen reader.
  function searchToFocus(cy, form) {
    var input = form.querySelector("input[type=search]");
    var status = form.querySelector("[data-graph-search-status]");
    var last = null, at = -1;
    cy.style().selector("node.found").style({
      "border-color": "#d63384", "border-width": 6, "border-style": "solid"
    }).update();
    form.hidden = false;
    form.addEventListener("submit", function (evt) {
      evt.preventDefault();
      var q = input.value.trim().toLowerCase();
      cy.nodes(".found").removeClass("found");
      if (!q) { status.textContent = ""; last = null; return; }
      var found = cy.nodes().filter(function (n) {
        return !n.hasClass("domain") && String(n.data("label")).toLowerCase().indexOf(q) !== -1;
      });
      if (!found.length) {
        status.textContent = "Nothing in the graph matches \u201c" + input.value.trim() + "\u201d.";
        last = null;
        return;
      }
      at = q === last ? (at + 1) % found.length : 0;
      last = q;
      found.addClass("found");
      var node = found[at];
      cy.zoom(Math.max(cy.zoom(), 1));
      cy.center(node);
      status.textContent = String(node.data("label")).split("\n")[0] + " (" + (at + 1) + " of " +
        found.length + (found.length > 1 ? "; Enter for the next)" : ")");
    });
  }

  function draw(container, elements, layout, style) {
    // Cytoscape injects a <style> element unless one with this id exists; the Content Security
    // Policy forbids inline styles, so portal.css carries its one rule and this marks it done.
    if (!document.getElementById("__________cytoscape_stylesheet")) {
      var marker = document.createElement("meta");
      marker.id = "__________cytoscape_stylesheet";
      document.head.appendChild(marker);
    }
    var cy = cytoscape({
      container: container, elements: elements, layout: layout, style: style,
      wheelSensitivity: 0.3, minZoom: MIN_ZOOM, maxZoom: MAX_ZOOM
    });
    readable(cy);
    cy.on("tap", "node", function (evt) {
      var url = evt.target.data("url");
      if (url) { window.location.assign(url); }
    });
    cy.on("mouseover", "node", function (evt) {
      container.style.cursor = evt.target.data("url") ? "pointer" : "default";
    });
    cy.on("mouseout", "node", function () { container.style.cursor = "default"; });
    document.querySelectorAll("[data-graph-fit='#" + container.id + "']").forEach(function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { cy.fit(undefined, 30); });
    });
    document.querySelectorAll("[data-graph-search='#" + container.id + "']").forEach(function (f) {
      searchToFocus(cy, f);
    });
    window.meshGraph = cy;  // for the browser tests and the curious
    container.dataset.ready = "true";
    return cy;
  }

  function load(container, build) {
    fetch(container.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(build)
      .catch(function (err) {
        container.textContent = "The graph could not be loaded (" + err.message + ").";
      });
  }

  var product = document.getElementById("lineage-graph");
  if (product) {
    load(product, function (data) {
      var positions = layered(data);
      draw(product, productElements(data), {
        name: "preset", positions: function (n) { return positions[n.id()]; }, fit: true, padding: 30
      }, baseStyle);
    });
  }

  var mesh = document.getElementById("mesh-graph");
  if (mesh) {
    load(mesh, function (data) {
      // Observed edges (?observed=1): seen in the query logs, not declared; drawn dotted.
      var observed = data.observed_edges || [];
      var max = Math.max.apply(null, [1].concat(data.edges.concat(observed).map(function (e) { return e.weight; })));
      function edge(kind) {
        return function (e) {
          return { group: "edges", classes: kind,
            data: Object.assign({}, e, { w: 1 + 7 * e.weight / max, label: String(e.weight) }) };
        };
      }
      var els = data.nodes.map(function (n) {
        return { group: "nodes", data: Object.assign({}, n, {
          label: n.label + " (" + n.products + ")", size: 36 + 8 * Math.sqrt(n.products) }) };
      }).concat(data.edges.map(edge("declared")), observed.map(edge("observed")));
      draw(mesh, els, { name: "circle", padding: 40, avoidOverlap: true, spacingFactor: 0.8 }, [
        { selector: "node", style: { "label": "data(label)", "width": "data(size)", "height": "data(size)",
          "background-color": "#0d6efd", "color": "#212529", "text-valign": "bottom", "text-margin-y": 6,
          "font-size": 15, "font-weight": "bold" } },
        { selector: "edge", style: { "width": "data(w)", "label": "data(label)", "font-size": 14,
          "line-color": "#6c757d", "target-arrow-color": "#6c757d", "target-arrow-shape": "triangle",
          "curve-style": "bezier", "text-background-color": "#fff", "text-background-opacity": 1 } },
        { selector: "edge.observed", style: { "line-style": "dotted", "line-color": "#0d6efd",
          "target-arrow-color": "#0d6efd" } }
      ]);
    });
  }
})();
