/*
 * gridgov map: districts, streets, communities and grids on a Leaflet map,
 * a search box and a panel with the chosen region (a bottom sheet on phones).
 *
 * No build step and no inline script: the page passes URLs and settings in
 * data-* attributes of #map-app, and the translated labels in data-* attributes
 * of #map-labels, so the text follows the active language.
 *
 * The search box also takes coordinates ("32.105, 118.85" as latitude, longitude;
 * "118.85 32.105" when the first number is above 90; a "gcj02:" prefix for GCJ-02
 * points from Chinese map apps) and asks the locate API for the grid holding them.
 */
(function () {
  "use strict";

  const app = document.getElementById("map-app");
  const L = window.L;
  const { el, getJSON } = window.gridgov;
  if (!app || !L) {
    return;
  }
  const cfg = app.dataset;
  const T = document.getElementById("map-labels").dataset;
  const lang = document.documentElement.lang || "zh-hans";
  const locale = lang.startsWith("zh") ? "zh-CN" : lang;
  const fmtInt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const fmtDec = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  const LEVELS = ["district", "street", "community", "grid"];
  const LEVEL_RANK = { district: 0, street: 1, community: 2, grid: 3 };
  const LAYER_LABEL = {
    district: T.layerDistricts,
    street: T.layerStreets,
    community: T.layerCommunities,
    grid: T.layerGrids,
  };
  // Outlines for the levels above grids; grids are filled.
  const STYLE = {
    district: { color: "#173a6b", weight: 3, opacity: 0.9, fill: true, fillOpacity: 0 },
    street: { color: "#6c4a9e", weight: 2.25, opacity: 0.85, dashArray: "8 5", fill: true, fillOpacity: 0 },
    community: { color: "#23775b", weight: 1.5, opacity: 0.9, dashArray: "3 4", fill: true, fillOpacity: 0 },
    grid: { color: "#2b5f95", weight: 1, opacity: 0.9, fill: true, fillOpacity: 0.22 },
  };
  const GRID_FILLS = ["#5b9bd5", "#70ad8f", "#e3a75b", "#9b87c9", "#d98873", "#5fb3b3", "#b5a35a"];
  const SELECTED = { color: "#d9480f", weight: 3.5, opacity: 1, dashArray: null };
  const PANE_Z = { district: 401, street: 402, community: 403, grid: 410 };
  // A grid gets a permanent label once it is at least this big on screen (pixels).
  const LABEL_MIN_WIDTH = 76;
  const LABEL_MIN_HEIGHT = 30;
  const LABEL_MAX = 400;
  const PHONE_QUERY = window.matchMedia("(max-width: 767px)");
  const DEFAULT_VIEW = { center: [32.1, 118.9], zoom: 11 };

  const statusEl = document.getElementById("map-status");
  const panel = document.getElementById("region-panel");
  const staffSection = document.getElementById("staff-section");
  const staffList = document.getElementById("staff-list");
  const form = document.getElementById("region-search-form");
  const input = document.getElementById("region-search");
  const results = document.getElementById("region-search-results");
  const $ = (selector) => panel.querySelector(selector);

  // ---------------------------------------------------------------- helpers

  function urlFor(template, code) {
    return template.replace("CODE", encodeURIComponent(code));
  }

  function levelLabel(level) {
    const key = "level" + level.charAt(0).toUpperCase() + level.slice(1);
    return T[key] || level;
  }

  function gridTypeLabel(type) {
    if (type === "base") return T.gridTypeBase;
    if (type === "dedicated") return T.gridTypeDedicated;
    return type || "";
  }

  function formatArea(m2) {
    if (m2 === null || m2 === undefined) {
      return T.notRecorded;
    }
    if (m2 >= 1e6) {
      return T.areaKm2.replace("{value}", fmtDec.format(m2 / 1e6));
    }
    return T.areaM2.replace("{value}", fmtInt.format(m2));
  }

  function hashIndex(text, size) {
    let h = 0;
    for (let i = 0; i < text.length; i += 1) {
      h = (h * 31 + text.charCodeAt(i)) >>> 0;
    }
    return h % size;
  }

  function setStatus(text) {
    if (text) {
      statusEl.textContent = text;
      statusEl.hidden = false;
    } else {
      statusEl.textContent = "";
      statusEl.hidden = true;
    }
  }

  // ---------------------------------------------------------------- the map

  const map = L.map("map", {
    zoomControl: false,
    attributionControl: Boolean(cfg.tileUrl),
    zoomSnap: 0.25,
    maxZoom: 20,
    worldCopyJump: false,
  });
  L.control.zoom({ position: "topright" }).addTo(map);
  map.setView(DEFAULT_VIEW.center, DEFAULT_VIEW.zoom);

  const overlays = {};
  if (cfg.tileUrl) {
    const tiles = L.tileLayer(cfg.tileUrl, {
      attribution: cfg.tileAttribution || "",
      maxZoom: 20,
      maxNativeZoom: 18,
    });
    tiles.addTo(map);
    overlays[T.layerTiles] = tiles;
  } else {
    map.getContainer().classList.add("map--plain");
  }

  const groups = {};
  const registry = new Map(); // code -> { layer, level, props, label }
  LEVELS.forEach((level) => {
    const pane = map.createPane("pane-" + level);
    pane.style.zIndex = String(PANE_Z[level]);
    groups[level] = L.featureGroup().addTo(map);
    overlays[LAYER_LABEL[level]] = groups[level];
  });
  L.control.layers(null, overlays, { position: "topright", collapsed: true }).addTo(map);

  function styleFor(level, props) {
    const base = Object.assign({ pane: "pane-" + level }, STYLE[level]);
    if (level === "grid") {
      base.fillColor = GRID_FILLS[hashIndex(props.code, GRID_FILLS.length)];
      base.className = "grid-polygon grid-" + props.code;
    } else {
      base.className = "region-outline region-" + level + " region-" + props.code;
    }
    return base;
  }

  function labelNode(props, withLevel) {
    const node = el("span", "map-label__inner");
    if (withLevel) {
      node.appendChild(el("span", "map-label__level", levelLabel(props.level)));
    }
    node.appendChild(el("span", "map-label__name", props.name));
    node.appendChild(el("span", "map-label__code", props.code));
    return node;
  }

  function bindHoverTooltip(layer, props) {
    layer.bindTooltip(labelNode(props, true), {
      sticky: true,
      direction: "top",
      className: "map-hover",
      opacity: 1,
    });
  }

  function addFeatures(level, collection) {
    if (!collection || !Array.isArray(collection.features) || collection.features.length === 0) {
      return;
    }
    const geo = L.geoJSON(collection, {
      pane: "pane-" + level,
      style: (feature) => styleFor(level, feature.properties),
      onEachFeature: (feature, layer) => {
        const props = feature.properties;
        registry.set(props.code, { layer, level, props, label: null });
        bindHoverTooltip(layer, props);
        layer.on("click", (event) => {
          L.DomEvent.stopPropagation(event);
          select(props.code, { fit: false }).then(() => ensureVisible(props.code));
        });
      },
    });
    geo.addTo(groups[level]);
  }

  // Permanent labels (name and code) for the grids big enough on screen. They are
  // standalone tooltips in their own layer, so the grids keep their hover tooltips.
  const labels = L.layerGroup().addTo(map);

  function updateLabels() {
    if (!map.hasLayer(groups.grid)) {
      labels.clearLayers();
      registry.forEach((entry) => {
        entry.label = null;
      });
      return;
    }
    const zoom = map.getZoom();
    const view = map.getBounds().pad(0.1);
    let shown = 0;
    registry.forEach((entry) => {
      if (entry.level !== "grid") {
        return;
      }
      let want = false;
      const bounds = entry.layer.getBounds();
      if (shown < LABEL_MAX && view.intersects(bounds)) {
        const sw = map.project(bounds.getSouthWest(), zoom);
        const ne = map.project(bounds.getNorthEast(), zoom);
        want = Math.abs(ne.x - sw.x) >= LABEL_MIN_WIDTH && Math.abs(sw.y - ne.y) >= LABEL_MIN_HEIGHT;
      }
      if (want) {
        shown += 1;
      }
      if (want === Boolean(entry.label)) {
        return;
      }
      if (want) {
        const at = entry.props.label
          ? L.latLng(entry.props.label[1], entry.props.label[0])
          : entry.layer.getCenter();
        entry.label = L.tooltip({
          permanent: true,
          direction: "center",
          className: "grid-label",
          opacity: 1,
          interactive: false,
        })
          .setLatLng(at)
          .setContent(labelNode(entry.props, false));
        labels.addLayer(entry.label);
      } else {
        labels.removeLayer(entry.label);
        entry.label = null;
      }
    });
  }

  map.on("zoomend moveend", updateLabels);
  map.on("overlayadd overlayremove", (event) => {
    if (event.layer === groups.grid) {
      updateLabels();
    }
  });

  let animateFits = false; // the first view is set without animation

  function fitOptions() {
    const pad = 24;
    const options = {
      paddingTopLeft: [pad, pad],
      paddingBottomRight: [pad, pad],
      maxZoom: 18,
      animate: animateFits,
    };
    if (!panel.hidden) {
      if (PHONE_QUERY.matches) {
        options.paddingBottomRight = [pad, pad + panel.offsetHeight];
      } else {
        options.paddingTopLeft = [pad + panel.offsetWidth + 12, pad];
      }
    }
    return options;
  }

  // Fit the grids (the level people work at) when there are any, else every region.
  // Regions above the user's own are sent for context only, so they do not set the view.
  function fitAll() {
    const bounds = L.latLngBounds([]);
    const levels = groups.grid.getLayers().length ? ["grid"] : LEVELS;
    levels.forEach((level) => {
      if (groups[level].getLayers().length) {
        bounds.extend(groups[level].getBounds());
      }
    });
    if (bounds.isValid()) {
      map.fitBounds(bounds, fitOptions());
      return true;
    }
    return false;
  }

  // Pan (and zoom out if needed, never in) so that a region is not hidden by the panel.
  function ensureVisible(code) {
    const entry = registry.get(code);
    if (!entry || panel.hidden) {
      return;
    }
    const options = fitOptions();
    const size = map.getSize();
    const topLeft = L.point(options.paddingTopLeft);
    const bottomRight = size.subtract(L.point(options.paddingBottomRight));
    const free = L.latLngBounds(
      map.containerPointToLatLng([topLeft.x, bottomRight.y]),
      map.containerPointToLatLng([bottomRight.x, topLeft.y]),
    );
    const bounds = entry.layer.getBounds();
    if (free.contains(bounds)) {
      return;
    }
    // A region bigger than the free area (a street clicked inside) is left as it is.
    const zoom = map.getZoom();
    const sw = map.project(bounds.getSouthWest(), zoom);
    const ne = map.project(bounds.getNorthEast(), zoom);
    if (ne.x - sw.x > bottomRight.x - topLeft.x || sw.y - ne.y > bottomRight.y - topLeft.y) {
      return;
    }
    options.maxZoom = zoom;
    map.fitBounds(bounds, options);
  }

  function fitBbox(bbox) {
    if (!bbox || bbox.length !== 4) {
      return false;
    }
    map.fitBounds(L.latLngBounds([bbox[1], bbox[0]], [bbox[3], bbox[2]]), fitOptions());
    return true;
  }

  // ---------------------------------------------------------------- selection and panel

  let selected = null;
  let selectSeq = 0;
  let lastSelectError = null;

  // The selected region is outlined in a pane above every level, so the outline of a
  // community or street shows over its grids; the region's own path gets "is-selected".
  const selectedPane = map.createPane("pane-selected");
  selectedPane.style.zIndex = "420";
  selectedPane.style.pointerEvents = "none";
  let selectedOutline = null;

  function highlight(code) {
    if (selectedOutline) {
      selectedOutline.remove();
      selectedOutline = null;
    }
    if (selected && registry.has(selected)) {
      const node = registry.get(selected).layer.getElement();
      if (node) node.classList.remove("is-selected");
    }
    selected = code;
    if (code && registry.has(code)) {
      const entry = registry.get(code);
      const node = entry.layer.getElement();
      if (node) node.classList.add("is-selected");
      selectedOutline = L.geoJSON(entry.layer.toGeoJSON(), {
        pane: "pane-selected",
        interactive: false,
        style: () => Object.assign({ fill: false, className: "selected-outline" }, SELECTED),
      }).addTo(map);
    }
  }

  function rememberFocus(code) {
    if (!window.history || !window.history.replaceState) {
      return;
    }
    const url = new URL(window.location.href);
    if (code) {
      url.searchParams.set("focus", code);
    } else {
      url.searchParams.delete("focus");
    }
    window.history.replaceState(null, "", url.toString());
  }

  function showMessage(text) {
    const node = $(".region-message");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function fillPanel(props) {
    const levelNode = $(".region-level");
    levelNode.textContent = levelLabel(props.level);
    levelNode.className = "badge region-level badge--" + props.level;
    $(".region-name").textContent = props.name;
    $(".region-code").textContent = props.code;
    $(".region-link").href = urlFor(cfg.regionUrl, props.code);
  }

  function resetPanel(props) {
    fillPanel(props);
    $(".region-grid-type").hidden = true;
    $(".region-area").textContent = T.loading;
    $(".region-households").textContent = T.loading;
    $(".region-unit-row").hidden = true;
    $(".region-ancestors").replaceChildren();
    $(".region-staff-link").hidden = true;
    staffSection.hidden = true;
    staffList.replaceChildren();
    showMessage("");
    panel.hidden = false;
    panel.classList.add("is-loading");
  }

  function renderDetail(d) {
    fillPanel(d);
    const gridType = $(".region-grid-type");
    gridType.hidden = !d.grid_type;
    gridType.textContent = gridTypeLabel(d.grid_type);
    $(".region-area").textContent = formatArea(d.area_m2);
    $(".region-households").textContent = fmtInt.format(d.households || 0);
    $(".region-unit-row").hidden = !d.responsible_unit;
    $(".region-unit").textContent = d.responsible_unit || "";
    const path = $(".region-ancestors");
    path.replaceChildren();
    (d.ancestors || []).forEach((a) => {
      const item = el("li");
      const button = el("button", "link-button", a.name);
      button.type = "button";
      button.title = levelLabel(a.level) + " " + a.code;
      button.addEventListener("click", () => select(a.code, { fit: true }));
      item.appendChild(button);
      path.appendChild(item);
    });
    const staffLink = $(".region-staff-link");
    staffLink.hidden = !d.staff_visible;
    staffLink.href = d.staff_visible ? urlFor(cfg.staffUrl, d.code) : "#";
    panel.classList.remove("is-loading");
  }

  async function loadStaff(code, seq) {
    staffSection.hidden = false;
    staffList.replaceChildren(el("li", "staff-list__empty", T.loading));
    staffList.setAttribute("aria-busy", "true");
    try {
      const data = await getJSON(urlFor(cfg.staffApiUrl, code));
      if (seq !== selectSeq) {
        return;
      }
      staffList.replaceChildren();
      if (!data.staff || data.staff.length === 0) {
        staffList.appendChild(el("li", "staff-list__empty", T.noStaff));
      }
      (data.staff || []).forEach((s) => {
        const item = el("li", "staff-list__item");
        item.dataset.username = s.username;
        item.dataset.role = s.role;
        const head = el("div", "staff-list__head");
        head.appendChild(el("span", "staff-list__name", s.name));
        head.appendChild(el("span", "badge badge--role", s.role_label));
        item.appendChild(head);
        const meta = el("div", "staff-list__meta");
        if (s.region && s.region.code !== code) {
          meta.appendChild(el("span", "staff-list__region", s.region.name));
        }
        if (s.work_phone) {
          const phone = el("span", "staff-list__phone masked", s.work_phone);
          phone.title = T.maskedPhone;
          meta.appendChild(phone);
        }
        if (meta.childNodes.length) {
          item.appendChild(meta);
        }
        staffList.appendChild(item);
      });
    } catch (err) {
      if (seq === selectSeq) {
        staffList.replaceChildren(el("li", "staff-list__empty", T.staffFailed + " " + err.message));
      }
    } finally {
      if (seq === selectSeq) {
        staffList.removeAttribute("aria-busy");
      }
    }
  }

  async function select(code, options) {
    const fit = Boolean(options && options.fit);
    const seq = ++selectSeq;
    const entry = registry.get(code);
    highlight(code);
    resetPanel(entry ? entry.props : { code, name: code, level: levelFromCode(code) });
    rememberFocus(code);
    if (fit && entry) {
      map.fitBounds(entry.layer.getBounds(), fitOptions());
    }
    let detail;
    try {
      detail = await getJSON(urlFor(cfg.detailUrl, code) + "?geometry=false");
    } catch (err) {
      lastSelectError = err;
      if (seq === selectSeq) {
        panel.classList.remove("is-loading");
        $(".region-area").textContent = "–";
        $(".region-households").textContent = "–";
        showMessage(T.detailFailed + " " + err.message);
      }
      return false;
    }
    if (seq !== selectSeq) {
      return true;
    }
    renderDetail(detail);
    if (fit && !entry) {
      fitBbox(detail.bbox);
    }
    if (detail.staff_visible) {
      loadStaff(code, seq);
    }
    return true;
  }

  function closePanel() {
    selectSeq += 1;
    panel.hidden = true;
    highlight(null);
    rememberFocus(null);
  }

  function levelFromCode(code) {
    return { 6: "district", 9: "street", 12: "community", 15: "grid" }[code.length] || "grid";
  }

  document.getElementById("region-panel-close").addEventListener("click", closePanel);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden && !results.contains(document.activeElement)
        && document.activeElement !== input) {
      closePanel();
    }
  });

  // ---------------------------------------------------------------- search

  let searchSeq = 0;
  let searchTimer = null;

  function hideResults() {
    results.hidden = true;
    results.replaceChildren();
    input.setAttribute("aria-expanded", "false");
  }

  // One search result: a button that opens the region.
  function resultItem(row) {
    const item = el("li");
    const button = el("button", "map-search__result");
    button.type = "button";
    button.dataset.code = row.code;
    button.appendChild(el("span", "map-search__name", row.name));
    button.appendChild(el("span", "map-search__meta", levelLabel(row.level) + " · " + row.code));
    button.addEventListener("click", () => choose(row));
    item.appendChild(button);
    return item;
  }

  function showResults(rows) {
    results.replaceChildren();
    if (rows.length === 0) {
      results.appendChild(el("li", "map-search__empty", T.noResults));
    }
    rows.forEach((row) => results.appendChild(resultItem(row)));
    results.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  // ---------------------------------------------------------------- coordinates

  // "[gcj02:] number, number": a comma (ASCII or full-width), semicolon, slash or spaces between.
  const COORDINATES =
    /^\s*(?:(gcj-?02|wgs-?84)\s*[:\uff1a]\s*)?([-+]?\d+(?:\.\d+)?)\s*(?:[,;\/\uff0c\uff1b\u3001]\s*|\s+)([-+]?\d+(?:\.\d+)?)\s*$/i;

  // "32.105, 118.85" -> { lat: 32.105, lon: 118.85, crs: "wgs84" }; the first number is the
  // latitude unless it is clearly a longitude (above 90). Null for anything else.
  function parseCoordinates(text) {
    const match = COORDINATES.exec(text);
    if (!match) {
      return null;
    }
    const crs = match[1] && match[1].toLowerCase().startsWith("gcj") ? "gcj02" : "wgs84";
    const first = Number(match[2]);
    const second = Number(match[3]);
    let lat = first;
    let lon = second;
    if (Math.abs(first) > 90 && Math.abs(second) <= 90) {
      lat = second;
      lon = first;
    }
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      return null;
    }
    return { lat, lon, crs };
  }

  function locateLabel(point) {
    const template = point.crs === "gcj02" ? T.locateAtGcj02 : T.locateAt;
    return template.replace("{lat}", String(point.lat)).replace("{lon}", String(point.lon));
  }

  let pointMarker = null;

  function markPoint(lat, lon) {
    if (pointMarker) {
      pointMarker.remove();
    }
    pointMarker = L.circleMarker([lat, lon], {
      pane: "pane-selected",
      radius: 7,
      color: "#d9480f",
      weight: 3,
      fillColor: "#fff",
      fillOpacity: 1,
      interactive: false,
      className: "search-point",
    }).addTo(map);
    pointMarker.bindTooltip(T.point, { direction: "top" });
  }

  function showNotice(text, nearest) {
    results.replaceChildren(el("li", "map-search__empty map-search__notice", text));
    if (nearest && nearest.code) {
      results.appendChild(resultItem(nearest));
    }
    results.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  function offerLocate(point) {
    results.replaceChildren();
    const item = el("li");
    const button = el("button", "map-search__result map-search__locate");
    button.type = "button";
    button.appendChild(el("span", "map-search__name", locateLabel(point)));
    button.addEventListener("click", () => locatePoint(point));
    item.appendChild(button);
    results.appendChild(item);
    results.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  // Ask the locate API for the grid holding the point; select it, or say why there is none
  // (outside every grid the API's message names the nearest grid and its distance).
  async function locatePoint(point) {
    const seq = ++searchSeq;
    hideResults();
    setStatus(T.locating);
    const params = new URLSearchParams({ lat: String(point.lat), lon: String(point.lon) });
    if (point.crs !== "wgs84") {
      params.set("crs", point.crs);
    }
    let answer;
    try {
      answer = await getJSON(cfg.locateUrl + "?" + params.toString());
    } catch (err) {
      if (seq !== searchSeq) {
        return;
      }
      setStatus("");
      const detail = err.detail || {};
      if (typeof detail.lat === "number" && typeof detail.lon === "number") {
        markPoint(detail.lat, detail.lon);
        map.setView([detail.lat, detail.lon], Math.max(map.getZoom(), 14), { animate: animateFits });
      }
      showNotice(err.message || T.locateFailed, detail.nearest);
      return;
    }
    if (seq !== searchSeq) {
      return;
    }
    setStatus("");
    markPoint(answer.lat, answer.lon);
    await select(answer.grid.code, { fit: true });
  }

  function choose(row) {
    hideResults();
    input.value = row.name;
    select(row.code, { fit: true });
  }

  async function runSearch(pick) {
    const q = input.value.trim();
    if (!q) {
      searchSeq += 1;
      hideResults();
      return;
    }
    const point = parseCoordinates(q);
    if (point) {
      if (pick) {
        locatePoint(point);
      } else {
        searchSeq += 1;
        offerLocate(point);
      }
      return;
    }
    const seq = ++searchSeq;
    try {
      const rows = await getJSON(cfg.searchUrl + "?" + new URLSearchParams({ q, limit: "30" }).toString());
      if (seq !== searchSeq) {
        return;
      }
      rows.sort((a, b) => (LEVEL_RANK[a.level] - LEVEL_RANK[b.level]) || a.code.localeCompare(b.code));
      const exact = rows.find((r) => r.code === q || r.name === q);
      if (pick && (exact || rows.length === 1)) {
        choose(exact || rows[0]);
        return;
      }
      showResults(rows);
    } catch (err) {
      if (seq === searchSeq) {
        results.replaceChildren(el("li", "map-search__empty", T.searchFailed + " " + err.message));
        results.hidden = false;
      }
    }
  }

  input.addEventListener("input", () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => runSearch(false), 250);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.clearTimeout(searchTimer);
    runSearch(true);
  });

  function resultButtons() {
    return Array.from(results.querySelectorAll("button"));
  }

  form.addEventListener("keydown", (event) => {
    const buttons = resultButtons();
    const index = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && buttons.length) {
      event.preventDefault();
      buttons[Math.min(index + 1, buttons.length - 1)].focus();
    } else if (event.key === "ArrowUp" && buttons.length) {
      event.preventDefault();
      if (index <= 0) {
        input.focus();
      } else {
        buttons[index - 1].focus();
      }
    } else if (event.key === "Escape") {
      hideResults();
      input.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!form.contains(event.target)) {
      hideResults();
    }
  });

  // ---------------------------------------------------------------- start

  async function start() {
    setStatus(T.loadingMap);
    const answers = await Promise.allSettled(
      LEVELS.map((level) => getJSON(cfg.mapUrl + "?" + new URLSearchParams({ level }).toString())),
    );
    let failure = null;
    answers.forEach((answer, i) => {
      if (answer.status === "fulfilled") {
        addFeatures(LEVELS[i], answer.value);
      } else {
        failure = answer.reason;
      }
    });
    if (failure) {
      setStatus(T.loadFailed + " " + failure.message);
    } else if (registry.size === 0) {
      setStatus(T.noRegions);
    } else {
      setStatus("");
    }
    const focus = (cfg.focus || "").trim();
    let focused = false;
    if (focus) {
      focused = await select(focus, { fit: true });
      if (!focused) {
        if (lastSelectError && window.console) {
          window.console.warn("gridgov map: focus " + focus + ": " + lastSelectError.message);
        }
        closePanel();
        setStatus(T.focusMissing);
      }
    }
    if (!focused) {
      fitAll();
    }
    updateLabels();
    animateFits = true;
    app.classList.add("is-ready");
    app.dataset.ready = "true";
  }

  start();
})();
