// Why an alert was raised: the detector's evidence (the alert's `detail`, written by
// alerts/detectors/*) as label/value rows, so an operator can judge it before acting.
// Pure: no DOM, no fetch. Unknown or missing fields give no row, never a broken one.
import { dateTime, duration, num } from "./fmt.js";
import { label, t } from "./i18n.js";

// detail.parameter (alerts.detectors.news2.VitalParam) -> unit and digits shown
const VITAL = {
  hr: { unit: "/min", digits: 0 },
  spo2: { unit: "%", digits: 0 },
  sbp: { unit: "mmHg", digits: 0 },
  temp: { unit: "°C", digits: 1 },
};
const ARROW = { high: "↑", low: "↓" };

const given = (v) => v !== null && v !== undefined && v !== "";
const yesNo = (v) => t(v ? "common.yes" : "common.no");
const list = (v) => (Array.isArray(v) ? v : []);
const record = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});

function vitalValue(param, value, d) {
  const v = VITAL[param];
  if (!v || !given(value)) return null;
  if (param === "sbp" && given(d.bp_dia)) return `${num(value)}/${num(d.bp_dia)} ${v.unit}`;
  return `${num(value, v.digits)} ${v.unit}`;
}

function vital(d) {
  return [
    [d.parameter === "temp" ? "evidence.core_temp" : "evidence.reading", vitalValue(d.parameter, d.value, d)],
    ["evidence.hot_weather", given(d.hot_weather_shift_c) ? `${num(d.hot_weather_shift_c, 1)} °C` : null],
    ["evidence.news2", given(d.news2_score) ? num(d.news2_score) : null],
    ["evidence.since", d.since ? dateTime(d.since) : null],
  ];
}

function baseline(d) {
  const drifting = Object.entries(record(d.parameters))
    .map(([p, x]) => `${label("evidence.param", p)} ${ARROW[x?.direction] ?? ""}`.trim());
  return [
    ["evidence.drifting", drifting.length ? drifting.join(", ") : null],
    ["evidence.reading", vitalValue(d.parameter, d.value, d)],
    ["evidence.usual", vitalValue(d.parameter, d.baseline_median, {})],
    ["evidence.z", given(d.z) ? num(d.z, 1) : null],
  ];
}

// detail.heart_rate_after: the first heart rate in the red band after the impact
function heartRateAfter(d) {
  const hr = record(d.heart_rate_after);
  if (!given(hr.bpm)) return null;
  return hr.at ? `${num(hr.bpm)} /min (${dateTime(hr.at)})` : `${num(hr.bpm)} /min`;
}

// detail.walking_away: a resident with dementia still walking away from the zone by day
function walkingAway(d) {
  const w = record(d.walking_away);
  if (!given(w.metres)) return null;
  return w.since ? `${num(w.metres)} m (${dateTime(w.since)})` : `${num(w.metres)} m`;
}

function fall(d) {
  return [
    ["evidence.stage", d.stage ? label("evidence.stage", d.stage) : null],
    ["evidence.impact_at", d.impact_at ? dateTime(d.impact_at) : null],
    ["evidence.sources", list(d.sources).map((s) => label("evidence.source", s)).join(", ") || null],
    ["evidence.score", given(d.score) ? num(d.score, 2) : null],
    ["evidence.steps_since", given(d.steps_since) ? num(d.steps_since) : null],
    ["evidence.wearer_ok", given(d.wearer_says_ok) ? yesNo(d.wearer_says_ok) : null],
    ["evidence.hr_after", heartRateAfter(d)],
  ];
}

function longLie(d) {
  return [
    ["evidence.fallen_at", d.fallen_at ? dateTime(d.fallen_at) : null],
    ["evidence.stage", d.fall_stage ? label("evidence.stage", d.fall_stage) : null],
    ["evidence.steps_since", given(d.steps_since) ? num(d.steps_since) : null],
    ["evidence.moved_since", given(d.moved_since) ? yesNo(d.moved_since) : null],
    ["evidence.wearer_ok", given(d.wearer_says_ok) ? yesNo(d.wearer_says_ok) : null],
    ["evidence.hr_after", heartRateAfter(d)],
  ];
}

function device(d) {
  const n = list(d.devices).length;
  return [
    ["evidence.cause", d.cause ? label("evidence.cause", d.cause) : null],
    ["evidence.response", d.response ? label("evidence.response", d.response) : null],
    ["evidence.last_seen", d.last_seen ? dateTime(d.last_seen) : null],
    ["evidence.expected_within", given(d.expected_within_s) ? duration(d.expected_within_s) : null],
    ["evidence.battery", given(d.battery_pct) ? `${num(d.battery_pct)}%` : null],
    ["evidence.not_worn_since", d.since ? dateTime(d.since) : null],
    ["evidence.charging", given(d.charging) ? yesNo(d.charging) : null],
    ["evidence.windows_refused", given(d.windows_refused) ? num(d.windows_refused) : null],
    ["evidence.refused_because", typeof d.refused_detail === "string" ? d.refused_detail : null],
    ["evidence.devices", n > 1 ? num(n) : null],
  ];
}

const BY_TYPE = {
  sos: (d) => [
    ["evidence.presses", given(d.presses) ? num(d.presses) : null],
    ["evidence.first_pressed_at", d.first_pressed_at ? dateTime(d.first_pressed_at) : null],
    ["evidence.wearer_ok", given(d.wearer_says_ok) ? yesNo(d.wearer_says_ok) : null],
  ],
  fall,
  long_lie: longLie,
  baseline_deviation: baseline,
  inactivity: (d) => [
    ["evidence.still_for", given(d.still_waking_s) ? duration(d.still_waking_s) : null],
    ["evidence.allowed", given(d.threshold_s)
      ? `${duration(d.threshold_s)} (${label("evidence.threshold_from", d.threshold_from)})` : null],
    ["evidence.last_movement", d.last_movement_at ? dateTime(d.last_movement_at) : null],
  ],
  geofence_exit: (d) => [
    ["evidence.outside_by", given(d.outside_by_m) ? `${num(d.outside_by_m)} m` : null],
    ["evidence.nearest_zone", d.nearest_zone || null],
    ["evidence.left_at", d.left_at ? dateTime(d.left_at) : null],
    ["evidence.walking_away", walkingAway(d)],
    ["evidence.dementia", given(d.dementia) ? yesNo(d.dementia) : null],
  ],
  night_activity: (d) => [
    ["evidence.steps_tonight", given(d.steps_tonight) ? num(d.steps_tonight) : null],
    ["evidence.usual_night", given(d.usual_night_steps) ? num(d.usual_night_steps) : null],
    ["evidence.threshold_steps", given(d.threshold_steps) ? num(d.threshold_steps) : null],
    ["evidence.nights_known", given(d.nights_known) ? num(d.nights_known) : null],
    ["evidence.dementia", given(d.dementia) ? yesNo(d.dementia) : null],
  ],
  device_offline: device,
  battery_low: device,
  band_not_worn: device,
  imu_refused: device,
};

/** [[translation key, text], ...] for the alert's evidence; [] when there is none to show. */
export function evidence(alert) {
  const d = record(alert?.detail);
  const type = typeof alert?.type === "string" ? alert.type : "";
  const make = type.startsWith("vital_") ? vital : Object.hasOwn(BY_TYPE, type) ? BY_TYPE[type] : () => [];
  // held back while the resident was away from home, raised when they were due back
  const held = d.held_while_away_since ? [["evidence.held_while_away_since", dateTime(d.held_while_away_since)]] : [];
  const rows = [...make(d), ...held];
  return rows.filter(([, text]) => given(text));
}
