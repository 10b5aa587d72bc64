// The live alert queue: critical first, then the longest waiting; falls and SOS carry the
// long-lie clock (time since the impact / the call), which turns urgent after CONFIG.longLieUrgentS.
import { CONFIG } from "../lib/config.js";
import { h, replace } from "../lib/dom.js";
import { duration, eta, secondsSince } from "../lib/fmt.js";
import { districtName } from "../lib/districts.js";
import { label, lang, t } from "../lib/i18n.js";
import { CLOCKED, badge, byPriority, clockStart } from "../lib/severity.js";

export function residentName(a) {
  return a.resident?.name ?? a.resident_name ?? `#${a.resident_id}`;
}

const workerNames = new Map();
export function setWorkerNames(workers) {
  for (const w of workers) workerNames.set(w.worker_id, w.name);
}

/** Who is coming for an alert: the API's progress, else the live order of the alert. */
export function progressOf(a) {
  const o = a.order ?? null;
  const p = a.progress ?? null;
  if (o && o.state && !(p && p.status === o.state)) {
    // as the API reckons it: the booked interval ends with the job, so arrival = end - duration
    const arrive = o.booked_until ? Date.parse(o.booked_until) - (o.duration_min ?? 0) * 60e3 : NaN;
    const eta = Number.isFinite(arrive) && ["offered", "accepted", "en_route"].includes(o.state) ? Math.max(0, (arrive - Date.now()) / 1000) : null;
    return { worker_name: workerNames.get(o.worker_id) ?? o.worker_name ?? o.worker_id, status: o.state, eta_s: p?.eta_s ?? eta };
  }
  return p;
}

export function renderQueue(list, alerts, { selected, onSelect }) {
  const sorted = [...alerts].sort(byPriority);
  if (sorted.length === 0) {
    replace(list, h("li", { class: "empty" }, t("console.queue_empty")));
    return;
  }
  replace(list, sorted.map((a) => item(a, a.id === selected, onSelect)));
  tickClocks(list);
}

function item(a, isSelected, onSelect) {
  const clocked = CLOCKED.has(a.type);
  const since = clocked ? clockStart(a) : a.opened_at;
  const p = progressOf(a);
  const district = districtName(a.resident?.district ?? a.district ?? "", lang());
  return h(
    "li",
    { class: `queue-item sev-edge-${a.severity}`, dataset: { alertId: a.id, severity: a.severity, type: a.type } },
    h(
      "button",
      { type: "button", class: "queue-button", "aria-current": isSelected ? "true" : null, onclick: () => onSelect(a.id) },
      h("span", { class: "qi-top" },
        badge(a.severity),
        h("span", { class: "qi-type" }, label("alert.type", a.type)),
        h("span", { class: `chip state-${a.state}` }, label("alert.state", a.state))),
      h("span", { class: "qi-who" }, residentName(a), district ? h("span", { class: "muted" }, ` · ${district}`) : null),
      h("span", { class: "qi-clock" },
        h("span", { class: "muted" }, clocked ? t(a.type === "sos" ? "queue.since_sos" : "queue.on_floor") : t("queue.waiting")),
        " ",
        h("time", { class: clocked ? "clock long-lie" : "clock", dataset: { since: since ?? "" }, datetime: since ?? "" }, "–")),
      p ? h("span", { class: "qi-progress" }, "➜ ", t("queue.progress", {
        worker: p.worker_name ?? "–", status: label("order.state", p.status), eta: eta(p.eta_s),
      })) : null,
    ),
  );
}

/** Update every running clock in place once a second (no re-render, focus stays put). */
export function tickClocks(...roots) {
  const now = Date.now();
  for (const root of roots) {
    for (const el of root.querySelectorAll("time[data-since]")) {
      const s = secondsSince(el.dataset.since, now);
      el.textContent = duration(s);
      if (el.classList.contains("long-lie")) el.classList.toggle("urgent", s !== null && s >= CONFIG.longLieUrgentS);
    }
  }
}
