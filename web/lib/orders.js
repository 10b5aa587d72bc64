// Work orders of the local day. The API's ?date= is a UTC calendar day, while "today" on a
// screen in Asia/Shanghai runs from 16:00 UTC the day before: ask for each UTC date the
// local day touches, and keep the orders that overlap it.
import { all, query } from "./api.js";
import { today } from "./fmt.js";

export async function ordersOfToday(params = {}, now = new Date()) {
  const day = today(now);
  const start = Date.parse(day.start);
  const end = Date.parse(day.end);
  const dates = new Set([day.start.slice(0, 10), new Date(end - 1).toISOString().slice(0, 10)]);
  const pages = await Promise.all([...dates].map((date) => all(`/orders${query({ ...params, date })}`)));
  const byId = new Map();
  for (const o of pages.flat()) {
    const from = Date.parse(o.booked_from ?? o.window_start);
    const until = Date.parse(o.booked_until ?? o.window_end);
    if (from < end && until >= start) byId.set(o.id, o);
  }
  return [...byId.values()];
}
