// drive.js - a headless Chromium (Debian's /usr/bin/chromium by default,
// $CHROMIUM to override) driven line by line from tests/e2e/test_dashboard.py.
//
// stdin: one JSON command per line; stdout: one JSON answer per line.
//   {"cmd": "goto", "url": U}                   load a page
//   {"cmd": "eval", "expr": JS}                 value of a page expression
//   {"cmd": "waitFor", "expr": JS, "timeout": ms, "interval": ms}  until the expression is
//                                               truthy, polled every interval (100) ms
//   {"cmd": "click", "selector": S}
//   {"cmd": "screenshot", "path": P}
//   {"cmd": "quit"}
// Every answer carries the dialogs the page opened (alert/confirm/prompt)
// and its uncaught errors so far, so the test can assert there were none.
"use strict";
const readline = require("readline");
const { chromium } = require("playwright-core");

async function main() {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1600 } });
  const dialogs = [];
  const errors = [];
  page.on("dialog", async (d) => { dialogs.push(d.type() + ": " + d.message()); await d.dismiss(); });
  page.on("pageerror", (e) => errors.push(String(e)));
  const out = (o) => process.stdout.write(JSON.stringify(Object.assign(o, { dialogs, errors })) + "\n");
  out({ ok: true, ready: true });

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    let c;
    try { c = JSON.parse(line); } catch (e) { out({ ok: false, error: "bad command: " + line }); continue; }
    try {
      if (c.cmd === "goto") {
        await page.goto(c.url, { waitUntil: "load" });
        out({ ok: true });
      } else if (c.cmd === "eval") {
        out({ ok: true, value: await page.evaluate(c.expr) });
      } else if (c.cmd === "waitFor") {
        // Polled with evaluate(): the page's Content-Security-Policy forbids
        // the string evaluation waitForFunction() would do.
        const deadline = Date.now() + (c.timeout || 15000);
        let seen = false, last = "";
        while (!seen && Date.now() < deadline) {
          try { seen = !!(await page.evaluate(c.expr)); } catch (e) { last = String(e.message || e).split("\n")[0]; }
          if (!seen) await new Promise((r) => setTimeout(r, c.interval || 100));
        }
        out(seen ? { ok: true } : { ok: false, error: "timeout" + (last ? ": " + last : "") });
      } else if (c.cmd === "click") {
        await page.click(c.selector, { timeout: 5000 });
        out({ ok: true });
      } else if (c.cmd === "screenshot") {
        await page.screenshot({ path: c.path, fullPage: true });
        out({ ok: true });
      } else if (c.cmd === "quit") {
        out({ ok: true });
        break;
      } else {
        out({ ok: false, error: "unknown command " + c.cmd });
      }
    } catch (e) {
      out({ ok: false, error: String(e && e.message ? e.message : e).split("\n")[0] });
    }
  }
  await browser.close();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, fatal: String(e) }) + "\n");
  process.exit(1);
});
