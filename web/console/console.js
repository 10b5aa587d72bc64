// The operator console: live alert queue, alert detail, map, work-order board, centre figures.
import { all, api, live, query } from "../lib/api.js";
import { signIn, userBar } from "../lib/auth.js";
import { h, notify, replace } from "../lib/dom.js";
import { districtName } from "../lib/districts.js";
import { label, lang, t } from "../lib/i18n.js";
import { createMap } from "../lib/map.js";
import { CLOSED, byPriority } from "../lib/severity.js";
import { renderBoard } from "./board.js";
import { showDetail } from "./detail.js";
import { renderFigures } from "./figures.js";
import { renderQueue, setWorkerNames, tickClocks } from "./queue.js";

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  alerts: new Map(), // id -> alert (open ones)
  announced: null, // ids of alerts screen readers have heard of (null until the first load)
  selected: null,
  workers: [],
  residents: [],
  orders: [],
  map: null,
  tab: "map",
};

signIn({
  roles: ["operator", "supervisor", "admin"],
  gate: $("gate"),
  app: $("app"),
  onReady: start,
});

async function start(me) {
  state.me = me;
  replace($("user"), userBar(me));
  $("scope").textContent = me.district ? t("console.district", { d: districtName(me.district, lang()) }) : t("console.all_districts");
  setupTabs();
  state.map = createMap($("map"), { onSelectAlert: select, district: me.district });
  document.addEventListener("ec:lang", rerender);
  setInterval(() => tickClocks($("queue"), $("detail")), 1000);
  live(onLive, (s) => {
    const el = $("live");
    el.dataset.state = s;
    el.dataset.i18n = `live.${s}`;
    el.textContent = t(`live.${s}`);
    if (s === "live") refreshAlerts(); // catch up on what happened while offline
  });
  await Promise.all([refreshAlerts(), refreshWorkers(), refreshResidents()]);
  setInterval(refreshWorkers, 30000);
  // a safety net under the live feed: the selected alert's progress is re-read every 15 s
  setInterval(() => {
    const a = state.alerts.get(state.selected);
    if (a && a.state !== "open" && !document.getElementById("detail").contains(document.activeElement)) {
      showDetail($("detail"), a.id, detailContext());
    }
  }, 15000);
}

async function refreshAlerts() {
  try {
    const list = await all(`/alerts${query({ state: "open", district: state.me.district })}`);
    // keep what the live feed told us about each alert's order (list rows do not carry it)
    const before = state.alerts;
    state.alerts = new Map(list.filter((a) => !CLOSED.has(a.state))
      .map((a) => [a.id, before.get(a.id)?.order ? { ...a, order: before.get(a.id).order } : a]));
    announceNew([...state.alerts.values()]);
    drawQueue();
  } catch (e) {
    notify(t("common.load_failed", { what: t("console.queue"), why: e.message }), "error");
  }
}

async function refreshWorkers() {
  try {
    state.workers = await all("/workers");
    setWorkerNames(state.workers);
    state.map?.setWorkers(state.workers);
    if (state.tab === "board") drawBoard();
  } catch {
    /* the map keeps the last positions */
  }
}

async function refreshResidents() {
  try {
    state.residents = await all(`/residents${query({ district: state.me.district })}`, { max: 5000 });
    state.map?.setResidents(state.residents);
  } catch {
    /* residents are background on the map */
  }
}

function drawQueue() {
  renderQueue($("queue"), [...state.alerts.values()], { selected: state.selected, onSelect: select });
  $("queue-count").textContent = `(${state.alerts.size})`;
  placeAlerts();
}

const homes = new Map(); // resident id -> {lat, lon} | null
async function placeAlerts() {
  const open = [...state.alerts.values()];
  for (const r of state.residents ?? []) if (r.home && !homes.get(r.id)) homes.set(r.id, r.home);
  const missing = open.filter((a) => !homes.has(a.resident_id)).slice(0, 50);
  for (const a of missing) homes.set(a.resident_id, null);
  await Promise.all(missing.map(async (a) => {
    try {
      const r = await api(`/residents/${a.resident_id}`);
      homes.set(a.resident_id, r.home ?? null);
    } catch {
      homes.delete(a.resident_id);
    }
  }));
  state.map?.setAlerts(open.map((a) => ({ ...a, location: homes.get(a.resident_id) ?? null })));
}

