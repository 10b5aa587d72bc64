// The family page: how is my parent, last seen, vitals, today's activity, any alert and who
// is coming, services; book a service. Only the residents linked to this user are ever asked for.
import { ApiError, api, items, live, query } from "../lib/api.js";
import { lineChart } from "../lib/charts.js";
import { signIn, userBar } from "../lib/auth.js";
import { h, notify, replace } from "../lib/dom.js";
import { ago, clock, dateTime, eta, num, today } from "../lib/fmt.js";
import { label, t } from "../lib/i18n.js";
import { badge, CLOSED } from "../lib/severity.js";

const $ = (id) => document.getElementById(id);
const VITALS = [
  { key: "heart_rate", unit: "bpm", digits: 0 },
  { key: "spo2", unit: "%", digits: 0 },
  { key: "systolic_bp", unit: "mmHg", digits: 0 },
  { key: "temperature", unit: "°C", digits: 1 },
];
const STEP_GOAL = 4000;
let me = null;
let current = null;
let lastStatus = null;

signIn({ roles: ["family"], gate: $("gate"), app: $("app"), onReady: start });

async function start(user) {
  me = user;
  replace($("user"), userBar(me));
  const ids = me.resident_ids ?? [];
  current = ids[0] ?? null;
  if (ids.length > 1) {
    const sel = h("select", { id: "resident-pick" });
    for (const id of ids) sel.append(new Option(`#${id}`, id));
    sel.addEventListener("change", () => {
      current = Number(sel.value);
      load();
    });
    replace($("pick"), h("label", { for: "resident-pick" }, t("family.pick")), sel);
  }
  $("book-date").value = today().date;
  $("book-date").min = today().date;
  $("book").addEventListener("submit", book);
  $("book").addEventListener("input", () => delete $("book").dataset.key); // a changed booking is a new request
  document.addEventListener("ec:lang", () => {
    if (lastStatus) render(lastStatus);
    loadServiceTypes();
  });
  loadServiceTypes();
  await load();
  live((msg) => {
    const rid = msg.data?.resident_id;
    if ((msg.kind === "alert" || msg.kind === "order") && (rid === undefined || rid === current)) load();
  });
  setInterval(load, 60000);
}

let lastActivity = [];
let lastStanding = []; // standing services (GET /residents/{id}/services)
let lastHistory = new Map(); // open alert id -> its transitions (GET /alerts/{id}: roles, not staff ids)
const historyShown = new Set(); // alert ids whose history the reader opened: kept open across refreshes

async function load() {
  if (current === null) {
    replace($("status"), h("p", { class: "empty" }, t("family.no_resident")));
    return;
  }
  try {
    const day = today();
    const [status, activity, standing] = await Promise.all([
      api(`/residents/${current}/status`),
      api(`/residents/${current}/telemetry${query({ start: day.start, end: new Date().toISOString(), bucket: "30m" })}`).catch(() => null),
      api(`/residents/${current}/services`).catch(() => []),
    ]);
    lastStanding = Array.isArray(standing) ? standing : [];
    lastHistory = new Map(await Promise.all(openAlerts(status).map((a) =>
      api(`/alerts/${a.id}`).then((d) => [a.id, d.transitions ?? []]).catch(() => [a.id, null]))));
    lastStatus = status;
    lastActivity = items(activity);
    render(lastStatus);
  } catch (e) {
    replace($("status"), h("p", { class: "form-error" }, t("common.load_failed", { what: t("family.title"), why: e.message })));
  }
}

function openAlerts(s) {
  return (s.alerts ?? []).filter((a) => !CLOSED.has(a.state));
}

