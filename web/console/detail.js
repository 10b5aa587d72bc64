// Alert detail: why it was raised, the resident, latest vitals with 24 h charts, location,
// candidate workers with ETA, and the one-click actions (acknowledge, dispatch the suggested
// worker, escalate, resolve).
import { ApiError, api, items, query } from "../lib/api.js";
import { lineChart } from "../lib/charts.js";
import { h, notify, replace } from "../lib/dom.js";
import { ago, clock, dateTime, eta, num } from "../lib/fmt.js";
import { districtName } from "../lib/districts.js";
import { evidence } from "../lib/evidence.js";
import { label, lang, t } from "../lib/i18n.js";
import { CLOCKED, CLOSED, badge, clockStart } from "../lib/severity.js";
import { progressOf, residentName, tickClocks } from "./queue.js";

let generation = 0;
const drafts = new Map(); // alert id -> {outcome, note} being entered (survives live re-renders)

// key: in the status view; series: the telemetry bucket column; band: NEWS2's 0-score range
export const VITALS = [
  { key: "heart_rate", series: "hr_avg", unit: "bpm", band: [51, 90], digits: 0 },
  { key: "spo2", series: "spo2_avg", unit: "%", band: [96, 100], digits: 0 },
  { key: "systolic_bp", series: "bp_sys_avg", unit: "mmHg", band: [111, 219], digits: 0 },
  { key: "temperature", series: "skin_temp_avg", unit: "°C", band: null, digits: 1 }, // skin, not core
];

export async function showDetail(pane, id, ctx) {
  const mine = ++generation;
  const end = new Date();
  const start = new Date(end.getTime() - 24 * 3600e3);
  let alert;
  try {
    alert = await api(`/alerts/${id}`);
  } catch (e) {
    if (mine === generation) replace(pane, h("p", { class: "form-error" }, t("common.load_failed", { what: t("detail.title"), why: e.message })));
    return;
  }
  const rid = alert.resident_id ?? alert.resident?.id;
  const [resident, status, telemetry, candidates] = await Promise.all([
    api(`/residents/${rid}`).catch(() => alert.resident ?? {}),
    api(`/residents/${rid}/status`).catch(() => null),
    api(`/residents/${rid}/telemetry${query({ start: start.toISOString(), end: end.toISOString(), bucket: "15m" })}`).catch(() => []),
    CLOSED.has(alert.state) ? Promise.resolve([]) : api(`/alerts/${id}/candidates`).catch(() => []),
  ]);
  if (mine !== generation) return; // another alert was selected meanwhile
  ctx.onSeen?.(alert); // the queue takes the fresher state
  const focused = pane.contains(document.activeElement) ? document.activeElement?.dataset?.action : null;
  replace(
    pane,
    header(alert),
    actions(alert, items(candidates), ctx, status?.alerts?.find((x) => x.id === alert.id)?.progress ?? null),
    progress(alert, status),
    why(alert),
    residentCard(alert, resident, ctx),
    vitals(status, items(telemetry), start, end),
    locationCard(status, resident, ctx),
    candidateTable(alert, items(candidates), ctx),
    transitions(alert),
  );
  tickClocks(pane);
  if (focused) pane.querySelector(`[data-action="${focused}"]`)?.focus();
}

function header(a) {
  const clocked = CLOCKED.has(a.type);
  return h("div", { class: "detail-head" },
    h("h2", { id: "detail-title" }, badge(a.severity), " ", label("alert.type", a.type), " · ", residentName(a)),
    h("p", { class: "row" },
      h("span", { class: `chip state-${a.state}` }, label("alert.state", a.state)),
      h("span", { class: "muted" }, t("detail.opened", { at: dateTime(a.opened_at) })),
      clocked && !CLOSED.has(a.state)
        ? h("span", { class: "big-clock" }, t(a.type === "sos" ? "queue.since_sos" : "queue.on_floor"), " ",
          h("time", { class: "clock long-lie", dataset: { since: clockStart(a) } }, "–"))
        : null,
      a.repeat_count > 1 ? h("span", { class: "muted" }, t("detail.repeats", { n: a.repeat_count })) : null));
}

