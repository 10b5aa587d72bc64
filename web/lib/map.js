// The operator's map: residents, open alerts and workers over district outlines.
// Leaflet (vendored, lib/vendor/leaflet) with NO tile layer by default, so it works offline;
// a tile server is used only when config.js / localStorage "ec.tileUrl" names one.
import { tileUrl, CONFIG } from "./config.js";
import { DISTRICTS } from "./districts.js";
import { lang, label, t } from "./i18n.js";
import { SEVERITY } from "./severity.js";

const L = globalThis.L;

export function createMap(el, { onSelectAlert = () => {}, district = null } = {}) {
  const map = L.map(el, { zoomSnap: 0.25, attributionControl: Boolean(tileUrl()), keyboard: true });
  const url = tileUrl();
  if (url) L.tileLayer(url, { attribution: CONFIG.tileAttribution, maxZoom: 19 }).addTo(map);
  else el.classList.add("no-tiles");

  const outlines = L.layerGroup().addTo(map);
  const residents = L.layerGroup().addTo(map);
  const workers = L.layerGroup().addTo(map);
  const alerts = L.layerGroup().addTo(map);
  const bounds = L.latLngBounds([]);
  const drawDistricts = () => {
    outlines.clearLayers();
    for (const d of DISTRICTS) {
      const [s, n, w, e] = d.box;
      const r = L.rectangle([[s, w], [n, e]], { className: "district", weight: 1, fill: true, interactive: false });
      r.bindTooltip(lang() === "zh-CN" ? d.zh : d.name, { permanent: true, direction: "center", className: "district-label" });
      outlines.addLayer(r);
      bounds.extend([[s, w], [n, e]]);
    }
  };
  drawDistricts();
  // an operator's map opens on their district (with its neighbours around it)
  const own = DISTRICTS.find((d) => d.name === district);
  const home = own ? L.latLngBounds([[own.box[0], own.box[2]], [own.box[1], own.box[3]]]) : bounds;
  const fit = () => map.fitBounds(home, { padding: [30, 30] });
  fit();

  const legend = L.control({ position: "bottomleft" });
  legend.onAdd = () => {
    const div = L.DomUtil.create("div", "map-legend");
    div.setAttribute("aria-hidden", "true");
    return div;
  };
  legend.addTo(map);
  const drawLegend = () => {
    legend.getContainer().innerHTML = "";
    for (const [cls, text] of [["dot resident", t("map.resident")], ["pin sev-critical", `${SEVERITY.critical.symbol} ${t("map.alert")}`], ["pin worker", `W ${t("map.worker")}`]]) {
      const row = L.DomUtil.create("div", "legend-row", legend.getContainer());
      L.DomUtil.create("span", cls, row);
      L.DomUtil.create("span", "", row).textContent = text;
    }
  };
  drawLegend();
  document.addEventListener("ec:lang", () => {
    drawDistricts();
    drawLegend();
  });

  return {
    map,
    fit,
    focus(lat, lon) {
      if (Number.isFinite(lat) && Number.isFinite(lon)) map.setView([lat, lon], Math.max(map.getZoom(), 16));
    },
    setResidents(list) {
      residents.clearLayers();
      for (const r of list) {
        const lat = r.home?.lat ?? r.home_lat;
        const lon = r.home?.lon ?? r.home_lon;
        if (!Number.isFinite(lat) || !Number.isFinite(lon)) continue;
        residents.addLayer(L.circleMarker([lat, lon], { radius: 3, className: "resident-dot", interactive: false }));
      }
    },
    setAlerts(list) {
      alerts.clearLayers();
      for (const a of list) {
        const pos = a.location ?? a.resident?.location ?? a.resident?.home ?? null;
        const lat = pos?.lat ?? a.resident?.home_lat;
        const lon = pos?.lon ?? a.resident?.home_lon;
        if (!Number.isFinite(lat) || !Number.isFinite(lon)) continue;
        const sev = SEVERITY[a.severity] ? a.severity : "low";
        const name = `${t(`severity.${sev}`)} · ${label("alert.type", a.type)} · ${a.resident?.name ?? ""}`;
        const icon = L.divIcon({ className: `pin sev-${sev}`, html: SEVERITY[sev].symbol, iconSize: [22, 22] });
        const m = L.marker([lat, lon], { icon, title: name, alt: name, keyboard: true, zIndexOffset: 1000 + SEVERITY[sev].rank });
        m.on("click", () => onSelectAlert(a.id));
        alerts.addLayer(m);
      }
    },
    setWorkers(list) {
      workers.clearLayers();
      for (const w of list) {
        const lat = w.location?.lat ?? w.lat;
        const lon = w.location?.lon ?? w.lon;
        if (!Number.isFinite(lat) || !Number.isFinite(lon)) continue;
        const name = `${t("map.worker")} ${w.name ?? w.worker_id} · ${label("worker.status", w.status)}`;
        const icon = L.divIcon({ className: `pin worker status-${w.status}`, html: "W", iconSize: [20, 20] });
        workers.addLayer(L.marker([lat, lon], { icon, title: name, alt: name, keyboard: false }));
      }
    },
  };
}
