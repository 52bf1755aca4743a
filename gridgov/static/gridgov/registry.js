/*
 * gridgov registry screens: the map of a grid's buildings, the map that places a building or
 * component, the id-number check that fills the date of birth and sex, the statistics charts
 * (Apache ECharts), and forms that are sent only once.
 *
 * No build step and no inline script: settings and translated words come in data-* attributes,
 * data in <script type="application/json"> blocks. Every page works without this file (the
 * figures are in tables, latitude and longitude are ordinary inputs, the server checks the id
 * number and fills the date of birth and sex).
 */
(function () {
  "use strict";

  const L = window.L;
  const { el, getJSON } = window.gridgov || {};

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

  const GRID_STYLE = { color: "#2b5f95", weight: 2, opacity: 0.9, fillColor: "#5b9bd5", fillOpacity: 0.12 };
  const BUILDING_STYLE = { radius: 7, color: "#1d4f91", weight: 2, fillColor: "#ffffff", fillOpacity: 1 };
  const PEOPLE_STYLE = { radius: 8, color: "#1d4f91", weight: 2, fillColor: "#5b9bd5", fillOpacity: 0.9 };
  const PICK_STYLE = { radius: 9, color: "#d9480f", weight: 3, fillColor: "#fff", fillOpacity: 1 };

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

  function gridLayer(map, node) {
    const geometry = readJSON(node.dataset.geometry);
    if (!geometry) {
      return null;
    }
    return L.geoJSON(geometry, { style: () => GRID_STYLE, interactive: false }).addTo(map);
  }

  async function buildingsMap() {
    const node = document.getElementById("reg-map");
    if (!node || !L || !getJSON) {
      return;
    }
    const T = node.dataset;
    const status = document.getElementById("reg-map-status");
    const map = baseMap(node, { scrollWheelZoom: false, maxZoom: 20 });
    const grid = gridLayer(map, node);
    let bounds = grid ? grid.getBounds() : null;
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [12, 12], maxZoom: 18 });
    } else {
      map.setView([32.06, 118.8], 12);
    }
    try {
      const data = await getJSON(T.buildingsUrl);
      const markers = [];
      data.features.forEach((f) => {
        const [lon, lat] = f.geometry.coordinates;
        const p = f.properties;
        const marker = L.circleMarker([lat, lon], Object.assign({ className: "reg-building" }, p.people ? PEOPLE_STYLE : BUILDING_STYLE));
        const box = el("div", "reg-marker-popup");
        const link = el("a", "", p.label);
        link.href = p.url;
        box.appendChild(link);
        box.appendChild(el("div", "muted", `${p.households} ${T.householdsLabel} · ${p.people} ${T.peopleLabel}`));
        marker.bindPopup(box);
        marker.bindTooltip(el("span", "", p.label)); // a text node: a string would be HTML
        marker.addTo(map);
        markers.push(marker);
      });
      if (markers.length) {
        const group = L.featureGroup(markers);
        bounds = bounds && bounds.isValid() ? bounds.extend(group.getBounds()) : group.getBounds();
        map.fitBounds(bounds, { padding: [16, 16], maxZoom: 18 });
        status.textContent = "";
      } else {
        status.textContent = T.empty;
      }
      node.dataset.ready = "true";
      node.dataset.markers = String(markers.length);
    } catch (_err) {
      status.textContent = T.failed;
    }
  }

  function pickMap() {
    const node = document.getElementById("reg-pick-map");
    const form = document.getElementById("record-form");
    if (!node || !L || !form) {
      return;
    }
    const box = document.getElementById("reg-pick");
    const latInput = form.querySelector("input[name=lat]");
    const lonInput = form.querySelector("input[name=lon]");
    if (!latInput || !lonInput) {
      box.hidden = true;
      return;
    }
    const map = baseMap(node, { scrollWheelZoom: false, maxZoom: 20 });
    const grid = gridLayer(map, box);
    let marker = null;

    function place(lat, lon, move) {
      if (!Number.isFinite(lat) || !Number.isFinite(lon)) {
        return;
      }
      if (marker) {
        marker.setLatLng([lat, lon]);
      } else {
        marker = L.circleMarker([lat, lon], Object.assign({ interactive: false }, PICK_STYLE)).addTo(map);
      }
      if (move) {
        map.setView([lat, lon], Math.max(map.getZoom() || 17, 17));
      }
    }

    function fromInputs() {
      return [Number(String(latInput.value).trim()), Number(String(lonInput.value).trim())];
    }

    const [lat, lon] = fromInputs();
    const bounds = grid ? grid.getBounds() : null;
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [12, 12], maxZoom: 18 });
    } else if (Number.isFinite(lat) && Number.isFinite(lon) && latInput.value) {
      map.setView([lat, lon], 17);
    } else {
      map.setView([32.06, 118.8], 12);
    }
    if (latInput.value && lonInput.value) {
      place(lat, lon, false);
    }
    map.on("click", (event) => {
      latInput.value = event.latlng.lat.toFixed(6);
      lonInput.value = event.latlng.lng.toFixed(6);
      place(event.latlng.lat, event.latlng.lng, false);
    });
    [latInput, lonInput].forEach((input) =>
      input.addEventListener("change", () => {
        const [a, b] = fromInputs();
        place(a, b, true);
      })
    );
    const button = document.getElementById("reg-use-location");
    if (button && navigator.geolocation) {
      button.hidden = false;
      button.addEventListener("click", () => {
        navigator.geolocation.getCurrentPosition(
          (position) => {
            latInput.value = position.coords.latitude.toFixed(6);
            lonInput.value = position.coords.longitude.toFixed(6);
            place(position.coords.latitude, position.coords.longitude, true);
          },
          () => {
            button.textContent = box.dataset.noGps;
          },
          { enableHighAccuracy: true, timeout: 10000 }
        );
      });
    }
    node.dataset.ready = "true";
  }

  // ---------------------------------------------------------------- id number (GB 11643)

  const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const CHECK = "10X98765432";

  function idFacts(raw) {
    const text = String(raw || "").replace(/\s+/g, "").toUpperCase();
    if (!/^[0-9]{17}[0-9X]$/.test(text)) {
      return null;
    }
    let sum = 0;
    for (let i = 0; i < 17; i += 1) {
      sum += Number(text[i]) * WEIGHTS[i];
    }
    if (CHECK[sum % 11] !== text[17]) {
      return null;
    }
    const y = Number(text.slice(6, 10));
    const m = Number(text.slice(10, 12));
    const d = Number(text.slice(12, 14));
    const day = new Date(Date.UTC(y, m - 1, d));
    if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d || y < 1880) {
      return null;
    }
    return {
      birth: `${text.slice(6, 10)}-${text.slice(10, 12)}-${text.slice(12, 14)}`,
      sex: Number(text[16]) % 2 === 1 ? "male" : "female",
    };
  }

  function idNumberCheck() {
    const input = document.querySelector("input[data-id-number]");
    const box = document.querySelector(".reg-person-form");
    if (!input || !box) {
      return;
    }
    const form = input.form;
    const birth = form.querySelector("input[name=birth_date]");
    const sex = form.querySelector("select[name=sex]");
    const note = el("p", "reg-id-ok");
    note.setAttribute("role", "status");
    note.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", note);

    function check() {
      const value = input.value.trim();
      const field = input.closest(".field");
      note.className = "reg-id-ok";
      note.textContent = "";
      input.removeAttribute("aria-invalid");
      if (field) {
        field.classList.remove("field--error");
      }
      if (!value) {
        return;
      }
      const facts = idFacts(value);
      if (!facts) {
        note.className = "field__error";
        note.textContent = box.dataset.idBad;
        input.setAttribute("aria-invalid", "true");
        if (field) {
          field.classList.add("field--error");
        }
        return;
      }
      if (birth && !birth.value) {
        birth.value = facts.birth;
      }
      if (sex && (!sex.value || sex.value === "unknown")) {
        sex.value = facts.sex;
      }
      note.textContent = box.dataset.idOk;
    }

    input.addEventListener("change", check);
    input.addEventListener("blur", check);
  }

  // ---------------------------------------------------------------- statistics (ECharts)
  // Tooltips are drawn on the canvas (renderMode "richText"): no HTML with inline styles, which
  // a strict content security policy would refuse.

  const PALETTE = ["#1d4f91", "#d9822b", "#2f9e44", "#9c36b5", "#e03131", "#1098ad", "#868e96"];

  function statsCharts() {
    const box = document.getElementById("stats-charts");
    const data = readJSON("stats-data");
    const echarts = window.echarts;
    if (!box || !data || !echarts) {
      return;
    }
    const T = box.dataset;
    const charts = [];

    function chart(id, option) {
      const node = document.getElementById(id);
      if (!node) {
        return;
      }
      const c = echarts.init(node, null, { renderer: "canvas" });
      c.setOption(Object.assign({ color: PALETTE, animation: false }, option));
      charts.push(c);
      node.dataset.ready = "true";
    }

    function pie(id, rows) {
      chart(id, {
        tooltip: { trigger: "item", renderMode: "richText" },
        legend: { bottom: 0, type: "scroll" },
        series: [
          {
            type: "pie",
            radius: ["35%", "65%"],
            center: ["50%", "45%"],
            label: { formatter: "{c}" },
            data: rows.filter((r) => r.count > 0).map((r) => ({ name: r.label, value: r.count })),
          },
        ],
      });
    }

    pie("chart-person-type", data.population_by_type);
    pie("chart-rooms", data.rooms_by_use);

    const bands = data.age_pyramid.map((b) => b.band);
    chart("chart-age", {
      tooltip: {
        trigger: "axis",
        renderMode: "richText",
        axisPointer: { type: "shadow" },
        valueFormatter: (v) => String(Math.abs(v)),
      },
      legend: { bottom: 0 },
      grid: { left: 8, right: 8, top: 8, bottom: 36, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: (v) => String(Math.abs(v)) } },
      yAxis: { type: "category", data: bands, axisTick: { show: false }, axisLabel: { interval: 0, fontSize: 10 } },
      series: [
        { name: T.male, type: "bar", stack: "age", data: data.age_pyramid.map((b) => -b.male) },
        { name: T.female, type: "bar", stack: "age", data: data.age_pyramid.map((b) => b.female) },
      ],
    });

    const tags = data.tags.slice().reverse();
    chart("chart-tags", {
      tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" } },
      grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: tags.map((t) => t.label), axisTick: { show: false } },
      series: [
        {
          name: T.people,
          type: "bar",
          label: { show: true, position: "right" },
          data: tags.map((t) => ({
            value: t.count,
            itemStyle: { color: t.sensitivity > 0 ? "#b3261e" : "#d9822b" },
          })),
        },
      ],
    });

    window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
    // the charts are drawn: the same figures in tables stay one tap away
    box.querySelectorAll("details.reg-figures").forEach((d) => {
      d.open = false;
    });
    box.dataset.ready = "true";
  }

  buildingsMap();
  pickMap();
  idNumberCheck();
  statsCharts();
})();