async function act(button, path, body, ctx, done) {
  button.disabled = true;
  try {
    const res = await api(path, { method: "POST", body });
    notify(done);
    const fresh = await api(path.replace(/\/(acknowledge|escalate|resolve|dispatch)$/, ""));
    ctx.onChanged(fresh);
    return res;
  } catch (e) {
    notify(e instanceof ApiError ? e.message : t("common.network_error"), "error");
    return null;
  } finally {
    button.disabled = false;
  }
}

const WORKING = new Set(["offered", "accepted", "en_route", "on_site"]);

function actions(a, candidates, ctx, progress) {
  if (CLOSED.has(a.state)) return h("p", { class: "muted" }, t("detail.closed", { outcome: label("outcome", a.outcome) }));
  const base = `/alerts/${a.id}`;
  const suggested = candidates[0];
  const rerender = () => showDetail(document.getElementById("detail"), a.id, ctx);
  const ack = h("button", { type: "button", "data-action": "acknowledge", disabled: a.state !== "open" },
    t("detail.acknowledge"));
  ack.addEventListener("click", async () => {
    await act(ack, `${base}/acknowledge`, undefined, ctx, t("detail.acknowledged"));
    rerender();
  });
  const sent = progress && WORKING.has(progress.status) ? progress : null;
  const dispatchBtn = h("button", { type: "button", class: "primary", "data-action": "dispatch", disabled: !suggested || Boolean(sent) || a.state === "dispatched" },
    sent ? t("detail.sent", { name: sent.worker_name ?? "–" })
      : suggested ? t("detail.dispatch_suggested", { name: suggested.name, eta: eta(suggested.eta_s) }) : t("detail.no_candidate"));
  dispatchBtn.addEventListener("click", async () => {
    await act(dispatchBtn, `${base}/dispatch`, { worker_id: null }, ctx, t("detail.dispatched"));
    rerender();
  });
  const esc = h("button", { type: "button", "data-action": "escalate" }, t("detail.escalate"));
  esc.addEventListener("click", async () => {
    await act(esc, `${base}/escalate`, undefined, ctx, t("detail.escalated"));
    rerender();
  });
  const draft = drafts.get(a.id) ?? { outcome: "", note: "" };
  const outcome = h("select", { id: "resolve-outcome", name: "outcome", required: true },
    h("option", { value: "" }, t("detail.pick_outcome")),
    ["actionable", "false", "technical"].map((o) => h("option", { value: o, selected: o === draft.outcome }, label("outcome", o))));
  const note = h("input", { id: "resolve-note", name: "note", maxlength: 500, value: draft.note });
  const keep = () => drafts.set(a.id, { outcome: outcome.value, note: note.value });
  note.addEventListener("input", keep);
  outcome.addEventListener("change", keep);
  const resolveBtn = h("button", { type: "submit", class: "danger", "data-action": "resolve" }, t("detail.resolve"));
  const form = h("form", { class: "resolve", "aria-label": t("detail.resolve") },
    h("label", { for: "resolve-outcome" }, t("detail.outcome")), outcome,
    h("label", { for: "resolve-note" }, t("detail.note")), note, resolveBtn);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!outcome.value) {
      outcome.focus();
      notify(t("detail.pick_outcome"), "error");
      return;
    }
    const r = await act(resolveBtn, `${base}/resolve`, { outcome: outcome.value, note: note.value }, ctx, t("detail.resolved"));
    if (r !== null) drafts.delete(a.id);
    rerender();
  });
  return h("section", { class: "card actions-card", "aria-label": t("detail.actions") },
    h("div", { class: "actions" }, ack, dispatchBtn, esc), form);
}

function progress(a, status) {
  const mine = status?.alerts?.find((x) => x.id === a.id);
  const p = progressOf(a) ?? mine?.progress ?? null;
  if (!p) return null;
  return h("section", { class: "card progress-card", "aria-live": "polite", "data-testid": "progress" },
    h("h3", {}, t("detail.progress")),
    h("p", {}, t("queue.progress", { worker: p.worker_name ?? "–", status: label("order.state", p.status), eta: eta(p.eta_s) })));
}

function why(a) {
  const rows = evidence(a);
  if (!rows.length) return null;
  return h("section", { class: "card", "data-testid": "evidence" },
    h("h3", {}, t("evidence.title")),
    h("dl", { class: "facts" }, ...rows.flatMap(([key, text]) => [h("dt", {}, t(key)), h("dd", {}, text)])));
}

