// The console's page weight and time to interactive, as the issue note
// reports them: bytes over the wire (compressed) and milliseconds until
// each page is usable, with an empty cache, three times each.
//   URL=http://127.0.0.1:8080 TOKEN=rpt_… node tests/browser/weight.mjs
// TOKEN is a salesperson owning the contact CONTACT and the group GROUP
// (default: the browser test's seeded Wang Fang and Spring tea).
import { chromium } from "playwright-core";
const base = process.env.URL, token = process.env.TOKEN;
const browser = await chromium.launch({ executablePath: process.env.RAPPORT_CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
async function run(label, path, ready, prepare) {
  const context = await browser.newContext({ viewport: { width: 360, height: 780 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  let bytes = 0, requests = 0;
  cdp.on("Network.loadingFinished", (e) => { bytes += e.encodedDataLength; requests++; });
  if (prepare) await prepare(page);
  const started = Date.now();
  await page.goto(base + path);
  await page.locator(ready).waitFor();
  const elapsed = Date.now() - started;
  const nav = await page.evaluate(() => { const n = performance.getEntriesByType("navigation")[0]; return { interactive: Math.round(n.domInteractive), loaded: Math.round(n.loadEventEnd) }; });
  console.log(`${label}: ${requests} requests, ${bytes} bytes over the wire, ready in ${elapsed} ms (domInteractive ${nav.interactive} ms, load ${nav.loaded} ms)`);
  await context.close();
}
for (let i = 0; i < 3; i++) {
  await run("console sign-in page (cold cache)", "/", "#token");
  await run("contact card, signed in (cold cache)", "/#/contact/" + (process.env.CONTACT || "00000000-0000-0000-0000-00000000000a"), "#mass .verdict-word", async (page) => {
    await page.addInitScript((t) => window.sessionStorage.setItem("rapport.token", t), token);
  });
  await run("a group's page, signed in (cold cache)", "/#/group/" + (process.env.GROUP || "00000000-0000-0000-0000-0000000000f1"), "#post-content .verdict-word", async (page) => {
    await page.addInitScript((t) => window.sessionStorage.setItem("rapport.token", t), token);
  });
  await run("GraphiQL (cold cache)", "/graphql", ".graphiql-container");
}
await browser.close();
