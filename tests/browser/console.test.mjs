// The console in a real browser: Debian's Chromium driven by Playwright,
// against the `rapport serve` that tests/it/console.rs started with a
// seeded ledger. Every request to anything but the server is refused and
// fails the run: the console and GraphiQL must work with no internet.
//
// Environment: RAPPORT_URL, SALES_TOKEN (alice), MANAGER_TOKEN,
// INGEST_TOKEN, OTHERS_CONTACT (a contact alice does not own),
// CHROMIUM (the browser), SCREENSHOTS (where to keep the pictures). The
// seeded ledger also holds alice's new group "Spring tea" (see seed in
// tests/it/console.rs).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("RAPPORT_URL");
const origin = new URL(base).origin;
const screenshots = env("SCREENSHOTS");

const outside = [];
const pageErrors = [];

async function newPage(browser, width, height, locale) {
  const context = await browser.newContext({ viewport: { width, height }, locale });
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith(origin.replace("http", "ws"))) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") pageErrors.push(message.text());
  });
  return page;
}

/** Runs axe-core on the page; fails on any serious or critical finding. */
async function audit(page, where) {
  // Evaluated through the DevTools protocol, which the page's strict
  // Content-Security-Policy (no inline scripts) does not govern.
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const found = await axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21aa", "best-practice"] });
    return found.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
  });
  const serious = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `${where}: accessibility findings ${JSON.stringify(serious, null, 1)}`);
  console.log(`ok  accessible: ${where} (${result.length} minor notes)`);
}

async function signIn(page, token) {
  await page.goto(base);
  await page.getByLabel(/Access token|访问令牌/).fill(token);
  await page.keyboard.press("Enter");
  await page.locator("#who").waitFor();
}

