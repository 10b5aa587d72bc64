// Today's work-order board: one lane per worker, orders placed on a 06:00–22:00 timeline.
import { ordersOfToday } from "../lib/orders.js";
import { h, replace } from "../lib/dom.js";
import { clock, today } from "../lib/fmt.js";
import { label, t } from "../lib/i18n.js";

const DAY_START_H = 6;
const DAY_END_H = 24;

export async function renderBoard(panel, { workers, residents = [] }) {
  const names = new Map(residents.map((r) => [r.id ?? r.resident_id, r.name]));
  const day = today();
  let orders;
  try {
    orders = await ordersOfToday();
  } catch (e) {
    replace(panel, h("p", { class: "form-error" }, t("common.load_failed", { what: t("console.board"), why: e.message })));
    return;
  }
  const midnight = new Date(day.start).getTime();
  const x0 = midnight + DAY_START_H * 3600e3;
  const x1 = midnight + DAY_END_H * 3600e3;
  const pos = (iso) => Math.min(100, Math.max(0, ((new Date(iso).getTime() - x0) / (x1 - x0)) * 100));
  const byWorker = new Map(workers.map((w) => [w.worker_id, []]));
  const unassigned = [];
  for (const o of orders) {
    if (o.worker_id && byWorker.has(o.worker_id)) byWorker.get(o.worker_id).push(o);
    else if (o.worker_id) byWorker.set(o.worker_id, [o]);
    else unassigned.push(o);
  }
  const hours = [];
  for (let hr = DAY_START_H; hr <= DAY_END_H; hr += 2) hours.push(hr);
  const nowPos = pos(new Date().toISOString());
  const lane = (name, sub, list) => h("li", { class: "lane" },
    h("div", { class: "lane-name" }, name, sub ? h("span", { class: "muted small" }, sub) : null),
    h("ol", { class: "lane-track", "aria-label": name },
      list.sort((a, b) => Date.parse(a.window_start) - Date.parse(b.window_start)).map((o) => {
        const left = pos(o.booked_from ?? o.window_start);
        const right = pos(o.booked_until ?? o.window_end);
        const text = `${clock(o.booked_from ?? o.window_start)}–${clock(o.booked_until ?? o.window_end)} ${label("service", o.service_type)} · ${names.get(o.resident_id) ?? `#${o.resident_id}`} · ${label("order.state", o.state)}`;
        return h("li", {
          class: `block kind-${o.kind} state-${o.state}`, tabindex: 0, title: text, "aria-label": text,
          style: { left: `${left}%`, width: `${Math.max(1.5, right - left)}%` },
        }, o.kind === "emergency" ? "◆ " : "", label("service", o.service_type));
      })),
    h("span", { class: "now-line", style: { left: `${nowPos}%` }, "aria-hidden": "true" }));
  const staff = new Map(workers.map((w) => [w.worker_id, w]));
  replace(panel,
    h("h2", {}, t("board.title", { date: day.date })),
    h("div", { class: "board" },
      h("div", { class: "hours", "aria-hidden": "true" },
        h("span", { class: "lane-name" }),
        h("span", { class: "hour-track" }, hours.map((hr) => h("span", { style: { left: `${((hr - DAY_START_H) / (DAY_END_H - DAY_START_H)) * 100}%` } }, `${hr}:00`)))),
      h("ol", { class: "lanes" },
        [...byWorker.entries()].map(([id, list]) => {
          const w = staff.get(id);
          // set off shift by dispatch for missed emergency offers: the centre may call them
          const why = w?.status_note === "missed_offers" ? ` · ${t("board.missed_offers")}` : "";
          return lane(w?.name ?? id, w ? ` ${label("worker.status", w.status)}${why}` : "", list);
        }),
        unassigned.length ? lane(t("board.unassigned"), "", unassigned) : null)),
    orders.length ? null : h("p", { class: "empty" }, t("board.empty")));
}
