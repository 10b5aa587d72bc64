// Alarm priority shown by colour, a symbol and text together — never colour alone.
// Order of the queue: severity (critical first), then age (the longest waiting first).
import { t } from "./i18n.js";
import { h } from "./dom.js";

export const SEVERITY = {
  critical: { rank: 4, symbol: "◆" },
  high: { rank: 3, symbol: "▲" },
  medium: { rank: 2, symbol: "■" },
  low: { rank: 1, symbol: "●" },
};

export const CLOCKED = new Set(["fall", "long_lie", "sos"]);
export const CLOSED = new Set(["resolved", "false_alarm", "auto_cleared"]);

export function rank(severity) {
  return SEVERITY[severity]?.rank ?? 0;
}

export function byPriority(a, b) {
  return rank(b.severity) - rank(a.severity) || Date.parse(a.opened_at) - Date.parse(b.opened_at) || a.id - b.id;
}

export function badge(severity) {
  const sev = SEVERITY[severity] ? severity : "low";
  return h(
    "span",
    { class: `sev sev-${sev}`, dataset: { severity: sev } },
    h("span", { class: "sev-symbol", "aria-hidden": "true" }, SEVERITY[sev].symbol),
    h("span", { class: "sev-text" }, t(`severity.${sev}`)),
  );
}

/** When the clock of a fall / SOS started: the impact if known, else when the alert opened. */
export function clockStart(alert) {
  return alert?.detail?.impact_at ?? alert?.detail?.fallen_at ?? alert?.opened_at;
}
