// Copy the run-time files of the npm dependencies into lib/vendor, with their licences.
// Run after `npm ci` in web/:  npm ci && npm run vendor   (the result is committed).
import { cpSync, mkdirSync, rmSync } from "node:fs";

const files = {
  leaflet: ["dist/leaflet.js", "dist/leaflet.css", "dist/images", "LICENSE", "package.json"],
};
for (const [pkg, paths] of Object.entries(files)) {
  const dest = `lib/vendor/${pkg}`;
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  for (const p of paths) {
    cpSync(`node_modules/${pkg}/${p}`, `${dest}/${p.replace(/^dist\//, "")}`, { recursive: true });
  }
}
