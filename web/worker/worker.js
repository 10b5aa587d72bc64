// The worker page: the current offer (accept / reject), today's route, on the way, check in
// and out with notes, the next two weeks' shifts. Position is shared with the centre only
// while on shift.
import { ApiError, all, api, live, query } from "../lib/api.js";
import { signIn, userBar } from "../lib/auth.js";
import { ordersOfToday } from "../lib/orders.js";
import { h, notify, replace } from "../lib/dom.js";
import { clock, dateTime, duration, secondsSince } from "../lib/fmt.js";
import { label, t } from "../lib/i18n.js";

const $ = (id) => document.getElementById(id);
const LIVE_STATES = new Set(["accepted", "en_route", "on_site"]);
const OUTCOMES = ["done", "not_home", "refused", "referred"];
const LOCATION_EVERY_MS = 60000;
let me = null;
let worker = null;
let orders = [];
let shifts = []; // the next two weeks' shifts, as the centre has them
let lastFix = null;
let lastSent = 0;
const notes = new Map(); // order id -> note being typed
const residents = new Map(); // resident id -> {name, address} (what the worker may see)

signIn({ roles: ["worker"], gate: $("gate"), app: $("app"), onReady: start });

async function start(user) {
  me = user;
  replace($("user"), userBar(me));
  $("duty-toggle").addEventListener("click", toggleDuty);
  document.addEventListener("ec:lang", render);
  await load();
  live((msg) => {
    if (msg.kind === "offer" || msg.kind === "order") load();
  });
  setInterval(tick, 1000);
  setInterval(load, 60000);
  watchPosition();
}

async function load() {
  try {
    const [w, list, rota] = await Promise.all([
      api(`/workers/${encodeURIComponent(me.worker_id)}`),
      ordersOfToday({ worker_id: me.worker_id }),
      api(`/workers/${encodeURIComponent(me.worker_id)}/shifts`).catch(() => null),
    ]);
    worker = w;
    if (rota) shifts = rota;
    // an offer can be for later than today (never mind the date filter): ask for offers too
    const offered = await all(`/orders${query({ worker_id: me.worker_id, state: "offered" })}`).catch(() => []);
    const seen = new Set(list.map((o) => o.id));
    orders = list.concat(offered.filter((o) => !seen.has(o.id)));
    await Promise.all([...new Set(orders.map((o) => o.resident_id))]
      .filter((id) => !residents.has(id))
      .map(async (id) => {
        try {
          residents.set(id, await api(`/residents/${id}`));
        } catch {
          /* out of scope (a finished order): shown by number */
        }
      }));
    render();
  } catch (e) {
    notify(t("common.load_failed", { what: t("worker.route"), why: e.message }), "error");
  }
}

function render() {
  if (!worker) return;
  const onShift = worker.status !== "off_shift";
  $("duty-state").className = `chip status-${worker.status}`;
  $("duty-state").textContent = label("worker.status", worker.status);
  $("duty-toggle").textContent = onShift ? t("worker.go_off") : t("worker.go_on");
  // why the platform set the status (dispatch's status_note), e.g. missed emergency offers
  const why = !onShift && worker.status_note === "missed_offers" ? t("worker.note_missed_offers") : "";
  $("duty-note").textContent = why;
  $("duty-note").hidden = !why;
  const offers = orders.filter((o) => o.state === "offered");
  replace($("offers"), h("h2", { id: "offers-title", class: "visually-hidden" }, t("worker.offers")), offers.map(offerCard));
  const route = orders.filter((o) => o.state !== "offered" && o.state !== "cancelled")
    .sort((a, b) => Date.parse(a.booked_from ?? a.window_start) - Date.parse(b.booked_from ?? b.window_start));
  replace($("route"), route.length ? route.map(stop) : h("li", { class: "empty" }, t("worker.no_orders")));
  replace($("shifts"), shifts.length
    ? shifts.map((x) => h("li", {}, `${dateTime(x.starts_at)} – ${clock(x.ends_at)}`))
    : h("li", { class: "empty" }, t("worker.no_shifts")));
  tick();
}

function who(o) {
  return residents.get(o.resident_id)?.name ?? o.resident_name ?? `#${o.resident_id}`;
}

function where(o) {
  return residents.get(o.resident_id)?.address ?? o.address ?? "";
}

/** A geo: link opens the phone's own map app at the resident's home (no web map needed). */
function navigate(o) {
  const home = residents.get(o.resident_id)?.home;
  if (!home || !["accepted", "en_route"].includes(o.state)) return null;
  return h("a", { href: `geo:${home.lat},${home.lon}?q=${home.lat},${home.lon}`, class: "nav-link" }, t("worker.navigate"));
}

