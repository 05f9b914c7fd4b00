// make interop: the official MCP conformance suite (server mode, spec
// version 2025-11-25) against conformance-server.mjs twice: directly over
// the SDK's own Streamable HTTP transport (with its resumability: an event
// store and a retry interval), the baseline, and through the per-upstream
// endpoint of a daemon running it on stdio. Every check that passes
// directly must pass through mcpshare. Prints "N passed, M failed".
// Usage: node conformance.mjs MCPSHARE  (run from the scratch directory holding node_modules)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MCPSHARE = resolve(process.argv[2]);
const SERVER = resolve("conformance-server.mjs");
const CLI = resolve("node_modules/@modelcontextprotocol/conformance/dist/index.js");
const SHIM = resolve("conformance-shim/register.mjs");
const SPEC = "2025-11-25";
const home = mkdtempSync(join(tmpdir(), "mcpshare-conformance-"));
const env = { ...process.env, MCPSHARE_HOME: home };
const children = [];
let passed = 0, failed = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, ms, f) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function start(command, args, extraEnv = {}) {
  const child = spawn(command, args, { env: { ...env, ...extraEnv }, stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  return child;
}

// The suite, as one process with a deadline (run asynchronously: the
// proxy in front of the daemon lives in this process): each check's status.
async function suite(url, label) {
  const out = join(home, `results-${label}`);
  const cli = spawn(process.execPath, ["--import", SHIM, CLI, "server", "--url", url, "--suite", "all", "--spec-version", SPEC, "-o", out],
    { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  cli.stderr.on("data", (d) => { stderr += d; });
  const timer = setTimeout(() => cli.kill(), 300000);
  await new Promise((ok) => cli.on("exit", ok));
  clearTimeout(timer);
  if (!existsSync(out)) throw new Error(`${label}: the conformance suite did not run: ${stderr}`);
  const checks = new Map();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === "checks.json") {
        const scenario = dir.split("/").pop().replace(/^server-/, "").replace(/-\d{4}-.*$/, "");
        for (const c of JSON.parse(readFileSync(path, "utf8"))) {
          const key = `${scenario} ${c.id}`;
          // The worst status of a check id wins; INFO (a note, or "not
          // applicable") only where nothing else was said.
          const rank = { FAILURE: 3, WARNING: 2, SUCCESS: 1, INFO: 0 };
          const seen = checks.get(key);
          if (seen === undefined || (rank[c.status] ?? 0) > (rank[seen] ?? 0)) checks.set(key, c.status);
        }
      }
    }
  };
  walk(out);
  return checks;
}

function tally(checks) {
  const count = (status) => [...checks.values()].filter((s) => s === status).length;
  return `${count("SUCCESS")} checks (${count("WARNING")} warnings, ${count("FAILURE")} failures)`;
}

// Adds the daemon's bearer token and maps the proxy's own Host to the
// daemon's; every other header, a foreign Host or Origin included, passes
// through as sent.
function proxy(port, token) {
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    const own = `127.0.0.1:${server.address().port}`;
    const localhost = `localhost:${server.address().port}`;
    if (headers.host === own || headers.host === localhost) headers.host = `127.0.0.1:${port}`;
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
    res.on("close", () => up.destroy());
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

try {
  // The baseline: the SDK's own Streamable HTTP server.
  const direct = start(process.execPath, [SERVER, "--http", "0"], { CONFORMANCE_PORT_FILE: join(home, "direct.port") });
  const directPort = await until("the direct server", 20000,
    async () => existsSync(join(home, "direct.port")) && readFileSync(join(home, "direct.port"), "utf8").trim());
  const baseline = await suite(`http://127.0.0.1:${directPort}/mcp`, "direct");
  direct.kill();

  // Through mcpshare: a daemon, the server registered as an upstream.
  start(MCPSHARE, ["daemon"]);
  const m = await until("the daemon's manifest", 20000,
    async () => JSON.parse(readFileSync(join(home, "daemon.json"), "utf8")));
  const registered = await fetch(`http://127.0.0.1:${m.port}/api/upstreams`, {
    method: "POST", headers: { authorization: `Bearer ${m.token}`, "content-type": "application/json" },
    body: JSON.stringify({ command: process.execPath, args: [SERVER], cwd: process.cwd(), env: {} }),
  }).then((r) => r.json());
  if (!registered.id) throw new Error(`cannot register the server: ${JSON.stringify(registered)}`);
  const front = await proxy(m.port, m.token);
  const through = await suite(`http://127.0.0.1:${front.address().port}/u/${registered.id}/mcp`, "mcpshare");
  front.close();

  console.log(`conformance ${SPEC}: the SDK's server passes ${tally(baseline)}, mcpshare ${tally(through)}`);
  for (const [key, status] of baseline) {
    const got = through.get(key) ?? "MISSING";
    if (status !== "SUCCESS") {
      if (status !== "INFO") console.log(`skip   ${key}: ${status} directly`);
    } else if (got === "SUCCESS") {
      passed++;
      console.log(`ok     ${key}`);
    } else if (got === "INFO") {
      // The suite's own verdict: optional, or not applicable here (a JSON
      // answer where the SDK's server streams SSE).
      console.log(`n/a    ${key}: INFO through mcpshare`);
    } else {
      failed++;
      console.log(`FAIL   ${key}: ${got} through mcpshare`);
    }
  }
} catch (e) {
  failed++;
  console.log(`FAIL   conformance: ${e?.message ?? e}`);
} finally {
  try {
    execFileSync(MCPSHARE, ["stop"], { env, stdio: "ignore", timeout: 20000 });
  } catch {}
  for (const c of children) if (c.exitCode === null) c.kill();
  rmSync(home, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
