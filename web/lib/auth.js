// The sign-in gate every page shares: a labelled form, then GET /me and a role check.
import { ApiError, api, clearSession, login, logout, session } from "./api.js";
import { h, replace } from "./dom.js";
import { applyI18n, langSwitch, t } from "./i18n.js";

/**
 * Show the sign-in form until a user of one of `roles` is signed in, then call
 * onReady(me). `gate` is the element the form goes in; `app` the page shown after.
 */
export async function signIn({ roles, gate, app, onReady }) {
  applyI18n();
  document.addEventListener("ec:signed-out", () => location.reload());
  if (session()) {
    try {
      const me = await api("/me");
      if (roles.includes(me.role)) return ready(me);
      clearSession();
    } catch {
      clearSession();
    }
  }
  showForm();

  function ready(me) {
    gate.hidden = true;
    app.hidden = false;
    applyI18n();
    onReady(me);
  }

  function showForm(message = "") {
    app.hidden = true;
    gate.hidden = false;
    const error = h("p", { class: "form-error", role: "alert", id: "login-error" }, message);
    const form = h(
      "form",
      { class: "login card", "aria-labelledby": "login-title" },
      h("div", { class: "login-head" }, h("h1", { id: "login-title", "data-i18n": "login.title" }), langSwitch()),
      h("label", { for: "login-user", "data-i18n": "login.username" }),
      h("input", { id: "login-user", name: "username", autocomplete: "username", required: true, autocapitalize: "none" }),
      h("label", { for: "login-pass", "data-i18n": "login.password" }),
      h("input", { id: "login-pass", name: "password", type: "password", autocomplete: "current-password", required: true }),
      error,
      h("button", { type: "submit", class: "primary", "data-i18n": "login.submit" }),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const data = new FormData(form);
      error.textContent = "";
      try {
        await login(String(data.get("username")), String(data.get("password")));
        const me = await api("/me");
        if (!roles.includes(me.role)) {
          await logout();
          error.textContent = t("login.wrong_role");
          return;
        }
        ready(me);
      } catch (e) {
        error.textContent = e instanceof ApiError && e.status === 401 ? t("login.failed") : t("common.network_error");
      }
    });
    replace(gate, form);
    applyI18n(gate);
    form.querySelector("input").focus();
  }
}

/** The header's user line: name, language switch, sign-out. */
export function userBar(me) {
  const out = h("button", { type: "button", class: "link", "data-i18n": "login.sign_out" }, t("login.sign_out"));
  out.addEventListener("click", async () => {
    await logout();
    location.reload();
  });
  return h("div", { class: "userbar" }, h("span", { class: "who" }, me.display_name || me.username), langSwitch(), out);
}
