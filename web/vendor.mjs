// Copy the run-time files of the npm dependencies into the repository, with their licences.
// Run after `npm ci` in web/:  npm ci && npm run vendor   (the result is committed).
// Leaflet goes to lib/vendor (served to browsers); axe-core only to tests/e2e/vendor (the
// accessibility check the browser tests inject; never served by the API).
import { cpSync, mkdirSync, rmSync } from "node:fs";

const files = {
  "lib/vendor/leaflet": ["leaflet", ["dist/leaflet.js", "dist/leaflet.css", "dist/images", "LICENSE", "package.json"]],
  "../tests/e2e/vendor/axe-core": ["axe-core", ["axe.min.js", "LICENSE", "package.json"]],
};
for (const [dest, [pkg, paths]] of Object.entries(files)) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  for (const p of paths) {
    cpSync(`node_modules/${pkg}/${p}`, `${dest}/${p.replace(/^dist\//, "")}`, { recursive: true });
  }
}