function offerCard(o) {
  const accept = h("button", { type: "button", class: "primary", "data-action": "accept" }, t("worker.accept"));
  const reject = h("button", { type: "button", "data-action": "reject" }, t("worker.reject"));
  accept.addEventListener("click", () => step(accept, o, "accept", undefined, t("worker.accepted")));
  reject.addEventListener("click", () => step(reject, o, "reject", undefined, t("worker.rejected")));
  const emergency = o.kind === "emergency";
  return h("article", { class: `offer ${emergency ? "" : "booked"}`, "aria-labelledby": `offer-${o.id}`, dataset: { orderId: o.id } },
    h("h3", { id: `offer-${o.id}` }, emergency ? `◆ ${t("worker.emergency")} · ` : "", label("service", o.service_type)),
    h("p", {}, who(o), where(o) ? ` · ${where(o)}` : ""),
    h("p", {}, `${clock(o.window_start)}–${clock(o.window_end)}`, o.sla_due_at ? ` · ${t("worker.arrive_by", { at: clock(o.sla_due_at) })}` : ""),
    o.notes ? h("p", { class: "muted" }, o.notes) : null,
    o.offer_expires_at ? h("p", {}, t("worker.expires_in"), " ", h("time", { dataset: { until: o.offer_expires_at } }, "–")) : null,
    h("div", { class: "actions" }, accept, reject));
}

function stop(o) {
  const buttons = [];
  if (o.state === "accepted") {
    const b = h("button", { type: "button", class: "primary", "data-action": "en-route" }, t("worker.en_route"));
    b.addEventListener("click", () => step(b, o, "en-route", undefined, t("worker.on_the_way")));
    buttons.push(b);
  }
  if (o.state === "accepted" || o.state === "en_route") {
    const b = h("button", { type: "button", class: o.state === "en_route" ? "primary" : "", "data-action": "check-in" }, t("worker.check_in"));
    b.addEventListener("click", () => checkIn(b, o));
    buttons.push(b);
  }
  let form = null;
  if (o.state === "on_site") {
    const noteId = `note-${o.id}`;
    const outId = `outcome-${o.id}`;
    const note = h("textarea", { id: noteId, name: "notes", maxlength: 1000 });
    note.value = notes.get(o.id) ?? "";
    note.addEventListener("input", () => notes.set(o.id, note.value));
    const outcome = h("select", { id: outId, name: "outcome" }, OUTCOMES.map((x) => h("option", { value: x }, label("visit_outcome", x))));
    const b = h("button", { type: "submit", class: "primary", "data-action": "check-out" }, t("worker.check_out"));
    form = h("form", { class: "checkout" },
      h("label", { for: outId }, t("worker.outcome")), outcome,
      h("label", { for: noteId }, t("worker.notes")), note, b);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (await step(b, o, "check-out", { notes: note.value, outcome: outcome.value }, t("worker.checked_out"))) notes.delete(o.id);
    });
  }
  return h("li", { class: `kind-${o.kind} state-${o.state}`, dataset: { orderId: o.id } },
    h("div", { class: "row" },
      h("span", { class: "when" }, `${clock(o.booked_from ?? o.window_start)}–${clock(o.booked_until ?? o.window_end)}`),
      h("span", { class: `chip state-${o.state}` }, label("order.state", o.state))),
    h("div", {}, o.kind === "emergency" ? `◆ ${t("worker.emergency")} · ` : "", label("service", o.service_type), " · ", who(o)),
    where(o) ? h("div", { class: "muted" }, where(o), " ", navigate(o)) : null,
    o.notes ? h("div", { class: "muted" }, o.notes) : null,
    buttons.length ? h("div", { class: "actions" }, buttons) : null,
    form);
}

async function step(button, o, action, body, done) {
  button.disabled = true;
  try {
    await api(`/orders/${o.id}/${action}`, { method: "POST", body });
    notify(done);
    await load();
    return true;
  } catch (e) {
    notify(e instanceof ApiError ? e.message : t("common.network_error"), "error");
    await load();
    return false;
  } finally {
    button.disabled = false;
  }
}

function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(lastFix);
    navigator.geolocation.getCurrentPosition(
      (p) => resolve((lastFix = { lat: p.coords.latitude, lon: p.coords.longitude })),
      () => resolve(lastFix),
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 },
    );
  });
}

async function checkIn(button, o) {
  const pos = await position();
  if (!pos) {
    notify(t("worker.no_location"), "error");
    return;
  }
  await step(button, o, "check-in", pos, t("worker.checked_in"));
}

async function toggleDuty() {
  const next = worker.status === "off_shift" ? "available" : "off_shift";
  try {
    worker = await api(`/workers/${encodeURIComponent(me.worker_id)}/status`, { method: "POST", body: { status: next } }) ?? worker;
    await load();
  } catch (e) {
    notify(e instanceof ApiError ? e.message : t("common.network_error"), "error");
  }
}

function watchPosition() {
  if (!navigator.geolocation) return;
  navigator.geolocation.watchPosition((p) => {
    lastFix = { lat: p.coords.latitude, lon: p.coords.longitude };
    if (!worker || worker.status === "off_shift" || Date.now() - lastSent < LOCATION_EVERY_MS) return;
    lastSent = Date.now();
    api(`/workers/${encodeURIComponent(me.worker_id)}/location`, { method: "POST", body: lastFix }).catch(() => {});
  }, () => {}, { enableHighAccuracy: false, maximumAge: 60000 });
}

function tick() {
  for (const el of document.querySelectorAll("time[data-until]")) {
    const left = -secondsSince(el.dataset.until);
    el.textContent = left > 0 ? duration(left) : t("worker.expired");
  }
}
