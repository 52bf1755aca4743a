/*
 * gridgov admin, "Generate grids": the map of a proposal (the community outline and the
 * proposed grids, each labelled with its sequence and households).
 *
 * No inline script (the admin runs under a strict content security policy): the page passes
 * the data in json_script elements (#gridgen-preview, #gridgen-community) and the settings and
 * the translated label ("{count} households") in data-* attributes of #gridgen-config, so the
 * text follows the active language. Load it after Leaflet.
 */
(function () {
  "use strict";

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function show() {
    var el = document.getElementById("gridgen-map");
    var L = window.L;
    var configNode = document.getElementById("gridgen-config");
    if (!el || !L || !configNode) {
      return;
    }
    var config = configNode.dataset;
    var preview = readJson("gridgen-preview");
    var outline = readJson("gridgen-community");
    var map = L.map(el, { preferCanvas: true, zoomSnap: 0.25 });
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19 }).addTo(map);
    }
    var bounds = null;
    if (outline) {
      var community = L.geoJSON(outline, {
        style: { color: "#333", weight: 3, fill: false }
      }).addTo(map);
      bounds = community.getBounds();
    }
    var palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"];
    var grids = L.geoJSON(preview || { type: "FeatureCollection", features: [] }, {
      style: function (feature) {
        var n = parseInt(feature.properties.code.slice(-3), 10);
        return {
          color: "#fff",
          weight: 1,
          fillColor: palette[n % palette.length],
          fillOpacity: 0.45
        };
      },
      onEachFeature: function (feature, layer) {
        var p = feature.properties;
        var label = document.createElement("span");
        var households = (config.households || "{count}").replace("{count}", p.households);
        label.textContent = p.code.slice(-3) + "\n" + households;
        layer.bindTooltip(label, {
          permanent: true,
          direction: "center",
          className: "gridgen-label"
        });
      }
    }).addTo(map);
    bounds = bounds && bounds.isValid() ? bounds : grids.getBounds();
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [10, 10] });
    } else {
      map.setView([32.1, 118.9], 13);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", show);
  } else {
    show();
  }
})();
