// make interop, real client apps: Claude Code, Gemini CLI and Codex (pinned
// in package.json), each with a HOME of its own and configured with its own
// `mcp add` command to run the same `mcpshare run --global` server-memory.
// Their server checks run at once (`claude mcp list`, `gemini mcp list`,
// Codex's app-server `mcpServerStatus/list`); all must connect, and
// `mcpshare status` must show one upstream. Prints "N passed, M failed".
// Usage: node apps.mjs MCPSHARE  (run from the scratch directory holding node_modules)
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { assert, checks, codexStatus as status, run as runIn } from "./app-cli.mjs";

const MCPSHARE = resolve(process.argv[2]);
const MEMORY = resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
// Not under /tmp: Codex puts its helper directory in front of PATH only
// outside temporary directories, and that is the case to test.
const root = mkdtempSync(resolve("apps-"));
const dir = (name) => { const d = join(root, name); mkdirSync(d, { recursive: true }); return d; };
const project = dir("project");
const shared = { MCPSHARE_HOME: join(root, "mcpshare"), HOME: dir("user"), MEMORY_FILE_PATH: join(root, "memory.jsonl") };
const t = checks("apps");
const check = t.check;

/// A login shell's environment, with this app's own HOME.
function appEnv(app) {
  return {
    PATH: process.env.PATH, USER: "interop", LOGNAME: "interop", SHELL: "/bin/sh",
    LANG: "C.UTF-8", TERM: "xterm-256color", HOME: dir(`home-${app}`),
  };
}

const run = (app, args, env) => runIn(app, args, { cwd: project, env });
const codexStatus = (env) => status({ cwd: project, env });

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
console.log(t.summary());
process.exit(t.failed ? 1 : 0);