function render(s) {
  const ok = s.state === "ok";
  const open = openAlerts(s);
  const upcoming = s.services?.upcoming ?? [];
  const past = s.services?.past ?? [];
  replace($("status"),
    h("h2", { class: "resident-name", id: "resident-name" }, s.name ?? `#${s.resident_id}`),
    h("div", { class: `big-state ${ok ? "ok" : "attention"}`, "data-state": s.state },
      h("span", { class: "symbol", "aria-hidden": "true" }, ok ? "✓" : "!"),
      h("span", {}, ok ? t("family.ok") : t("family.attention"))),
    !ok && s.reasons?.length ? h("p", { class: "reasons" }, s.reasons.map((r) => label("family.reason", r)).join(" · ")) : null,
    h("p", { class: "meta" },
      h("span", {}, t("family.last_seen", { when: ago(s.last_seen) })),
      s.battery_pct !== null && s.battery_pct !== undefined ? h("span", {}, t("family.battery", { pct: num(s.battery_pct) })) : null,
      h("span", {}, s.worn === false ? t("family.not_worn") : t("family.worn"))),
    s.away ? h("p", { class: "away-note", "data-testid": "away" },
      t("family.away", { until: dateTime(s.away.ends_at), reason: s.away.reason })) : null,
    open.map((a) => h("section", { class: "alert-box", "aria-labelledby": `alert-${a.id}` },
      h("h2", { id: `alert-${a.id}` }, badge(a.severity), " ", label("alert.type", a.type)),
      h("p", {}, t("family.alert_since", { at: clock(a.opened_at) }), " · ", label("alert.state", a.state)),
      a.progress
        ? h("p", { class: "coming" }, t("family.coming", { worker: a.progress.worker_name ?? "–", eta: eta(a.progress.eta_s), status: label("order.state", a.progress.status) }))
        : h("p", { class: "coming" }, t("family.centre_handling")),
      history(a.id, lastHistory.get(a.id)))),
    h("section", { class: "card", "aria-labelledby": "vitals-h" },
      h("h2", { id: "vitals-h" }, t("family.vitals")),
      h("div", { class: "tiles" }, VITALS.map((p) => {
        const v = s.vitals?.[p.key];
        return h("div", { class: "tile" },
          h("div", { class: "name" }, label("vital", p.key)),
          h("div", { class: "value" }, v ? num(v.value, p.digits) : "–", h("small", {}, ` ${p.unit}`)),
          h("div", { class: "muted small" }, v?.at ? clock(v.at) : ""));
      }))),
    h("section", { class: "card", "aria-labelledby": "act-h" },
      h("h2", { id: "act-h" }, t("family.activity")),
      h("p", {}, t("family.steps", { n: num(s.steps_today ?? 0) })),
      h("div", { class: "steps-bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": STEP_GOAL, "aria-valuenow": Math.min(STEP_GOAL, s.steps_today ?? 0), "aria-label": t("family.activity") },
        h("span", { style: { width: `${Math.min(100, ((s.steps_today ?? 0) / STEP_GOAL) * 100)}%` } })),
      activityChart()),
    h("section", { class: "card", "aria-labelledby": "svc-h" },
      h("h2", { id: "svc-h" }, t("family.upcoming")),
      upcoming.length ? h("ul", { class: "list" }, upcoming.map(service)) : h("p", { class: "empty" }, t("family.no_upcoming")),
      lastStanding.length ? [h("h3", { id: "standing-h" }, t("family.standing")),
        h("ul", { class: "list standing", "aria-labelledby": "standing-h" }, lastStanding.map(standingService))] : null,
      past.length ? h("details", {}, h("summary", {}, t("family.past")), h("ul", { class: "list" }, past.map(service))) : null));
}

/** What has happened to an alert so far, and by whom (a role: the API shows a family no
 * staff ids and no staff notes). A transition that keeps the state is an escalation. */
function history(id, steps) {
  if (!steps?.length) return null;
  const toggle = (ev) => (ev.target.open ? historyShown.add(id) : historyShown.delete(id));
  return h("details", { class: "alert-history", open: historyShown.has(id), ontoggle: toggle },
    h("summary", {}, t("family.alert_history")),
    h("ol", { class: "list" }, steps.map((x) => h("li", {},
      h("time", { datetime: x.at }, clock(x.at)), " ",
      label("alert.state", x.from_state && x.from_state === x.to_state ? "escalated" : x.to_state),
      x.actor ? h("span", { class: "muted" }, ` · ${label("family.by", x.actor)}`) : null))));
}