function age(birthYear) {
  return birthYear ? new Date().getFullYear() - birthYear : null;
}

// Away from home (a hospital stay, a week with family): the alerts about the home are held
// back until the day they are due back (docs/alerts.md, "Away from home"). Recorded from
// here because this is where an operator learns it: calling about an inactivity alert.
const AWAY_REASONS = ["hospital", "family", "other"];

function tomorrow() {
  const d = new Date(Date.now() + 24 * 3600e3);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function awayForm(a, r, ctx) {
  const rerender = () => showDetail(document.getElementById("detail"), a.id, ctx);
  if (r.id == null) return null;
  if (r.away) {
    const back = h("button", { type: "button", "data-action": "back-home" }, t("detail.back_home"));
    back.addEventListener("click", async () => {
      back.disabled = true;
      try {
        await api(`/residents/${r.id}/away`, { method: "DELETE" });
        notify(t("detail.back_home_done"));
      } catch (e) {
        notify(e instanceof ApiError ? e.message : t("common.network_error"), "error");
      }
      rerender();
    });
    return h("div", { class: "actions" }, back);
  }
  const until = h("input", { id: "away-until", name: "until", type: "date", required: true, value: tomorrow() });
  const reason = h("select", { id: "away-reason", name: "reason" },
    AWAY_REASONS.map((x) => h("option", { value: x }, t(`detail.away_reason.${x}`))));
  const save = h("button", { type: "submit", "data-action": "away" }, t("detail.record_away"));
  const form = h("form", { class: "resolve away-form", "aria-label": t("detail.record_away") },
    h("label", { for: "away-until" }, t("detail.away_back_on")), until,
    h("label", { for: "away-reason" }, t("detail.away_reason")), reason, save);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const [y, m, d] = until.value.split("-").map(Number);
    if (!y || !m || !d) {
      until.focus();
      return;
    }
    save.disabled = true;
    try { // held back until the start of the day after the one they are due back
      const ends = new Date(y, m - 1, d + 1);
      await api(`/residents/${r.id}/away`, { method: "PUT",
        body: { ends_at: ends.toISOString(), reason: t(`detail.away_reason.${reason.value}`) } });
      notify(t("detail.away_recorded"));
    } catch (e) {
      notify(e instanceof ApiError ? e.message : t("common.network_error"), "error");
    } finally {
      save.disabled = false;
    }
    rerender();
  });
  return form;
}

function residentCard(a, r, ctx) {
  const contacts = r.contacts ?? r.emergency_contacts ?? [];
  const conditions = r.conditions ?? [];
  return h("section", { class: "card" },
    h("h3", {}, t("detail.resident")),
    h("dl", { class: "facts" },
      h("dt", {}, t("detail.name")), h("dd", {}, r.name ?? residentName(a)),
      h("dt", {}, t("detail.age")), h("dd", {}, age(r.birth_year) ?? "–", r.sex ? ` · ${label("sex", r.sex)}` : ""),
      h("dt", {}, t("detail.address")), h("dd", {}, r.address || "–", r.district ? ` (${districtName(r.district, lang())})` : ""),
      h("dt", {}, t("detail.living_alone")), h("dd", {}, r.living_alone ? t("common.yes") : t("common.no")),
      ...(r.away ? [h("dt", {}, t("detail.away")), h("dd", { "data-testid": "away" },
        t("detail.away_until", { until: dateTime(r.away.ends_at), reason: r.away.reason }))] : []),
      h("dt", {}, t("detail.conditions")),
      h("dd", {}, conditions.length ? conditions.map((c) => h("span", { class: "chip" }, label("condition", c))) : t("common.none"))),
    h("h3", {}, t("detail.contacts")),
    contacts.length
      ? h("ul", { class: "contacts" }, contacts.map((c) => h("li", {},
        `${c.name ?? ""}${c.relation ? ` (${c.relation})` : ""} `,
        c.phone ? h("a", { href: `tel:${c.phone}` }, c.phone) : null)))
      : h("p", { class: "muted" }, t("common.none")),
    awayForm(a, r, ctx));
}

function telemetryValue(row, p) {
  return row[p.series] ?? row[p.key] ?? null;
}

