// make e2e: the web console in headless Chromium, against a daemon with two
// fixture servers and two clients. Every wait is bounded; every process it
// starts is stopped by its pid. Screenshots go to the directory given.
//
//   node console.mjs MCPSHARE FIXTURE SCREENSHOT_DIR
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const [mcpshare, fixture, shots] = process.argv.slice(2).map((p) => resolve(p));
if (!mcpshare || !fixture || !shots) {
  console.error("usage: node console.mjs MCPSHARE FIXTURE SCREENSHOT_DIR");
  process.exit(2);
}
const WAIT_MS = 30000;
const home = mkdtempSync(join(tmpdir(), "mcpshare-e2e-"));
// A config of its own (none): the user's configured servers stay out of it.
const env = { ...process.env, MCPSHARE_HOME: home, MCPSHARE_CONFIG: join(home, "config.json") };
mkdirSync(shots, { recursive: true });
const passed = [];
const step = (text) => {
  passed.push(text);
  console.log("ok   " + text);
};

/** A client: `mcpshare run -- fixture` in its own directory, spoken to over stdio. */
function client(name) {
  const cwd = join(home, name);
  mkdirSync(cwd);
  const child = spawn(mcpshare, ["run", "--", fixture], { cwd, env, stdio: ["pipe", "pipe", "inherit"] });
  let buf = "";
  const waiting = new Map();
  child.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let msg;
      try { msg = JSON.parse(line); } catch { continue; }
      if (msg.id !== undefined && waiting.has(msg.id)) {
        waiting.get(msg.id)(msg);
        waiting.delete(msg.id);
      }
    }
  });
  let next = 1;
  const send = (m) => child.stdin.write(JSON.stringify(m) + "\n");
  const request = (method, params) => {
    const id = next++;
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`${name}: no answer to ${method}`)), WAIT_MS);
      waiting.set(id, (m) => { clearTimeout(t); res(m); });
      send({ jsonrpc: "2.0", id, method, params });
    });
  };
  return {
    child,
    name,
    request,
    async initialize() {
      const r = await request("initialize", {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name, version: "1.0.0" },
      });
      if (r.error) throw new Error(`${name}: initialize failed: ${JSON.stringify(r.error)}`);
      send({ jsonrpc: "2.0", method: "notifications/initialized" });
    },
    call: (tool, args) => request("tools/call", { name: tool, arguments: args || {} }),
  };
}

