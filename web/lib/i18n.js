// Every string the pages show, in zh-CN (the default) and English.
// t("key", {var}) looks a string up in the current language; markup uses data-i18n="key"
// (text), data-i18n-placeholder, data-i18n-aria-label and data-i18n-title.
import { en, zh } from "./strings.js";

const DICT = { "zh-CN": zh, en };
export const LANGS = [
  { code: "zh-CN", label: "中文" },
  { code: "en", label: "English" },
];

let current = pickLang();

function pickLang() {
  const saved = globalThis.localStorage?.getItem("ec.lang");
  const fromUrl = new URLSearchParams(globalThis.location?.search ?? "").get("lang");
  const lang = fromUrl || saved || "zh-CN";
  return lang in DICT ? lang : "zh-CN";
}

export function lang() {
  return current;
}

export function t(key, vars = {}) {
  const s = DICT[current][key] ?? DICT.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A label from a family of keys ("alert.type.fall"), or the raw code when unknown. */
export function label(prefix, code) {
  const key = `${prefix}.${code}`;
  return key in DICT[current] || key in DICT.en ? t(key) : String(code ?? "");
}

export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const attr of ["placeholder", "aria-label", "title"]) {
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      el.setAttribute(attr, t(el.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

export function setLang(code) {
  if (!(code in DICT) || code === current) return;
  current = code;
  globalThis.localStorage?.setItem("ec.lang", code);
  applyI18n();
  document.dispatchEvent(new CustomEvent("ec:lang", { detail: code }));
}

/** A <select> that switches the language; the pages re-render on the "ec:lang" event. */
export function langSwitch() {
  const wrap = document.createElement("label");
  wrap.className = "lang-switch";
  const span = document.createElement("span");
  span.className = "visually-hidden";
  span.dataset.i18n = "common.language";
  span.textContent = t("common.language");
  const sel = document.createElement("select");
  sel.name = "lang";
  for (const l of LANGS) sel.append(new Option(l.label, l.code, false, l.code === current));
  sel.addEventListener("change", () => setLang(sel.value));
  wrap.append(span, sel);
  return wrap;
}
