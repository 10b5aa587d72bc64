// Deployment settings for the pages. Edit this file (or set localStorage "ec.tileUrl") to use a
// tile server you run; by default the map has no tiles and works without the internet.
export const CONFIG = {
  // e.g. "https://tiles.example.internal/{z}/{x}/{y}.png" — never a public CDN by default
  tileUrl: null,
  tileAttribution: "",
  // the long-lie clock turns urgent after this many seconds on the floor
  longLieUrgentS: 600,
};

export function tileUrl() {
  return globalThis.localStorage?.getItem("ec.tileUrl") || CONFIG.tileUrl;
}
