// The centre's figures over the last 30 days: orders by type, service hours, response times,
// the share of emergencies reached within 15 minutes, and worker utilisation.
import { ApiError, api, query } from "../lib/api.js";
import { barChart } from "../lib/charts.js";
import { h, replace } from "../lib/dom.js";
import { duration, num, pct } from "../lib/fmt.js";
import { label, t } from "../lib/i18n.js";

export async function renderFigures(panel, { me }) {
  const end = new Date();
  const start = new Date(end.getTime() - 30 * 86400e3);
  let r;
  try {
    r = await api(`/reports/summary${query({ start: start.toISOString(), end: end.toISOString(), district: me.district })}`);
  } catch (e) {
    const why = e instanceof ApiError && e.status === 403 ? t("figures.forbidden") : t("common.load_failed", { what: t("console.figures"), why: e.message });
    replace(panel, h("h2", {}, t("figures.title")), h("p", { class: e.status === 403 ? "empty" : "form-error" }, why));
    return;
  }
  const byType = Object.entries(r.orders_by_type ?? {}).map(([k, v]) => ({ label: label("service", k), value: v }));
  const rt = r.response_times ?? {};
  const times = [
    ["ack_p50_s", "figures.ack"], ["accept_p50_s", "figures.accept"], ["arrival_p50_s", "figures.arrival"],
  ].map(([k, key]) => ({ label: t(key), value: rt[k] ?? 0, text: duration(rt[k]), cls: k === "arrival_p50_s" && rt[k] > 900 ? "warn" : "" }));
  const share = r.within_15_min_share;
  const hours = typeof r.service_hours === "number" ? r.service_hours
    : Object.values(r.service_hours ?? {}).reduce((a, b) => a + Number(b || 0), 0);
  const hoursByType = typeof r.service_hours === "object" && r.service_hours
    ? Object.entries(r.service_hours).map(([k, v]) => ({ label: label("service", k), value: v })) : [];
  const util = typeof r.utilisation === "number" ? r.utilisation : null;
  replace(panel,
    h("h2", {}, t("figures.title")),
    h("div", { class: "kpis" },
      kpi(t("figures.visits"), num(r.visits)),
      kpi(t("figures.hours"), num(hours, 1)),
      kpi(t("figures.within15"), pct(share), share !== null && share !== undefined && share < 0.9 ? "warn" : "good"),
      util !== null ? kpi(t("figures.utilisation"), pct(util)) : null),
    h("figure", {}, h("figcaption", {}, t("figures.by_type")),
      byType.length ? barChart(byType, { label: t("figures.by_type") }) : h("p", { class: "empty" }, t("common.none"))),
    hoursByType.length ? h("figure", {}, h("figcaption", {}, t("figures.hours_by_type")),
      barChart(hoursByType, { label: t("figures.hours_by_type"), format: (v) => num(v, 1) })) : null,
    h("figure", {}, h("figcaption", {}, t("figures.response")),
      barChart(times, { label: t("figures.response") })),
    h("figure", {}, h("figcaption", {}, t("figures.within15")),
      barChart([{ label: "≤ 15 min", value: share ?? 0, text: pct(share), cls: share >= 0.9 ? "good" : "warn" }],
        { max: 1, label: t("figures.within15") })));
}

function kpi(name, value, cls = "") {
  return h("div", { class: `kpi ${cls}` }, h("div", { class: "value" }, value), h("div", { class: "name" }, name));
}
