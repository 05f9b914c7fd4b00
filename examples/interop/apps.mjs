// make interop, real client apps: Claude Code, Gemini CLI and Codex (pinned
// in package.json), each with a HOME of its own and configured with its own
// `mcp add` command to run the same `mcpshare run --global` server-memory.
// Their server checks run at once (`claude mcp list`, `gemini mcp list`,
// Codex's app-server `mcpServerStatus/list`); all must connect, and
// `mcpshare status` must show one upstream. Prints "N passed, M failed".
// Usage: node apps.mjs MCPSHARE  (run from the scratch directory holding node_modules)
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join, resolve } from "node:path";

const MCPSHARE = resolve(process.argv[2]);
const MEMORY = resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
const BIN = resolve("node_modules/.bin");
const TIMEOUT_MS = 60000;
// Not under /tmp: Codex puts its helper directory in front of PATH only
// outside temporary directories, and that is the case to test.
const root = mkdtempSync(resolve("apps-"));
const dir = (name) => { const d = join(root, name); mkdirSync(d, { recursive: true }); return d; };
const project = dir("project");
const shared = { MCPSHARE_HOME: join(root, "mcpshare"), HOME: dir("user"), MEMORY_FILE_PATH: join(root, "memory.jsonl") };
let passed = 0, failed = 0;

/// A login shell's environment, with this app's own HOME.
function appEnv(app) {
  return {
    PATH: process.env.PATH, USER: "interop", LOGNAME: "interop", SHELL: "/bin/sh",
    LANG: "C.UTF-8", TERM: "xterm-256color", HOME: dir(`home-${app}`),
  };
}

function run(app, args, env) {
  return new Promise((ok, fail) => {
    const child = spawn(join(BIN, app), args, { cwd: project, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      code === 0 ? ok(out) : fail(new Error(`${app} ${args.join(" ")} exited ${code}:\n${out}`));
    });
  });
}

/// Codex's app-server: initialize, then mcpServerStatus/list.
function codexStatus(env) {
  return new Promise((ok, fail) => {
    const child = spawn(join(BIN, "codex"), ["app-server"], { cwd: project, env, stdio: ["pipe", "pipe", "ignore"] });
    const send = (m) => child.stdin.write(JSON.stringify(m) + "\n");
    const timer = setTimeout(() => { child.kill("SIGKILL"); fail(new Error("no mcpServerStatus/list answer")); }, TIMEOUT_MS);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = JSON.parse(line);
      if (m.id === 1) {
        send({ method: "initialized" });
        send({ id: 2, method: "mcpServerStatus/list", params: {} });
      } else if (m.id === 2) {
        clearTimeout(timer);
        child.stdin.end();
        m.error ? fail(new Error(JSON.stringify(m.error))) : ok(m.result);
      }
    });
    send({ id: 1, method: "initialize", params: { clientInfo: { name: "mcpshare-interop", version: "1.0.0" } } });
  });
}

async function check(name, fn) {
  try {
    const shown = await fn();
    passed++;
    console.log(`ok     apps     ${name}${shown ? `\n${shown.trimEnd().replace(/^/gm, "         ")}` : ""}`);
  } catch (e) {
    failed++;
    console.log(`FAIL   apps     ${name}: ${e?.message ?? e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

const server = [MCPSHARE, "run", "--global", "--", "node", MEMORY];
const envFlags = (flag) => Object.entries(shared).flatMap(([k, v]) => [flag, `${k}=${v}`]);
const env = { claude: appEnv("claude"), gemini: appEnv("gemini"), codex: appEnv("codex") };
try {
  mkdirSync(join(env.gemini.HOME, ".gemini"), { recursive: true });
  writeFileSync(join(env.gemini.HOME, ".gemini", "trustedFolders.json"), JSON.stringify({ [project]: "TRUST_FOLDER" }));
  await check("each app adds the server with its own command", async () => {
    await run("claude", ["mcp", "add", "memory", "-s", "user", ...envFlags("-e"), "--", ...server], env.claude);
    await run("gemini", ["mcp", "add", "-s", "user", ...envFlags("-e"), "memory", ...server], env.gemini);
    await run("codex", ["mcp", "add", "memory", ...envFlags("--env"), "--", ...server], env.codex);
  });
  const [claude, gemini, codex] = await Promise.allSettled([
    run("claude", ["mcp", "list"], env.claude),
    run("gemini", ["mcp", "list"], env.gemini),
    codexStatus(env.codex),
  ]);
  const settled = (r) => { if (r.status === "rejected") throw r.reason; return r.value; };
  await check("claude mcp list: connected", async () => {
    const out = settled(claude);
    assert(/memory:.*Connected/.test(out), `not connected:\n${out}`);
    return out.split("\n").filter((l) => l.startsWith("memory")).join("\n");
  });
  await check("gemini mcp list: connected", async () => {
    const out = settled(gemini);
    assert(/memory:.*Connected/.test(out), `not connected:\n${out}`);
    return out.split("\n").filter((l) => l.includes("memory:")).join("\n");
  });
  await check("codex app-server mcpServerStatus/list: connected", async () => {
    const memory = settled(codex).data.find((s) => s.name === "memory");
    assert(memory?.serverInfo?.name === "memory-server", `no server info: ${JSON.stringify(memory)?.slice(0, 500)}`);
    assert(memory.tools?.search_nodes, "no search_nodes tool");
    return `memory: ${memory.serverInfo.name} ${memory.serverInfo.version}, ${Object.keys(memory.tools).length} tools`;
  });
  await check("one upstream in mcpshare status", async () => {
    const mcpshare = (args) => execFileSync(MCPSHARE, args, { env: { ...process.env, MCPSHARE_HOME: shared.MCPSHARE_HOME }, timeout: 20000 }).toString();
    const st = JSON.parse(mcpshare(["status", "--json"]));
    assert(st.upstreams.length === 1, `${st.upstreams.length} upstreams:\n${mcpshare(["status"])}`);
    assert(st.upstreams[0].id.startsWith("server-memory-"), `id ${st.upstreams[0].id}`);
    return mcpshare(["status"]);
  });
} finally {
  try {
    execFileSync(MCPSHARE, ["stop"], { env: { ...process.env, MCPSHARE_HOME: shared.MCPSHARE_HOME }, timeout: 20000 });
  } catch {}
  rmSync(root, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
