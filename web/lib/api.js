// The API client: tokens, JSON requests with problem+json errors, and the live WebSocket.
// The session (access + refresh token) lives in sessionStorage: it dies with the tab and is
// never written to disk by the page.

const KEY = "ec.session";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? "null");
  } catch {
    return null;
  }
}

function saveSession(tokens) {
  sessionStorage.setItem(KEY, JSON.stringify({
    access: tokens.access_token,
    refresh: tokens.refresh_token,
  }));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

async function problemOf(res) {
  const type = res.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      return await res.json();
    } catch {
      return null;
    }
  }
  return { title: res.statusText, status: res.status };
}

export async function login(username, password) {
  const body = new URLSearchParams({ username, password, grant_type: "password" });
  const res = await fetch("/auth/token", { method: "POST", body });
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  saveSession(await res.json());
}

export async function logout() {
  const s = session();
  if (s) {
    try {
      await fetch("/auth/logout", {
        method: "POST",
        headers: { Authorization: `Bearer ${s.access}`, "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: s.refresh }),
      });
    } catch {
      /* the local session is dropped whatever the server says */
    }
  }
  clearSession();
}

let refreshing = null;

async function refresh() {
  const s = session();
  if (!s?.refresh) return false;
  refreshing ??= (async () => {
    const res = await fetch("/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: s.refresh }),
    });
    if (!res.ok) return false;
    saveSession(await res.json());
    return true;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/**
 * A JSON request with the access token; one refresh and retry on 401. Throws ApiError with
 * the problem+json body; on a lost session fires "ec:signed-out" on document.
 */
export async function api(path, { method = "GET", body, headers = {}, retry = true, signOut = true } = {}) {
  const s = session();
  const h = { Accept: "application/json", ...headers };
  if (s) h.Authorization = `Bearer ${s.access}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && retry && (await refresh())) {
    return api(path, { method, body, headers, retry: false, signOut });
  }
  if (res.status === 401 && signOut) {
    clearSession();
    document.dispatchEvent(new CustomEvent("ec:signed-out"));
  }
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  if (res.status === 204) return null;
  return res.json();
}

/** Items of a list answer ({items, next_cursor}) or of a plain array. */
export function items(answer) {
  if (Array.isArray(answer)) return answer;
  return answer?.items ?? [];
}

/** Every page of a cursor-paged list, up to `max` items. */
export async function all(path, { max = 1000 } = {}) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    out.push(...items(page));
    cursor = page?.next_cursor ?? null;
  } while (cursor && out.length < max);
  return out;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * The live feed: {kind, data} messages from /ws, reconnecting with capped, jittered backoff.
 * onState receives "live" | "connecting" | "offline". Returns a function that closes it.
 */
export function live(onMessage, onState = () => {}) {
  let ws = null;
  let closed = false;
  let attempt = 0;
  let timer = null;

  const open = async () => {
    if (closed) return;
    onState("connecting");
    if (attempt > 0) await refresh().catch(() => false);
    const s = session();
    if (!s) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(s.access)}`);
    ws.addEventListener("open", () => {
      attempt = 0;
      onState("live");
    });
    ws.addEventListener("message", (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg && typeof msg.kind === "string") onMessage(msg);
    });
    ws.addEventListener("close", () => {
      if (closed) return;
      onState("offline");
      const delay = Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      timer = setTimeout(open, delay);
    });
  };
  open();
  return () => {
    closed = true;
    clearTimeout(timer);
    ws?.close();
  };
}