function vitals(status, rows, start, end) {
  const v = status?.vitals ?? {};
  const tiles = VITALS.map((p) => {
    const x = v[p.key];
    return h("div", { class: "tile" },
      h("div", { class: "name" }, label("vital", p.key)),
      h("div", { class: "value" }, x ? num(x.value, p.digits) : "–", h("small", {}, ` ${p.unit}`)),
      h("div", { class: "muted small" }, x?.at ? clock(x.at) : ""));
  });
  const charts = VITALS.slice(0, 2).map((p) => h("figure", { class: "vital-chart" },
    h("figcaption", {}, `${label("vital", p.key)} · ${t("detail.last_24h")}`),
    lineChart(rows.map((r) => ({ at: r.bucket ?? r.at, value: telemetryValue(r, p) }))
      .filter((x) => x.value !== null), { start, end, band: p.band, label: label("vital", p.key), unit: p.unit, digits: p.digits })));
  return h("section", { class: "card", "aria-labelledby": "vitals-title" },
    h("h3", { id: "vitals-title" }, t("detail.vitals")),
    status ? h("p", { class: "muted" }, t("family.last_seen", { when: ago(status.last_seen) }),
      status.battery_pct !== null && status.battery_pct !== undefined ? ` · ${t("family.battery", { pct: num(status.battery_pct) })}` : "") : null,
    h("div", { class: "tiles four" }, tiles), charts);
}

function locationCard(status, r, ctx) {
  const loc = status?.location ?? null;
  const lat = loc?.lat ?? r.home?.lat ?? r.home_lat;
  const lon = loc?.lon ?? r.home?.lon ?? r.home_lon;
  const btn = h("button", { type: "button", "data-action": "locate", disabled: !Number.isFinite(lat) }, t("detail.show_on_map"));
  btn.addEventListener("click", () => ctx.onLocate(lat, lon));
  return h("section", { class: "card" },
    h("h3", {}, t("detail.location")),
    loc ? h("p", {}, `${num(loc.lat, 5)}, ${num(loc.lon, 5)} ± ${num(loc.accuracy_m)} m · ${clock(loc.at)}`)
      : h("p", { class: "muted" }, t("detail.home_location")),
    btn);
}

function candidateTable(a, list, ctx) {
  if (CLOSED.has(a.state)) return null;
  const rows = list.map((c, i) => {
    const b = h("button", { type: "button", "data-action": `dispatch-${c.worker_id}` }, t("detail.dispatch"));
    b.addEventListener("click", async () => {
      await act(b, `/alerts/${a.id}/dispatch`, { worker_id: c.worker_id }, ctx, t("detail.dispatched"));
      showDetail(document.getElementById("detail"), a.id, ctx);
    });
    return h("tr", { dataset: { workerId: c.worker_id } },
      h("td", {}, c.name, i === 0 ? h("span", { class: "chip suggested" }, t("detail.suggested")) : null),
      h("td", {}, eta(c.eta_s)),
      h("td", {}, `${num(c.distance_km, 1)} km`),
      h("td", {}, label("worker.status", c.status), c.preempts_order_id ? h("span", { class: "muted" }, ` · ${t("detail.preempts", { id: c.preempts_order_id })}`) : null),
      h("td", {}, b));
  });
  return h("section", { class: "card", "aria-labelledby": "cand-title" },
    h("h3", { id: "cand-title" }, t("detail.candidates")),
    rows.length
      ? h("table", { class: "table" },
        h("thead", {}, h("tr", {}, ["detail.worker", "detail.eta", "detail.distance", "detail.status", "detail.action"].map((k) => h("th", { scope: "col" }, t(k))))),
        h("tbody", {}, rows))
      : h("p", { class: "muted" }, t("detail.no_candidate")));
}

function transitions(a) {
  const list = a.transitions ?? [];
  if (!list.length) return null;
  return h("section", { class: "card" },
    h("h3", {}, t("detail.history")),
    h("ol", { class: "history" }, list.map((x) => h("li", {},
      h("time", { datetime: x.at }, clock(x.at)), " ",
      label("alert.state", x.to_state), x.actor ? h("span", { class: "muted", title: x.actor }, ` · ${x.actor_name ?? x.actor}`) : null,
      x.note ? ` — ${x.note}` : ""))));
}