/** Steps through the day (the band's counter, per half hour) — when the band sent any. */
function activityChart() {
  const points = lastActivity.filter((r) => r.steps_max !== null && r.steps_max !== undefined)
    .map((r) => ({ at: r.bucket, value: r.steps_max }));
  if (points.length < 2) return null;
  const day = today();
  return h("figure", { class: "activity-chart" },
    h("figcaption", { class: "muted small" }, t("family.steps_through_day")),
    lineChart(points, { start: day.start, end: day.end, label: t("family.steps_through_day"), unit: "", height: 80, gapMs: 3 * 3600e3 }));
}

function service(o) {
  return h("li", {},
    h("div", { class: "svc-time" }, `${dateTime(o.window_start)}–${clock(o.window_end)}`),
    h("div", {}, label("service", o.service_type), " · ", h("span", { class: `chip state-${o.state}` }, label("order.state", o.state))),
    o.worker_name ? h("div", { class: "muted" }, t("family.worker", { name: o.worker_name })) : null);
}

const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]; // Date.getDay() order

/** A standing service: its days and times (the city's), and a way to stop it. */
function standingService(x) {
  const stop = h("button", { type: "button", "data-action": "stop-standing" }, t("family.stop"));
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try {
      await api(`/residents/${current}/services/${x.id}`, { method: "DELETE" });
      notify(t("family.stopped"));
    } catch (e) {
      notify(e instanceof ApiError ? e.message : t("common.network_error"), "error");
    }
    load();
  });
  return h("li", { class: "row" },
    h("div", { class: "grow" },
      h("div", {}, label("service", x.service_type), " · ", t("family.every"), " ", x.weekdays.map((d) => t(`family.wd.${d}`)).join("、")),
      h("div", { class: "muted" }, `${x.start}–${x.end}`)),
    stop);
}

async function loadServiceTypes() {
  const sel = $("book-type");
  const keep = sel.value;
  try {
    const types = items(await api("/service-types")).filter((x) => !x.emergency);
    replace(sel, types.map((x) => new Option(label("service", x.code) === x.code ? x.name : label("service", x.code), x.code)));
    if (keep) sel.value = keep;
  } catch {
    replace(sel, new Option(t("common.unavailable"), ""));
  }
}

async function book(ev) {
  ev.preventDefault();
  const form = ev.target;
  const data = new FormData(form);
  const err = $("book-error");
  err.textContent = "";
  const start = new Date(`${data.get("date")}T${data.get("from")}`);
  const end = new Date(`${data.get("date")}T${data.get("to")}`);
  if (!(end > start)) {
    err.textContent = t("family.bad_window");
    return;
  }
  if (start < new Date()) {
    err.textContent = t("family.past_window");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  form.dataset.key ??= crypto.randomUUID(); // the same key for a retry of this booking
  const weekly = data.get("weekly") === "on";
  try {
    if (weekly) { // a standing service from that day on, every week on its weekday
      await api(`/residents/${current}/services`, {
        method: "POST",
        body: { service_type: data.get("service_type"), weekdays: [WEEKDAYS[start.getDay()]], start: data.get("from"), end: data.get("to"), starts_on: data.get("date"), notes: String(data.get("notes") ?? "") },
      });
    } else {
      await api("/orders", {
        method: "POST",
        headers: { "Idempotency-Key": form.dataset.key },
        body: { resident_id: current, service_type: data.get("service_type"), window_start: start.toISOString(), window_end: end.toISOString(), notes: String(data.get("notes") ?? "") },
      });
    }
    delete form.dataset.key;
    form.querySelector("textarea").value = "";
    form.querySelector("#book-weekly").checked = false;
    notify(t(weekly ? "family.booked_weekly" : "family.booked"));
    load();
  } catch (e) {
    err.textContent = e instanceof ApiError ? e.message : t("common.network_error");
  } finally {
    button.disabled = false;
  }
}