function onLive(msg) {
  const { kind, data } = msg;
  if (kind === "alert" && data) {
    // the engine's and the API's alert events carry alert_id; list rows carry id
    const id = data.id ?? data.alert_id;
    if (id === undefined) return;
    if (CLOSED.has(data.state)) state.alerts.delete(id);
    else if (state.alerts.has(id)) state.alerts.set(id, { ...state.alerts.get(id), ...data, id });
    else {
      state.alerts.set(id, { ...data, id });
      refreshSoon(); // a new alert: the list row brings the resident's name and district
    }
    if (state.announced && !CLOSED.has(data.state)) announceNew([state.alerts.get(id)]);
    drawQueue();
    if (state.selected === id) showDetail($("detail"), id, detailContext());
  } else if ((kind === "order" || kind === "offer") && data) {
    // dispatch events: {kind, order_id, to_state, worker_id, order: {...}}
    const order = data.order ?? data;
    const alertId = order.alert_id;
    if (alertId !== undefined && alertId !== null && state.alerts.has(alertId)) {
      state.alerts.get(alertId).order = order;
      drawQueue();
      refreshSoon(); // an accepted or finished emergency also moves its alert on
      if (state.selected === alertId) showDetail($("detail"), alertId, detailContext());
    }
    if (state.tab === "board") drawBoard();
  }
}

// Screen readers hear each new alert once, at once (the page makes no sound), whichever
// brings it first: the live feed, or a list refresh that ran before its live event came.
function announceNew(alerts) {
  const fresh = alerts.filter((a) => !state.announced?.has(a.id));
  if (state.announced === null) { // the first load: what is already there is not news
    state.announced = new Set(fresh.map((a) => a.id));
    return;
  }
  for (const a of fresh) state.announced.add(a.id);
  const first = fresh.sort(byPriority)[0];
  if (first) $("announce").textContent = t("console.new_alert", { severity: t(`severity.${first.severity}`), type: label("alert.type", first.type) });
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshAlerts, 150);
}

function detailContext() {
  return {
    me: state.me,
    onChanged: (alert) => {
      if (alert && CLOSED.has(alert.state)) state.alerts.delete(alert.id);
      else if (alert) state.alerts.set(alert.id, { ...state.alerts.get(alert.id), ...alert });
      drawQueue();
    },
    onSeen: (alert) => {
      const known = state.alerts.get(alert.id);
      if (known && known.state !== alert.state) {
        if (CLOSED.has(alert.state)) state.alerts.delete(alert.id);
        else known.state = alert.state;
        drawQueue();
      }
    },
    onLocate: (lat, lon) => {
      activateTab("map");
      state.map?.focus(lat, lon);
    },
  };
}

function select(id) {
  state.selected = id;
  drawQueue();
  showDetail($("detail"), id, detailContext());
}

function drawBoard() {
  renderBoard($("panel-board"), { workers: state.workers, residents: state.residents });
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => activateTab(tab.id.slice(4)));
    tab.addEventListener("keydown", (ev) => {
      const i = tabs.indexOf(tab);
      const next = ev.key === "ArrowRight" ? tabs[(i + 1) % tabs.length] : ev.key === "ArrowLeft" ? tabs[(i - 1 + tabs.length) % tabs.length] : null;
      if (next) {
        activateTab(next.id.slice(4));
        next.focus();
      }
    });
  }
}

function activateTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const on = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
  }
  if (name === "map") state.map?.map.invalidateSize();
  if (name === "board") drawBoard();
  if (name === "figures") renderFigures($("panel-figures"), { me: state.me });
}

function rerender() {
  $("scope").textContent = state.me.district ? t("console.district", { d: districtName(state.me.district, lang()) }) : t("console.all_districts");
  drawQueue();
  if (state.selected !== null) showDetail($("detail"), state.selected, detailContext());
  if (state.tab !== "map") activateTab(state.tab);
}

// exposed for the end-to-end tests and for debugging in the browser console
globalThis.ecConsole = { state, select, api };
