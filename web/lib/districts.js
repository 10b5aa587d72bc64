// The districts drawn on the offline map: outlines as bounding boxes (south, north, west, east),
// the same boxes the simulated Rugao fleet uses (simulators/profiles.py RUGAO_DISTRICTS).
// A deployment replaces this file with its own outlines; nothing is fetched from the web.
export const DISTRICTS = [
  { name: "Rucheng", zh: "如城街道", box: [32.36, 32.4, 120.545, 120.6] },
  { name: "Chengnan", zh: "城南街道", box: [32.33, 32.36, 120.545, 120.6] },
  { name: "Dongchen", zh: "东陈镇", box: [32.36, 32.405, 120.62, 120.68] },
  { name: "Dingyan", zh: "丁堰镇", box: [32.33, 32.37, 120.63, 120.68] },
  { name: "Baipu", zh: "白蒲镇", box: [32.22, 32.26, 120.59, 120.65] },
];

/** A district's name in the current language (the API speaks the district code, e.g. "Rucheng"). */
export function districtName(code, lang) {
  const d = DISTRICTS.find((x) => x.name === code);
  if (!d) return code ?? "";
  return lang === "zh-CN" ? d.zh : d.name;
}