async function api(token, query, variables) {
  const response = await fetch(`${origin}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body));
  return body.data;
}

async function ingestDeletion(contactId) {
  await api(env("INGEST_TOKEN"), "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended } }", {
    events: [{ eventId: randomUUID(), contactId, type: "DELETION", occurredAt: new Date().toISOString(), channel: "WECHAT", source: "browser-test" }],
  });
}

const step = (name) => console.log(`ok  ${name}`);

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

try {
  // --- a salesperson on a narrow screen, in English ---
  const page = await newPage(browser, 360, 780, "en-US");
  await page.goto(base);
  await page.getByLabel("Access token").waitFor();
  await audit(page, "sign-in at 360 px");
  await page.getByLabel("Access token").fill("rpt_not_a_real_token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "unknown or revoked" }).waitFor();
  step("a wrong token is refused with a clear message");
  // The browser logs that refusal (401); anything logged later is a fault.
  pageErrors.length = 0;

  await page.getByLabel("Access token").fill(env("SALES_TOKEN"));
  await page.keyboard.press("Enter");
  await page.locator("#who").filter({ hasText: "alice · sales" }).waitFor();
  step("signed in: the header shows who and which role");

  await page.getByLabel("Name, phone, WeChat id or email").pressSequentially("13800000001", { delay: 20 });
  const result = page.locator("#results a").filter({ hasText: "Wang Fang" });
  await result.waitFor();
  await result.click();
  step("found Wang Fang by a phone number typed without spaces");

  await page.locator("#contact-name").filter({ hasText: "Wang Fang" }).waitFor();
  const massVerdict = page.locator("#mass .verdict-word");
  const chatVerdict = page.locator("#chat .verdict-word");
  assert.equal(await chatVerdict.getAttribute("data-verdict"), "ALLOW");
  assert.equal(await chatVerdict.textContent(), "Go ahead");
  assert.notEqual(await massVerdict.getAttribute("data-verdict"), null);
  assert.match(await page.locator("#score").textContent(), /^\d+$/);
  assert.ok((await page.locator(".chart .marker").count()) > 0, "the chart marks the events");
  assert.ok((await page.locator(".timeline tbody tr").count()) > 0, "the timeline lists the events");
  await page.locator("#live.live-on").waitFor();
  step(`read the verdicts: mass ${await massVerdict.getAttribute("data-verdict")}, chat ALLOW, with the chart and timeline`);
  await audit(page, "contact card at 360 px");
  await page.screenshot({ path: `${screenshots}/console-360.png`, fullPage: true });
  const cardUrl = page.url();
  const contactId = cardUrl.split("/").pop();

  // Gone offline and back (a Wi-Fi change): the card says so, then follows again.
  await page.context().setOffline(true);
  await page.locator("#live.live-off").waitFor();
  await page.context().setOffline(false);
  await page.locator("#live.live-on").waitFor();
  step("the card says when it is not live, and follows again once back online");

  await ingestDeletion(contactId);
  await page.locator('#mass .verdict-word[data-verdict="DENY"]').waitFor();
  await page.locator('#chat .verdict-word[data-verdict="DENY"]').waitFor();
  await page.locator('#mass li[data-code="CONTACT_DELETED_US"]').waitFor();
  await page.locator("#announcer").filter({ hasText: "Deleted you" }).waitFor();
  step("the card turned DENY by itself when a deletion was ingested through the API");

  // Her new customer group: three posts today already, so a fourth waits
  // until the morning on the group's clock; a quiet member who deleted
  // her is not to be greeted, one who did not may be.
  await page.getByRole("navigation").getByRole("link", { name: "Groups", exact: true }).click();
  const groupRow = page.locator("#group-list tbody tr").filter({ hasText: "Spring tea" });
  await groupRow.waitFor();
  const listed = await groupRow.textContent();
  for (const shown of ["22", "4.3%", "3 of 3", "too many promotions"]) {
    assert.ok(listed.includes(shown), `the groups list shows ${shown}: ${listed}`);
  }
  assert.equal(await groupRow.locator('[data-alert="LEAVE_RATE"]').count(), 0);
  await audit(page, "groups list at 360 px");
  await groupRow.getByRole("link").click();
  await page.locator("#group-name").filter({ hasText: "Spring tea" }).waitFor();
  assert.equal(await page.locator("#post-content .verdict-word").getAttribute("data-verdict"), "DEFER");
  assert.equal(await page.locator("#post-content .verdict-word").textContent(), "Wait");
  const capped = await page.locator('#post-content li[data-code="NEW_GROUP_POST_CAP"]').textContent();
  assert.ok(capped.includes("a new group takes at most 3 a day"), capped);
  assert.match(await page.locator("#post-content .next").textContent(), /08:00 group time$/);
  await page.locator('#post-promotion li[data-code="PROMOTION_SHARE"]').waitFor();
  assert.equal(await page.locator("#posts-today").textContent(), "3 of 3");
  assert.equal(await page.locator("#leave-rate").textContent(), "4.3%");
  const costly = page.locator("#posts tbody tr.alerting");
  assert.equal(await costly.count(), 1, "one post cost a member");
  assert.ok((await costly.textContent()).includes("promotion"), await costly.textContent());
  const sun = page.locator('#silent tr[data-member="m-sun"]');
  assert.equal(await sun.getByRole("link").getAttribute("href"), "#/contact/00000000-0000-0000-0000-00000000000d");
  assert.equal(await sun.getByRole("link").textContent(), "Sun Li");
  assert.ok((await sun.textContent()).includes("Do not greet"), await sun.textContent());
  assert.equal(await sun.locator("[data-verdict]").getAttribute("data-verdict"), "DENY");
  const liNa = await page.locator('#silent tr[data-member="m-li"]').textContent();
  assert.ok(liNa.includes("Li Na") && liNa.includes("due a personal greeting") && liNa.includes("may be greeted"), liNa);
  await page.locator("#live.live-on").waitFor();
  await audit(page, "a group at 360 px");
  step("her group: a fourth post of the day waits until 08:00 group time, the promotion that cost a member is marked, and Sun Li, who deleted her, is not to be greeted");
  await page.goto(cardUrl);
  await page.locator("#contact-name").filter({ hasText: "Wang Fang" }).waitFor();

  await page.getByRole("button", { name: "Switch to Chinese" }).click();
  await page.locator("#mass .verdict-word").filter({ hasText: "不能发" }).waitFor();
  const reason = await page.locator('#mass li[data-code="CONTACT_DELETED_US"]').textContent();
  assert.ok(reason.includes("对方已经把你删了"), reason);
  assert.equal(await page.evaluate(() => document.documentElement.lang), "zh-CN");
  step("switched to Chinese: verdicts and the server's reasons in Chinese");
  await audit(page, "contact card in Chinese");

  await page.goto(`${base}#/contact/${env("OTHERS_CONTACT")}`);
  await page.locator("#not-found").waitFor();
  assert.equal(await page.locator("#contact-name").count(), 0);
  step("another owner's contact, reached by editing the URL, is not shown");

  // GraphiQL in the same tab: the console's token is offered as the header.
  await page.goto(`${origin}/graphql`);
  await page.locator(".graphiql-container").waitFor();
  await page.locator(".graphiql-execute-button").click();
  await page.locator(".result-window").filter({ hasText: '"name": "alice"' }).waitFor();
  step("GraphiQL ran a query with nothing from outside the machine");

  // --- a manager on a desktop screen ---
  const wide = await newPage(browser, 1280, 900, "zh-CN");
  await signIn(wide, env("MANAGER_TOKEN"));
  assert.equal(await wide.evaluate(() => document.documentElement.lang), "zh-CN");
  await wide.getByLabel("姓名、手机号、微信号或邮箱").fill("Qian");
  await wide.locator("#results a").first().click();
  await wide.locator("#contact-name").waitFor();
  await wide.locator("#live.live-on").waitFor();
  await audit(wide, "contact card at 1280 px");
  await wide.screenshot({ path: `${screenshots}/console-1280.png`, fullPage: true });
  step("a manager reads another owner's contact at 1280 px, the browser's Chinese chosen");

  await wide.goto(`${base}#/contacts`);
  await wide.locator("#contact-list tbody tr").first().waitFor();
  await wide.locator("#violations").waitFor();
  await audit(wide, "contact list");
  step("the manager's contact list and violations");

  await wide.goto(`${base}#/preflight`);
  await wide.getByLabel("发送对象：标签表达式").fill("vip");
  await wide.getByRole("button", { name: "开始预检" }).click();
  await wide.locator("#preflight-result .total").waitFor();
  step("preflight of an audience with counts per verdict");

  // A campaign's page raises its alert by itself when the send costs a contact.
  const launched = await api(env("MANAGER_TOKEN"),
    "mutation($key: UUID!) { launchCampaign(input: { name: \"双十二\", audience: { tags: \"promo\" }, mode: MASS, channel: WECHAT, holdoutPercent: 0, idempotencyKey: $key }) { campaignId sent } }",
    { key: randomUUID() });
  assert.equal(launched.launchCampaign.sent, 1, JSON.stringify(launched));
  await wide.goto(`${base}#/campaign/${launched.launchCampaign.campaignId}`);
  await wide.locator(".campaign h1").filter({ hasText: "双十二" }).waitFor();
  await wide.locator("#live.live-on").waitFor();
  assert.equal(await wide.locator(".campaign .alert").count(), 0);
  await ingestDeletion("00000000-0000-0000-0000-00000000000c");
  await wide.locator(".campaign .alert").filter({ hasText: "流失率" }).waitFor();
  await wide.locator(".campaign tbody a").filter({ hasText: "Zhou Jie" }).waitFor();
  await audit(wide, "a campaign's aftermath");
  step("a campaign's page showed its loss alert and who was lost, live, after a deletion");

  // A group's page raises the leave-rate alert by itself when one more member leaves.
  await wide.getByRole("navigation").getByRole("link", { name: "微信群", exact: true }).click();
  const wideRow = wide.locator("#group-list tbody tr").filter({ hasText: "Spring tea" });
  await wideRow.waitFor();
  assert.ok((await wideRow.textContent()).includes("促销太多"), await wideRow.textContent());
  await audit(wide, "groups list at 1280 px");
  await wideRow.getByRole("link").click();
  await wide.locator("#group-name").filter({ hasText: "Spring tea" }).waitFor();
  await wide.locator("#live.live-on").waitFor();
  assert.equal(await wide.locator("#post-content .verdict-word").textContent(), "晚点再发");
  assert.ok((await wide.locator('#post-content li[data-code="NEW_GROUP_POST_CAP"]').textContent()).includes("新群每天最多3条"));
  assert.equal(await wide.locator('.group-page .alert[data-alert="LEAVE_RATE"]').count(), 0);
  await api(env("MANAGER_TOKEN"),
    "mutation($group: UUID!) { recordGroupMember(input: { groupId: $group, member: \"m-01\", change: LEFT }) { appended } }",
    { group: wide.url().split("/").pop() });
  await wide.locator('.group-page .alert[data-alert="LEAVE_RATE"]').filter({ hasText: "退群率" }).waitFor();
  await wide.locator('#post-content li[data-code="MEMBERS_LEAVING"]').waitFor();
  assert.equal(await wide.locator("#leave-rate").textContent(), "8.6%");
  await audit(wide, "a group at 1280 px");
  await wide.screenshot({ path: `${screenshots}/console-group-1280.png`, fullPage: true });
  step("a group's page showed its leave-rate alert, live, after one more member left");

  // An ingest token has no pages, and is told so.
  const ingest = await newPage(browser, 360, 780, "en-US");
  await ingest.goto(base);
  await ingest.getByLabel("Access token").fill(env("INGEST_TOKEN"));
  await ingest.keyboard.press("Enter");
  await ingest.getByRole("alert").filter({ hasText: "for the API only" }).waitFor();
  step("an ingest token is told the console has no pages for it");

  assert.deepEqual(outside, [], "requests left the machine");
  assert.deepEqual(pageErrors, [], "the pages logged errors");
  step("no request left the machine and no page logged an error");
} finally {
  await browser.close();
}
