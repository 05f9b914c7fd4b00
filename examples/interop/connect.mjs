// make interop, `mcpshare import`, `connect` and `disconnect` with the real
// client apps on one machine: Claude Code, Gemini CLI and Codex (pinned in
// package.json) share one temp HOME, as they would on a user's machine.
// Each app adds server-memory with its own `mcp add` command (the same
// command and env in all three), Gemini CLI also server-everything. Then
// `mcpshare import` (memory once, the other two the same server),
// `mcpshare connect --all` with the apps on PATH (Claude Code's entries go
// through `claude mcp add-json` and `claude mcp remove`, as they come back
// at disconnect), and each app's
// own check (`claude mcp list`, `gemini mcp list`, Codex's app-server
// `mcpServerStatus/list`) must show the mcpshare entry connected, with one
// upstream per server in `mcpshare status`. `mcpshare disconnect --all`
// must give each app its own servers back, connected: Gemini's and Codex's
// files byte for byte, ~/.claude.json (which claude rewrites) in its
// mcpServers. Prints "N passed, M failed".
// Usage: node connect.mjs MCPSHARE  (run from the scratch directory holding node_modules)
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { BIN, assert, checks, codexStatus, run } from "./app-cli.mjs";

const MCPSHARE = resolve(process.argv[2]);
const MEMORY = resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
const EVERYTHING = resolve("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
// Not under /tmp: Codex puts its helper directory in front of PATH only
// outside temporary directories, and that is the case to test.
const root = mkdtempSync(resolve("connect-"));
const dir = (name) => { const d = join(root, name); mkdirSync(d, { recursive: true }); return d; };
const HOME = dir("home");
const project = dir("project");
const mcpshareEnv = { MCPSHARE_HOME: join(root, "mcpshare"), MCPSHARE_CONFIG: join(root, "mcpshare-config.json") };
/// A login shell's environment: the apps on PATH, and mcpshare's own
/// home and config exported, as a user who set them would have them.
const env = {
  PATH: `${BIN}:${process.env.PATH}`, USER: "interop", LOGNAME: "interop", SHELL: "/bin/sh",
  LANG: "C.UTF-8", TERM: "xterm-256color", HOME, ...mcpshareEnv,
};
const opts = { cwd: project, env };
// Where a hub started without MCPSHARE_HOME would put its daemon.
const defaultHome = join(HOME, ".local", "state", "mcpshare");
const t = checks("connect");
const files = {
  claude: join(HOME, ".claude.json"),
  gemini: join(HOME, ".gemini", "settings.json"),
  codex: join(HOME, ".codex", "config.toml"),
};
const read = (p) => (existsSync(p) ? readFileSync(p) : null);
const mcpshare = (...args) => run(MCPSHARE, args, { ...opts, timeoutMs: 120000 });

/// The three apps' own checks, at once.
async function lists() {
  const [claude, gemini, codex] = await Promise.allSettled([
    run("claude", ["mcp", "list"], opts),
    run("gemini", ["mcp", "list"], opts),
    codexStatus(opts),
  ]);
  const settled = (r) => { if (r.status === "rejected") throw r.reason; return r.value; };
  return { claude: () => settled(claude), gemini: () => settled(gemini), codex: () => settled(codex) };
}

/// `name: ... ✓ Connected` lines of claude's or gemini's list, for each name.
function connectedIn(out, names, app) {
  const lines = out.split("\n");
  const shown = [];
  for (const n of names) {
    const line = lines.find((l) => l.includes(`${n}:`));
    assert(line && /Connected/.test(line) && !/Disconnected/.test(line), `${app}: '${n}' not connected:\n${out}`);
    shown.push(line.trim());
  }
  return shown;
}

/// Every server of Codex's status: named and answering with tools.
function codexConnected(status, names) {
  const all = status.data.map((s) => s.name).sort();
  assert(isDeepStrictEqual(all, [...names].sort()), `codex servers ${JSON.stringify(all)}, want ${JSON.stringify(names)}`);
  return names.map((n) => {
    const s = status.data.find((x) => x.name === n);
    assert(s.serverInfo && Object.keys(s.tools ?? {}).length > 0, `codex: '${n}' not connected: ${JSON.stringify(s).slice(0, 500)}`);
    return `${n}: ${s.serverInfo.name} ${s.serverInfo.version}, ${Object.keys(s.tools).length} tools`;
  });
}

try {
  mkdirSync(join(HOME, ".gemini"), { recursive: true });
  writeFileSync(join(HOME, ".gemini", "trustedFolders.json"), JSON.stringify({ [project]: "TRUST_FOLDER" }));
  const memoryEnv = `MEMORY_FILE_PATH=${join(root, "memory.jsonl")}`;
  const memory = [process.execPath, MEMORY];
  await t.check("each app adds its servers with its own command (one HOME)", async () => {
    await run("claude", ["mcp", "add", "--scope", "user", "memory", "-e", memoryEnv, "--", ...memory], opts);
    await run("gemini", ["mcp", "add", "-s", "user", "-e", memoryEnv, "memory", ...memory], opts);
    await run("gemini", ["mcp", "add", "-s", "user", "everything", process.execPath, EVERYTHING, "stdio"], opts);
    await run("codex", ["mcp", "add", "memory", "--env", memoryEnv, "--", ...memory], opts);
  });
  const before = Object.fromEntries(Object.entries(files).map(([k, p]) => [k, read(p)]));
  const original = { claude: ["memory"], gemini: ["memory", "everything"], codex: ["memory"] };
  await t.check("the apps' files are there", async () => {
    for (const [k, b] of Object.entries(before)) assert(b, `no ${files[k]}`);
  });

  let l = await lists();
  const shownBefore = {};
  await t.check("before: claude mcp list: memory connected", async () => (shownBefore.claude = connectedIn(l.claude(), original.claude, "claude")).join("\n"));
  await t.check("before: gemini mcp list: memory, everything connected", async () => (shownBefore.gemini = connectedIn(l.gemini(), original.gemini, "gemini")).join("\n"));
  await t.check("before: codex mcpServerStatus/list: memory connected", async () => (shownBefore.codex = codexConnected(l.codex(), original.codex)).join("\n"));

  await t.check("mcpshare import: memory once, the same server in the other apps", async () => {
    const out = await mcpshare("import");
    const added = out.split("\n").filter((x) => x.startsWith("+ "));
    const same = out.split("\n").filter((x) => x.startsWith("= memory"));
    assert(added.length === 2 && added.some((x) => x.startsWith("+ memory ")) && added.some((x) => x.startsWith("+ everything ")), `added:\n${out}`);
    assert(same.length === 2, `memory not deduplicated:\n${out}`);
    const cfg = JSON.parse(readFileSync(mcpshareEnv.MCPSHARE_CONFIG, "utf8"));
    assert(isDeepStrictEqual(Object.keys(cfg.mcpServers).sort(), ["everything", "memory"]), `config: ${JSON.stringify(cfg)}`);
    return out;
  });

  await t.check("mcpshare connect --all: claude-code (through claude mcp add-json), gemini, codex", async () => {
    const out = await mcpshare("connect", "--all");
    for (const c of ["claude-code", "gemini", "codex"]) {
      assert(new RegExp(`^${c}: connected `, "m").test(out), `${c} not connected:\n${out}`);
    }
    // claude's own words: the entry went through `claude mcp add-json`.
    assert(/Added stdio MCP server mcpshare to user config/.test(out), `not through claude mcp add-json:\n${out}`);
    assert(/Removed MCP server memory from user config/.test(out), `not through claude mcp remove:\n${out}`);
    return out.split("\n").filter((x) => /: connected |MCP server/.test(x)).join("\n");
  });
  await t.check("mcpshare clients: the three connected", async () => {
    const rows = JSON.parse(await mcpshare("clients", "--json"));
    const connected = rows.filter((r) => r.connected).map((r) => r.client).sort();
    assert(isDeepStrictEqual(connected, ["claude-code", "codex", "gemini"]), `connected: ${connected}`);
  });
  await t.check("each app's file has the mcpshare entry only", async () => {
    const claude = JSON.parse(readFileSync(files.claude, "utf8")).mcpServers;
    assert(isDeepStrictEqual(Object.keys(claude), ["mcpshare"]), `claude: ${JSON.stringify(claude)}`);
    assert(claude.mcpshare.args?.[0] === "mcp", `claude: ${JSON.stringify(claude)}`);
    const gemini = JSON.parse(readFileSync(files.gemini, "utf8")).mcpServers;
    assert(isDeepStrictEqual(Object.keys(gemini), ["mcpshare"]), `gemini: ${JSON.stringify(gemini)}`);
    const codex = readFileSync(files.codex, "utf8");
    assert(/\[mcp_servers\.mcpshare\]/.test(codex) && !/\[mcp_servers\.memory\]/.test(codex), `codex:\n${codex}`);
  });

  l = await lists();
  await t.check("connected: claude mcp list: mcpshare connected", async () => connectedIn(l.claude(), ["mcpshare"], "claude").join("\n"));
  await t.check("connected: gemini mcp list: mcpshare connected", async () => connectedIn(l.gemini(), ["mcpshare"], "gemini").join("\n"));
  await t.check("connected: codex mcpServerStatus/list: mcpshare with both servers' tools", async () => {
    const status = l.codex();
    const shown = codexConnected(status, ["mcpshare"]);
    const tools = Object.keys(status.data[0].tools);
    assert(tools.some((x) => x.startsWith("memory__")) && tools.some((x) => x.startsWith("everything__")), `tools: ${tools.join(", ")}`);
    return shown.join("\n");
  });
  await t.check("mcpshare status: one upstream per server, shared by the apps", async () => {
    const st = JSON.parse(await mcpshare("status", "--json"));
    const servers = st.config?.servers ?? [];
    for (const name of ["memory", "everything"]) {
      const s = servers.find((x) => x.name === name);
      assert(s, `no ${name} in status: ${JSON.stringify(st).slice(0, 1000)}`);
      assert((s.pids ?? []).length <= 1, `${name}: pids ${JSON.stringify(s.pids)}`);
    }
    const memory = st.upstreams.filter((u) => JSON.stringify(u).includes(MEMORY));
    assert(memory.length === 1, `${memory.length} memory upstreams:\n${await mcpshare("status")}`);
    return mcpshare("status");
  });
  await t.check("no app's hub used another mcpshare home (the default under HOME)", async () => {
    assert(!existsSync(defaultHome), `${defaultHome} exists: a hub ran without MCPSHARE_HOME`);
  });

  await t.check("mcpshare disconnect --all: claude-code through claude mcp add-json and remove", async () => {
    const out = await mcpshare("disconnect", "--all");
    for (const c of ["claude-code", "gemini", "codex"]) {
      assert(new RegExp(`^${c}: disconnected `, "m").test(out), `${c} not disconnected:\n${out}`);
    }
    assert(!/kept|did not put back/.test(out), `left something:\n${out}`);
    // claude's own words: its entries went back through its commands.
    assert(/Added stdio MCP server memory to user config/.test(out), `not through claude mcp add-json:\n${out}`);
    assert(/Removed MCP server mcpshare from user config/.test(out), `not through claude mcp remove:\n${out}`);
    return out.split("\n").filter((x) => /disconnected|restored|MCP server/.test(x)).join("\n");
  });
  await t.check("gemini's and codex's files are byte for byte as before", async () => {
    for (const k of ["gemini", "codex"]) {
      const now = read(files[k]);
      assert(now && now.equals(before[k]), `${files[k]} differs:\n${now}\n--- was:\n${before[k]}`);
    }
  });
  await t.check("~/.claude.json: mcpServers as before", async () => {
    const was = JSON.parse(before.claude).mcpServers;
    const now = JSON.parse(readFileSync(files.claude, "utf8")).mcpServers;
    assert(isDeepStrictEqual(now, was), `now ${JSON.stringify(now)}\nwas ${JSON.stringify(was)}`);
  });
  l = await lists();
  const unchanged = (app, shown) => {
    assert(isDeepStrictEqual(shown, shownBefore[app]), `${app} shows\n${shown.join("\n")}\nbut showed before connect\n${shownBefore[app]?.join("\n")}`);
    return shown.join("\n");
  };
  await t.check("after: claude mcp list: memory connected, as before", async () => unchanged("claude", connectedIn(l.claude(), original.claude, "claude")));
  await t.check("after: gemini mcp list: memory, everything connected, as before", async () => unchanged("gemini", connectedIn(l.gemini(), original.gemini, "gemini")));
  await t.check("after: codex mcpServerStatus/list: memory connected, as before", async () => unchanged("codex", codexConnected(l.codex(), original.codex)));
} finally {
  for (const home of [mcpshareEnv.MCPSHARE_HOME, defaultHome]) {
    if (!existsSync(home)) continue;
    try {
      await run(MCPSHARE, ["stop"], { ...opts, env: { ...env, MCPSHARE_HOME: home }, timeoutMs: 30000 });
    } catch (e) {
      console.log(`mcpshare stop (${home}): ${e.message}`);
    }
  }
  rmSync(root, { recursive: true, force: true });
}
console.log(t.summary());
process.exit(t.failed ? 1 : 0);
