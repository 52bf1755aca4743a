/*
 * gridgov case screens: the small map of a case, the map the hotline operator clicks, the
 * phone's position and the grid it lies in, the category picker with search, and forms that
 * are sent only once.
 *
 * No build step and no inline script: settings and translated words come in data-* attributes,
 * the categories in a <script type="application/json"> block. Every form works without this
 * file (latitude and longitude are ordinary inputs, the category an ordinary select).
 */
(function () {
  "use strict";

  const L = window.L;
  const { el, getJSON } = window.gridgov;

  function readJSON(id) {
    const node = id ? document.getElementById(id) : null;
    if (!node) {
      return null;
    }
    try {
      return JSON.parse(node.textContent);
    } catch (_err) {
      return null;
    }
  }

  // ---------------------------------------------------------------- forms sent once

  // A second click (or Enter) while the first submission is on its way does nothing; the
  // server would answer "done already" anyway, thanks to the form's one-time token.
  document.querySelectorAll("form[data-once]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent === "true") {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "true";
      window.setTimeout(() => {
        form.querySelectorAll("button[type=submit]").forEach((button) => {
          button.disabled = true;
          button.setAttribute("aria-busy", "true");
        });
      }, 0);
    });
  });
  // Coming back with the browser's back button shows the page as it was left: enable it again.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("form[data-once]").forEach((form) => {
      delete form.dataset.sent;
      form.querySelectorAll("button[type=submit]").forEach((button) => {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      });
    });
  });

  // ---------------------------------------------------------------- maps

  const GRID_STYLE = { color: "#2b5f95", weight: 2, opacity: 0.9, fillColor: "#5b9bd5", fillOpacity: 0.15 };
  const POINT_STYLE = { radius: 8, color: "#d9480f", weight: 3, fillColor: "#fff", fillOpacity: 1 };

  function baseMap(node, options) {
    const tileUrl = node.dataset.tileUrl;
    const map = L.map(node, Object.assign({ attributionControl: Boolean(tileUrl), zoomSnap: 0.25 }, options));
    if (tileUrl) {
      L.tileLayer(tileUrl, {
        attribution: node.dataset.tileAttribution || "",
        maxZoom: 20,
        maxNativeZoom: 18,
      }).addTo(map);
    } else {
      node.classList.add("map--plain");
    }
    return map;
  }

  function caseMap() {
    const node = document.getElementById("case-map");
    if (!node || !L) {
      return;
    }
    const lat = Number(node.dataset.lat);
    const lon = Number(node.dataset.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) {
      return;
    }
    const map = baseMap(node, { scrollWheelZoom: false, maxZoom: 20 });
    const geometry = readJSON(node.dataset.geometry);
    let fitted = false;
    if (geometry) {
      const grid = L.geoJSON(geometry, { style: () => GRID_STYLE, interactive: false }).addTo(map);
      const bounds = grid.getBounds();
      if (bounds.isValid()) {
        map.fitBounds(bounds.extend([lat, lon]), { padding: [16, 16], maxZoom: 18 });
        fitted = true;
      }
    }
    if (!fitted) {
      map.setView([lat, lon], 17);
    }
    L.circleMarker([lat, lon], Object.assign({ interactive: false, className: "case-point" }, POINT_STYLE)).addTo(map);
    node.dataset.ready = "true";
  }

  // ---------------------------------------------------------------- where: position and grid

  function setupLocation() {
    const box = document.getElementById("location");
    if (!box) {
      return null;
    }
    const T = box.dataset;
    const latInput = box.querySelector("input[name=lat]");
    const lonInput = box.querySelector("input[name=lon]");
    const status = document.getElementById("locate-status");
    const gridOut = document.getElementById("detected-grid");
    const button = document.getElementById("use-location");
    let seq = 0;

    function say(text) {
      status.textContent = text || "";
    }

    async function findGrid(lat, lon) {
      const mine = ++seq;
      gridOut.classList.remove("is-error");
      gridOut.textContent = T.findingGrid;
      delete gridOut.dataset.code;
      try {
        const params = new URLSearchParams({ lat: String(lat), lon: String(lon) });
        const answer = await getJSON(T.locateUrl + "?" + params.toString());
        if (mine !== seq) {
          return;
        }
        gridOut.textContent = T.gridFound.replace("{name}", answer.grid.name).replace("{code}", answer.grid.code);
        gridOut.dataset.code = answer.grid.code;
      } catch (err) {
        if (mine === seq) {
          gridOut.textContent = err.message;
          gridOut.classList.add("is-error");
        }
      }
    }

    function readPoint() {
      const lat = Number(String(latInput.value).trim());
      const lon = Number(String(lonInput.value).trim());
      if (latInput.value.trim() === "" || lonInput.value.trim() === "") {
        return null;
      }
      if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
        return null;
      }
      return { lat, lon };
    }

    function announce(point) {
      box.dispatchEvent(new CustomEvent("gridgov:point", { detail: point }));
    }

    function setPoint(lat, lon) {
      latInput.value = lat.toFixed(6);
      lonInput.value = lon.toFixed(6);
      findGrid(lat, lon);
      announce({ lat, lon });
    }

    function typed() {
      const point = readPoint();
      if (point) {
        findGrid(point.lat, point.lon);
        announce(point);
      }
    }
    latInput.addEventListener("change", typed);
    lonInput.addEventListener("change", typed);

    function askPosition() {
      if (!navigator.geolocation) {
        say(T.noGps);
        return;
      }
      say(T.locating);
      navigator.geolocation.getCurrentPosition(
        (position) => {
          say("");
          setPoint(position.coords.latitude, position.coords.longitude);
        },
        (error) => {
          say(error && error.code === 1 ? T.denied : T.noGps);
        },
        { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 },
      );
    }

    if (box.dataset.geolocate === "auto" && navigator.geolocation) {
      button.hidden = false;
      button.addEventListener("click", askPosition);
    }
    const start = readPoint();
    if (start) {
      findGrid(start.lat, start.lon);
    } else if (box.dataset.geolocate === "auto") {
      askPosition();
    }
    return { box, setPoint, readPoint };
  }

  function pickMap(location) {
    const node = document.getElementById("pick-map");
    if (!node || !L || !location) {
      return;
    }
    const map = baseMap(node, { maxZoom: 20 });
    map.setView([32.1, 118.9], 11);
    let marker = null;

    function mark(point) {
      if (marker) {
        marker.setLatLng([point.lat, point.lon]);
      } else {
        marker = L.circleMarker([point.lat, point.lon], Object.assign({ interactive: false, className: "case-point" }, POINT_STYLE)).addTo(map);
      }
    }

    location.box.addEventListener("gridgov:point", (event) => mark(event.detail));
    map.on("click", (event) => location.setPoint(event.latlng.lat, event.latlng.lng));
    getJSON(node.dataset.mapUrl)
      .then((collection) => {
        const layer = L.geoJSON(collection, { style: () => GRID_STYLE, interactive: false }).addTo(map);
        const start = location.readPoint();
        if (start) {
          mark(start);
          map.setView([start.lat, start.lon], 16);
        } else if (layer.getBounds().isValid()) {
          map.fitBounds(layer.getBounds(), { padding: [12, 12] });
        }
        node.dataset.ready = "true";
      })
      .catch(() => {
        node.dataset.ready = "true";
      });
  }

  // ---------------------------------------------------------------- categories

  function syncCategory(categories, value) {
    document.querySelectorAll("[data-attributes-for]").forEach((fieldset) => {
      const on = fieldset.dataset.attributesFor === value;
      fieldset.hidden = !on;
      fieldset.disabled = !on;
      fieldset.querySelectorAll("[data-required]").forEach((input) => {
        input.required = on;
      });
    });
    const chosen = categories.find((c) => c.value === value);
    const urgency = document.querySelector("select[name=urgency]");
    if (urgency && chosen) {
      Array.from(urgency.options).forEach((option) => {
        option.disabled = chosen.urgency.indexOf(option.value) === -1;
      });
      if (urgency.selectedOptions.length && urgency.selectedOptions[0].disabled) {
        urgency.value = chosen.urgency[0] || "normal";
      }
    }
  }

  function categoryPicker(picker) {
    const categories = readJSON(picker.dataset.source) || [];
    const select = picker.querySelector("select");
    const box = picker.querySelector(".category-picker__search");
    const input = picker.querySelector(".category-picker__input");
    const results = picker.querySelector(".category-picker__results");
    const labels = (document.getElementById("category-labels") || {}).dataset || {};
    if (!select || !box || !input || !results) {
      return;
    }
    box.hidden = false;
    let hits = [];

    function hide() {
      results.hidden = true;
      results.replaceChildren();
      input.setAttribute("aria-expanded", "false");
    }

    function choose(category) {
      select.value = category.value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      input.value = category.name;
      hide();
    }

    function render() {
      const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      results.replaceChildren();
      if (words.length === 0) {
        hits = [];
        hide();
        return;
      }
      hits = categories.filter((c) => words.every((w) => c.search.indexOf(w) !== -1)).slice(0, 30);
      if (hits.length === 0) {
        results.appendChild(el("li", "category-picker__empty", labels.noMatch || ""));
      }
      hits.forEach((category) => {
        const item = el("li");
        const button = el("button", "category-picker__option");
        button.type = "button";
        button.dataset.value = category.value;
        button.appendChild(el("span", "category-picker__name", category.name));
        button.appendChild(el("span", "category-picker__meta", [category.code, category.major].filter(Boolean).join(" · ")));
        button.addEventListener("click", () => choose(category));
        item.appendChild(button);
        results.appendChild(item);
      });
      results.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    input.addEventListener("input", render);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault(); // never submit the report from the search box
        if (hits.length > 0) {
          choose(hits[0]);
        }
      } else if (event.key === "Escape") {
        hide();
      } else if (event.key === "ArrowDown") {
        const first = results.querySelector("button");
        if (first) {
          event.preventDefault();
          first.focus();
        }
      }
    });
    results.addEventListener("keydown", (event) => {
      const buttons = Array.from(results.querySelectorAll("button"));
      const index = buttons.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && index < buttons.length - 1) {
        event.preventDefault();
        buttons[index + 1].focus();
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        if (index <= 0) {
          input.focus();
        } else {
          buttons[index - 1].focus();
        }
      } else if (event.key === "Escape") {
        hide();
        input.focus();
      }
    });
    select.addEventListener("change", () => syncCategory(categories, select.value));
    syncCategory(categories, select.value);
  }

  // ---------------------------------------------------------------- the report form

  function reportForm() {
    const solved = document.querySelector("input[name=solved]");
    const note = document.getElementById("solved-note");
    if (solved && note) {
      const sync = () => {
        note.hidden = !solved.checked;
      };
      solved.addEventListener("change", sync);
      sync();
    }
    const photos = document.querySelector(".photo-field input[type=file]");
    const count = document.getElementById("photo-count");
    if (photos && count) {
      photos.addEventListener("change", () => {
        const n = photos.files ? photos.files.length : 0;
        count.hidden = n === 0;
        count.textContent = (count.dataset.template || "{n}").replace("{n}", String(n));
      });
    }
  }

  // ---------------------------------------------------------------- start

  caseMap();
  document.querySelectorAll("[data-category-picker]").forEach(categoryPicker);
  pickMap(setupLocation());
  reportForm();
})();