async function waitFor(what, f) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const clients = [];
let browser;
let failed = false;
try {
  for (const name of ["e2e-client-a", "e2e-client-b"]) {
    const c = client(name);
    clients.push(c);
    await c.initialize();
  }
  const pidOf = async (c) => Number((await c.call("pid")).result.content[0].text);
  const pidA = await pidOf(clients[0]);
  const pidB = await pidOf(clients[1]);
  step(`two clients attached, to two fixture servers (pids ${pidA} and ${pidB})`);

  const url = execFileSync(mcpshare, ["console"], { env, timeout: WAIT_MS }).toString().trim();
  if (!/^http:\/\/127\.0\.0\.1:\d+\/console#code=[0-9a-f]{64}$/.test(url)) throw new Error("bad URL " + url);
  step("mcpshare console printed " + url.replace(/code=.*/, "code=…"));

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });
  page.on("dialog", (d) => d.accept());
  await page.goto(url);
  await page.locator("#conn.conn-live").waitFor({ timeout: WAIT_MS });
  if (new URL(page.url()).hash) throw new Error("the code stayed in the address bar: " + page.url());
  const cookies = await page.context().cookies();
  const cookie = cookies.find((c) => c.name.startsWith("mcpshare_console_"));
  if (!cookie || !cookie.httpOnly || cookie.sameSite !== "Strict") throw new Error("bad cookie " + JSON.stringify(cookie));
  step("logged in through the printed URL (code gone from the address bar, HttpOnly SameSite=Strict cookie)");

  await waitFor("two servers and two sessions", async () =>
    (await page.locator("[data-server]").count()) === 2 && (await page.locator("[data-session]").count()) === 2);
  for (const name of ["e2e-client-a", "e2e-client-b"]) {
    await page.locator("[data-session] h3", { hasText: name }).first().waitFor({ timeout: WAIT_MS });
  }
  const serverWithPid = (pid) =>
    page.locator("[data-server]").filter({ has: page.locator(`dd[data-fact="pid"]`, { hasText: new RegExp(`^${pid}$`) }) });
  await serverWithPid(pidA).waitFor({ timeout: WAIT_MS });
  await serverWithPid(pidB).waitFor({ timeout: WAIT_MS });
  await page.locator("#doctor li[data-check]").first().waitFor({ timeout: WAIT_MS });
  await waitFor("both bridges' start reports", async () =>
    (await page.locator('[data-session] li[data-kind="started"]').count()) === 2);
  for (const name of ["e2e-client-a", "e2e-client-b"]) {
    const version = page.locator("[data-session] h3", { hasText: name + " 1.0.0" });
    if ((await version.count()) !== 1) throw new Error(`no session shows ${name} 1.0.0`);
  }
  step("both servers (running, with their pids), both sessions (client name and version, each with its bridge's start report) and the doctor's findings are shown");
  await page.screenshot({ path: join(shots, "01-overview.png"), fullPage: true });

  const cardA = page.locator(`[data-server]`).filter({ has: page.locator(`dd[data-fact="pid"]`, { hasText: new RegExp(`^${pidA}$`) }) });
  const idA = await cardA.getAttribute("data-server");
  const logA = page.locator(`pre[data-log="${idA}"]`);
  await waitFor("server A's start line in its log", async () => (await logA.textContent()).includes(`fixture pid ${pidA} started`));
  step(`server ${idA}'s log tail shows its start line`);

  await page.locator(`[data-server="${idA}"] button[data-action="servers/${idA}/restart"]`).click();
  const newA = await waitFor("server A's new pid", async () => {
    const t = (await page.locator(`[data-server="${idA}"] dd[data-fact="pid"]`).textContent()).trim();
    return t && t !== String(pidA) && /^\d+$/.test(t) ? Number(t) : null;
  });
  step(`restarted ${idA} from the page: its pid changed from ${pidA} to ${newA}`);
  await waitFor("the restarted server's start line", async () =>
    (await page.locator(`pre[data-log="${idA}"]`).textContent()).includes(`fixture pid ${newA} started`));
  step(`a log line arrived live: "fixture pid ${newA} started"`);
  await page.locator(`[data-server="${idA}"]`).screenshot({ path: join(shots, "02-restarted-server.png") });

  const idB = await page.locator("[data-server]").filter({ hasNot: page.locator(`[data-server="${idA}"]`) })
    .evaluateAll((cards, a) => cards.map((c) => c.getAttribute("data-server")).find((id) => id !== a), idA);
  // One crash is restarted after a backoff; five within a minute and the
  // daemon gives up and says why (1 + 2 + 4 + 8 s of backoff first).
  const stateB = page.locator(`[data-server="${idB}"] [data-fact="state"]`);
  for (let crashes = 0; (await stateB.textContent()).trim() !== "crashed"; crashes++) {
    if (crashes >= 5) throw new Error(`server ${idB} is not marked crashed after ${crashes} crashes`);
    await waitFor("server B running again", async () => (await stateB.textContent()).trim() === "running");
    const crash = await clients[1].call("crash", { code: 3 });
    if (!crash.error) throw new Error("the crash call got no error: " + JSON.stringify(crash));
    await waitFor("server B to leave running", async () => (await stateB.textContent()).trim() !== "running");
  }
  const lastError = page.locator(`[data-server="${idB}"] dd[data-fact="last error"]`);
  const shown = await waitFor("server B's error", async () => {
    const t = (await lastError.textContent()).trim();
    return t && t !== "–" ? t : null;
  });
  step(`crashed server ${idB} shows its error: "${shown}"`);
  await page.locator(`[data-server="${idB}"]`).screenshot({ path: join(shots, "03-crashed-server.png") });
  await page.screenshot({ path: join(shots, "04-after-crash.png"), fullPage: true });

  await page.setViewportSize({ width: 420, height: 900 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 420) throw new Error(`the page is ${wide} px wide in a 420 px window`);
  await page.screenshot({ path: join(shots, "05-narrow.png"), fullPage: true });
  step("readable in a narrow (420 px) window: no horizontal scrolling");

  if (problems.length) throw new Error("the page reported errors: " + problems.join("; "));
  step("no script error or CSP violation on the page");
} catch (e) {
  failed = true;
  console.error("FAIL " + e.message);
} finally {
  if (browser) await browser.close();
  for (const c of clients) {
    c.child.stdin.end();
  }
  const deadline = Date.now() + WAIT_MS;
  for (const c of clients) {
    while (c.child.exitCode === null && c.child.signalCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (c.child.exitCode === null && c.child.signalCode === null) process.kill(c.child.pid, "SIGKILL");
  }
  try {
    execFileSync(mcpshare, ["stop"], { env, timeout: WAIT_MS, stdio: "inherit" });
  } catch (e) {
    console.error("mcpshare stop: " + e.message);
    failed = true;
  }
  rmSync(home, { recursive: true, force: true });
}
console.log(`\n${passed.length} step(s) passed${failed ? ", then one failed" : ""}; screenshots in ${shots}`);
process.exit(failed ? 1 : 0);
