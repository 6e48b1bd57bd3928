// Drives chatgate's demo page (served at /) in the system Chromium with
// playwright-core, for tests/demo_browser.rs.
//
//   node demo.mjs <server-url> <artifacts-dir>
//
// Two browser contexts (alice and bob) connect, join "general", see each
// other online and typing, chat, alice runs into the message rate limit (the
// test server allows 3 messages a minute) and sees RATE_LIMITED, then bob's
// context closes and alice sees him go offline. Screenshots are written to
// <artifacts-dir>. The last stdout line is JSON: {"ok":true,"steps":[...]} or
// {"ok":false,"step":...,"error":...}; the exit code says the same.
//
// The browser is /usr/bin/chromium (or $CHROMIUM_PATH); never run
// `npx playwright install`. Each launch gets a fresh temporary profile:
// Playwright creates its own --user-data-dir (and refuses one in `args`).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, artifacts] = process.argv.slice(2);
if (!url || !artifacts) {
  console.error("usage: node demo.mjs <server-url> <artifacts-dir>");
  process.exit(2);
}
const WAIT_MS = Number(process.env.CHATGATE_BROWSER_WAIT_MS || 10000);
mkdirSync(artifacts, { recursive: true });

const steps = [];
let step = "launch";
const log = (name) => {
  step = name;
  steps.push(name);
  console.error(`[demo.mjs] ${name}`);
};

let browser;
const pages = [];
try {
  log("launch");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: WAIT_MS * 3,
  });

  async function login(user) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on("pageerror", (err) => console.error(`[${user} page error] ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") console.error(`[${user} console] ${msg.text()}`);
    });
    pages.push({ user, page });
    await page.goto(url);
    await page.fill("#login-user", user);
    await page.click("#connect");
    await page.waitForSelector(`#conn-state[data-state="online"]`);
    const badge = await page.textContent("#conn-state");
    if (!badge.includes(user)) throw new Error(`badge says ${badge}`);
    return { context, page };
  }

  async function joinGeneral(page) {
    await page.fill("#join-input", "general");
    await page.click("#join-button");
    await page.waitForSelector(`#channels li[data-channel="general"].active`);
  }

  log("alice connects and joins general");
  const alice = await login("alice");
  await joinGeneral(alice.page);
  await alice.page.waitForSelector(`#online li[data-user="alice"]`);

  log("bob connects and joins general");
  const bob = await login("bob");
  await joinGeneral(bob.page);

  log("both see each other online");
  await bob.page.waitForSelector(`#online li[data-user="alice"]`);
  await alice.page.waitForSelector(`#online li[data-user="bob"]`);

  log("bob sees alice typing");
  await alice.page.fill("#message-input", "hello bob");
  await bob.page.waitForFunction(
    () => document.querySelector("#typing").textContent.includes("alice is typing"),
  );

  log("alice's message reaches bob");
  await alice.page.click("#send");
  await bob.page.waitForSelector(`.message[data-user="alice"] .text >> text="hello bob"`);
  await alice.page.waitForSelector(`.message.mine .text >> text="hello bob"`);

  log("bob's reply reaches alice");
  await bob.page.fill("#message-input", "hi alice!");
  await bob.page.click("#send");
  await alice.page.waitForSelector(`.message[data-user="bob"] .text >> text="hi alice!"`);

  log("alice runs into the rate limit and sees RATE_LIMITED");
  let limited = false;
  for (let i = 1; i <= 5 && !limited; i += 1) {
    await alice.page.fill("#message-input", `message ${i}`);
    await alice.page.click("#send");
    // Either the message shows up (sent) or the error does.
    await alice.page.waitForFunction(
      (text) =>
        [...document.querySelectorAll(".message.mine .text")].some((el) => el.textContent === text) ||
        document.querySelector(`#errors .error[data-code="RATE_LIMITED"]`) !== null,
      `message ${i}`,
    );
    limited = (await alice.page.$(`#errors .error[data-code="RATE_LIMITED"]`)) !== null;
  }
  if (!limited) throw new Error("no RATE_LIMITED error shown after 5 more messages");
  await alice.page.screenshot({ path: join(artifacts, "demo-alice.png") });
  await bob.page.screenshot({ path: join(artifacts, "demo-bob.png") });

  log("bob closes his window and alice sees him go offline");
  await bob.context.close();
  pages.splice(pages.findIndex((p) => p.user === "bob"), 1);
  await alice.page.waitForSelector(`#online li[data-user="bob"]`, { state: "detached" });
  await alice.page.waitForSelector(`#online li[data-user="alice"]`);
  await alice.page.screenshot({ path: join(artifacts, "demo-after-bob-left.png") });

  log("done");
  console.log(JSON.stringify({ ok: true, steps }));
  await browser.close();
  process.exit(0);
} catch (err) {
  for (const { user, page } of pages) {
    try {
      await page.screenshot({ path: join(artifacts, `demo-failure-${user}.png`) });
    } catch (_) {
      // The page may be gone.
    }
  }
  console.log(JSON.stringify({ ok: false, step, steps, error: String(err && err.stack || err) }));
  try {
    if (browser) await browser.close();
  } catch (_) {
    // Already closed.
  }
  process.exit(1);
}
