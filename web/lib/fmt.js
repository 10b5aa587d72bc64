// Formatting of times, durations and numbers in the current language.
import { lang, t } from "./i18n.js";

export function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function clock(iso) {
  const d = parseTime(iso);
  if (!d) return "–";
  return d.toLocaleTimeString(lang(), { hour: "2-digit", minute: "2-digit" });
}

export function dateTime(iso) {
  const d = parseTime(iso);
  if (!d) return "–";
  return d.toLocaleString(lang(), { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** 65 -> "1:05", 3725 -> "1:02:05" */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export function secondsSince(iso, now = Date.now()) {
  const d = parseTime(iso);
  return d ? (now - d.getTime()) / 1000 : null;
}

/** "3 min ago" style, for last-seen lines. */
export function ago(iso, now = Date.now()) {
  const s = secondsSince(iso, now);
  if (s === null) return t("common.never");
  if (s < 60) return t("time.just_now");
  if (s < 3600) return t("time.min_ago", { n: Math.floor(s / 60) });
  if (s < 86400) return t("time.h_ago", { n: Math.floor(s / 3600) });
  return t("time.d_ago", { n: Math.floor(s / 86400) });
}

export function eta(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return t("time.min", { n: Math.max(1, Math.round(seconds / 60)) });
}

export function num(v, digits = 0) {
  if (v === null || v === undefined || !Number.isFinite(Number(v))) return "–";
  return Number(v).toLocaleString(lang(), { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function pct(share) {
  if (share === null || share === undefined) return "–";
  return `${num(share * 100, 0)}%`;
}

/** Local midnight today and now, as ISO strings, for "today" queries. */
export function today(now = new Date()) {
  const start = new Date(now);
  start.setHours(0, 0, 0, 0);
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  const pad = (n) => String(n).padStart(2, "0");
  const date = `${start.getFullYear()}-${pad(start.getMonth() + 1)}-${pad(start.getDate())}`;
  return { start: start.toISOString(), end: end.toISOString(), date };
}
