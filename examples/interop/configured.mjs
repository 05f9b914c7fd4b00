// make interop: servers configured by name. A temp config names
// server-everything ("everything") and server-memory ("memory"), run with
// node from this scratch directory's node_modules; two official TypeScript
// SDK clients use each at once through `mcpshare run NAME`, and one process
// per server must serve them. Prints "N passed, M failed".
// Usage: node configured.mjs MCPSHARE  (run from the scratch directory holding node_modules)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MCPSHARE = resolve(process.argv[2]);
const EVERYTHING = resolve("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const MEMORY = resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
const home = mkdtempSync(join(tmpdir(), "mcpshare-configured-"));
const config = join(home, "config.json");
const memoryFile = join(home, "memory.jsonl");
const env = { ...process.env, MCPSHARE_HOME: home, MCPSHARE_CONFIG: config };
const TIMEOUT = { timeout: 20000 };
let passed = 0, failed = 0;

writeFileSync(config, JSON.stringify({
  mcpServers: {
    everything: { command: process.execPath, args: [EVERYTHING, "stdio"] },
    memory: { command: process.execPath, args: [MEMORY], env: { MEMORY_FILE_PATH: memoryFile } },
  },
}, null, 2));

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok     configured ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL   configured ${name}: ${e?.message ?? e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function text(result) {
  return (result.content ?? []).map((c) => c.text ?? "").join(" ");
}

async function connect(name, label) {
  const client = new Client({ name: label, version: "1.0.0" }, { capabilities: {} });
  await client.connect(new StdioClientTransport({ command: MCPSHARE, args: ["run", name], env, stderr: "ignore" }));
  return client;
}

// mcpshare's own view: `status --json`'s entry of configured server `name`.
function server(name) {
  const st = JSON.parse(execFileSync(MCPSHARE, ["status", "--json"], { env }).toString());
  return (st.config?.servers ?? []).find((s) => s.name === name);
}

// A CLI command's exit status and output.
function cli(...args) {
  const r = spawnSync(MCPSHARE, args, { env, timeout: 30000 });
  return { code: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function pair(name, body) {
  const [a, b] = await Promise.all([connect(name, `${name}-a`), connect(name, `${name}-b`)]);
  try {
    await check(`${name}: both clients list its tools`, async () => {
      const [ta, tb] = await Promise.all([a.listTools({}, TIMEOUT), b.listTools({}, TIMEOUT)]);
      assert(ta.tools.length > 0 && ta.tools.length === tb.tools.length, `tools: ${ta.tools.length} and ${tb.tools.length}`);
    });
    await body(a, b);
    await check(`${name}: status --json shows one pid and both sessions`, async () => {
      const s = server(name);
      assert(s, `no configured server ${name} in status`);
      assert(s.state === "running", `state ${s.state}`);
      assert(s.pids.length === 1, `pids ${JSON.stringify(s.pids)}`);
      assert(s.sessions === 2, `sessions ${s.sessions}`);
    });
    await check(`${name}: list shows it running; logs NAME reads its upstream`, async () => {
      const l = cli("list", "--json");
      assert(l.code === 0, `list: ${l.err}`);
      const entry = JSON.parse(l.out).servers.find((s) => s.name === name);
      assert(entry?.state === "running", `list state ${entry?.state}`);
      const g = cli("logs", name);
      assert(g.code === 0 && g.out.includes(`started pid ${server(name).pids[0]}`), `logs: ${g.code} ${g.err}${g.out.slice(0, 200)}`);
    });
  } finally {
    await a.close();
    await b.close();
  }
}

try {
  await pair("everything", async (a, b) => {
    await check("everything: each client's echo comes back to it", async () => {
      const [ra, rb] = await Promise.all([
        a.callTool({ name: "echo", arguments: { message: "from-a" } }, undefined, TIMEOUT),
        b.callTool({ name: "echo", arguments: { message: "from-b" } }, undefined, TIMEOUT),
      ]);
      assert(text(ra).includes("from-a") && text(rb).includes("from-b"), `answers: ${text(ra)} / ${text(rb)}`);
    });
  });
  await pair("memory", async (a, b) => {
    await check("memory: what one client creates the other reads", async () => {
      await a.callTool({ name: "create_entities", arguments: { entities: [{ name: "mcpshare-configured", entityType: "test", observations: ["written by client a"] }] } }, undefined, TIMEOUT);
      const r = await b.callTool({ name: "read_graph", arguments: {} }, undefined, TIMEOUT);
      assert(JSON.stringify(r).includes("written by client a"), "client b does not see it");
    });
  });
  await check("tools NAME lists a configured server's tools", async () => {
    const t = cli("tools", "memory");
    assert(t.code === 0 && t.out.includes("create_entities"), `tools: ${t.code} ${t.err}`);
  });
} finally {
  const stop = cli("stop");
  if (stop.code !== 0) console.log(`mcpshare stop: ${stop.err}`);
  rmSync(home, { recursive: true, force: true });
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
