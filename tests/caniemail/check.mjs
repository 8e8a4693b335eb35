// The (client, feature) errors that caniemail's data finds in each HTML file given, printed as JSON:
//   {"files": {FILE: [[client, feature], ...]}, "skipped": [client, ...]}
// Usage: node check.mjs STOCK.html OURS.html   (tests/test_caniemail.py compares ours with a stock MJML newsletter's)
// caniemail throws for a client whose data lacks a feature the HTML uses (e.g. <img> on gmx.android); such a
// client is left out for every file, so that each file is judged by the same clients.
import { readFileSync } from "node:fs";
import { caniemail } from "caniemail";
import { clientNames } from "./node_modules/caniemail/dist/clients.js"; // not in the package's exports map

const pages = Object.fromEntries(process.argv.slice(2).map((file) => [file, readFileSync(file, "utf8")]));
const found = Object.fromEntries(Object.keys(pages).map((file) => [file, new Set()]));
const skipped = [];
for (const client of clientNames) {
  const errors = {};
  try {
    for (const [file, html] of Object.entries(pages)) errors[file] = caniemail({ clients: [client], html }).issues.errors;
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    skipped.push(client);
    continue;
  }
  for (const [file, byClient] of Object.entries(errors)) {
    for (const [name, issues] of byClient) for (const issue of issues) found[file].add(JSON.stringify([name, issue.title]));
  }
}
const files = Object.fromEntries(
  Object.entries(found).map(([file, set]) => [file, [...set].sort().map((pair) => JSON.parse(pair))]),
);
console.log(JSON.stringify({ files, skipped }));
