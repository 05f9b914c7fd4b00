// make interop: the official TypeScript SDK client against the reference
// servers, directly (the baseline), through `mcpshare run`, and through the
// hub (`mcpshare mcp` over the three servers configured by name, their
// tools and prompts named `server__name`). Everything that passes directly
// must pass through mcpshare. Prints "N passed, M failed".
// Usage: node interop.mjs MCPSHARE  (run from the scratch directory holding node_modules)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MCPSHARE = resolve(process.argv[2]);
const EVERYTHING = resolve("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const MEMORY = resolve("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
const FILESYSTEM = resolve("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
const home = mkdtempSync(join(tmpdir(), "mcpshare-interop-"));
const memoryFile = join(home, "memory.jsonl");
// Never the user's own config: the daemon reads this one.
const config = join(home, "config.json");
const env = { ...process.env, MCPSHARE_HOME: home, MCPSHARE_CONFIG: config, MEMORY_FILE_PATH: memoryFile };
writeFileSync(config, JSON.stringify({ mcpServers: {
  everything: { command: "node", args: [EVERYTHING, "stdio"] },
  memory: { command: "node", args: [MEMORY], env: { MEMORY_FILE_PATH: join(home, "hub-memory.jsonl") } },
  filesystem: { command: "node", args: [FILESYSTEM] },
} }, null, 2));
// A tool's or prompt's name as a client of `mode` sees it.
const named = (mode, server, name) => (mode.startsWith("hub") ? `${server}__${name}` : name);
const TIMEOUT = { timeout: 20000 };
let passed = 0, failed = 0;

function transport(mode, server, args) {
  if (mode.startsWith("hub")) return new StdioClientTransport({ command: MCPSHARE, args: ["mcp"], env, stderr: "ignore" });
  const command = mode === "direct" ? "node" : MCPSHARE;
  const argv = mode === "direct" ? [server, ...args] : ["run", "--", "node", server, ...args];
  return new StdioClientTransport({ command, args: argv, env, stderr: "ignore" });
}

async function connect(mode, server, args, name, roots = () => [{ uri: "file:///interop-root", name: "root" }]) {
  const client = new Client({ name, version: "1.0.0" },
    { capabilities: { sampling: {}, roots: { listChanged: true }, elicitation: {} } });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: roots() }));
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: "assistant", model: "interop-model", content: { type: "text", text: "sampled-by-interop" } }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" }));
  await client.connect(transport(mode, server, args));
  return client;
}

async function check(mode, name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok     ${mode.padEnd(8)} ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL   ${mode.padEnd(8)} ${name}: ${e?.message ?? e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

function text(result) {
  return (result.content ?? []).map((c) => c.text ?? "").join(" ");
}

function waitFor(pred, ms, what) {
  return new Promise((ok, fail) => {
    const start = Date.now();
    const tick = () => (pred() ? ok() : Date.now() - start > ms ? fail(new Error(`no ${what} within ${ms} ms`)) : setTimeout(tick, 50));
    tick();
  });
}

async function allPages(list) {
  let cursor, items = [];
  do {
    const page = await list(cursor);
    items = items.concat(page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return items;
}

async function everything(mode, label = mode) {
  const c = await connect(mode, EVERYTHING, ["stdio"], `interop-${label}`);
  const N = (name) => named(mode, "everything", name);
  const logs = [], updates = [];
  c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(n));
  c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n));
  await check(label, "initialize", async () => {
    assert(c.getServerVersion()?.name, "no serverInfo");
    assert(c.getServerCapabilities()?.tools, "no tools capability");
  });
  await check(label, "tools/list (all pages)", async () => {
    const tools = await allPages(async (cursor) => { const r = await c.listTools({ cursor }, TIMEOUT); return { items: r.tools, nextCursor: r.nextCursor }; });
    for (const t of ["echo", "get-sum", "get-roots-list", "trigger-sampling-request", "trigger-elicitation-request"]) {
      assert(tools.some((x) => x.name === N(t)), `missing tool ${t}`);
    }
  });
  await check(label, "tools/call echo", async () => {
    assert(text(await c.callTool({ name: N("echo"), arguments: { message: "hello" } }, undefined, TIMEOUT)).includes("hello"), "bad echo");
  });
  await check(label, "tools/call get-sum", async () => {
    assert(text(await c.callTool({ name: N("get-sum"), arguments: { a: 2, b: 3 } }, undefined, TIMEOUT)).includes("5"), "bad sum");
  });
  await check(label, "structuredContent passes through", async () => {
    const r = await c.callTool({ name: N("get-structured-content"), arguments: { location: "Chicago" } }, undefined, TIMEOUT);
    assert(r.structuredContent, "no structuredContent");
  });
  await check(label, "prompts/list and prompts/get", async () => {
    const prompts = await allPages(async (cursor) => { const r = await c.listPrompts({ cursor }, TIMEOUT); return { items: r.prompts, nextCursor: r.nextCursor }; });
    assert(prompts.some((p) => p.name === N("simple-prompt")), "no simple-prompt");
    const p = await c.getPrompt({ name: N("args-prompt"), arguments: { city: "Paris" } }, TIMEOUT);
    assert(JSON.stringify(p.messages).includes("Paris"), "args not applied");
  });
  await check(label, "resources/list, templates and read", async () => {
    const res = await allPages(async (cursor) => { const r = await c.listResources({ cursor }, TIMEOUT); return { items: r.resources, nextCursor: r.nextCursor }; });
    assert(res.length > 0, "no resources");
    const t = await c.listResourceTemplates({}, TIMEOUT);
    assert(t.resourceTemplates.length > 0, "no templates");
    const read = await c.readResource({ uri: res[0].uri }, TIMEOUT);
    assert(read.contents.length > 0, "empty read");
  });
  await check(label, "completion/complete", async () => {
    const r = await c.complete({ ref: { type: "ref/prompt", name: N("completable-prompt") }, argument: { name: "department", value: "E" } }, TIMEOUT);
    assert(Array.isArray(r.completion.values), "no completion values");
  });
  await check(label, "progress notifications", async () => {
    let seen = 0;
    await c.callTool({ name: N("trigger-long-running-operation"), arguments: { duration: 1, steps: 3 } }, undefined,
      { ...TIMEOUT, onprogress: () => seen++ });
    assert(seen >= 1, "no progress");
  });
  await check(label, "logging/setLevel and log messages", async () => {
    await c.setLoggingLevel("debug", TIMEOUT);
    await c.callTool({ name: N("toggle-simulated-logging"), arguments: {} }, undefined, TIMEOUT);
    await waitFor(() => logs.length > 0, 15000, "log message");
    await c.callTool({ name: N("toggle-simulated-logging"), arguments: {} }, undefined, TIMEOUT);
  });
  await check(label, "resources/subscribe and updates", async () => {
    const res = await c.listResources({}, TIMEOUT);
    await c.subscribeResource({ uri: res.resources[0].uri }, TIMEOUT);
    await c.callTool({ name: N("toggle-subscriber-updates"), arguments: {} }, undefined, TIMEOUT);
    await waitFor(() => updates.length > 0, 15000, "resources/updated");
    await c.callTool({ name: N("toggle-subscriber-updates"), arguments: {} }, undefined, TIMEOUT);
    await c.unsubscribeResource({ uri: res.resources[0].uri }, TIMEOUT);
  });
  await check(label, "sampling answered by the client", async () => {
    const r = await c.callTool({ name: N("trigger-sampling-request"), arguments: { prompt: "hi", maxTokens: 5 } }, undefined, TIMEOUT);
    assert(text(r).includes("sampled-by-interop"), `sampling result missing: ${text(r).slice(0, 200)}`);
  });
  await check(label, "elicitation answered by the client", async () => {
    const r = await c.callTool({ name: N("trigger-elicitation-request"), arguments: {} }, undefined, TIMEOUT);
    assert(!r.isError && text(r).toLowerCase().includes("decline"), `elicitation result: ${text(r).slice(0, 200)}`);
  });
  await check(label, "roots answered by the client", async () => {
    const r = await c.callTool({ name: N("get-roots-list"), arguments: {} }, undefined, TIMEOUT);
    assert(text(r).includes("interop-root"), `roots result: ${text(r).slice(0, 200)}`);
  });
  await c.close();
}

function upstreamCount(match) {
  const st = JSON.parse(execFileSync(MCPSHARE, ["status", "--json"], { env }).toString());
  return st.upstreams.filter((u) => u.command.some((a) => a.includes(match))).length;
}

async function shared() {
  const mode = "shared";
  const [a, b] = await Promise.all([
    connect("mcpshare", EVERYTHING, ["stdio"], "interop-a"),
    connect("mcpshare", EVERYTHING, ["stdio"], "interop-b"),
  ]);
  await check(mode, "two clients share one server-everything upstream", async () => {
    const [ra, rb] = await Promise.all([
      a.callTool({ name: "echo", arguments: { message: "from-a" } }, undefined, TIMEOUT),
      b.callTool({ name: "echo", arguments: { message: "from-b" } }, undefined, TIMEOUT),
    ]);
    assert(text(ra).includes("from-a") && text(rb).includes("from-b"), "answers crossed");
    assert(upstreamCount("server-everything") === 1, "not exactly one upstream");
  });
  await check(mode, "each client's sampling reaches that client", async () => {
    const r = await a.callTool({ name: "trigger-sampling-request", arguments: { prompt: "x", maxTokens: 5 } }, undefined, TIMEOUT);
    assert(text(r).includes("sampled-by-interop"), "sampling failed");
  });
  await a.close();
  await b.close();

  const [m1, m2] = await Promise.all([
    connect("mcpshare", MEMORY, [], "memory-a"),
    connect("mcpshare", MEMORY, [], "memory-b"),
  ]);
  await check(mode, "server-memory: what one client writes the other reads", async () => {
    await m1.callTool({ name: "create_entities", arguments: { entities: [{ name: "mcpshare-interop", entityType: "test", observations: ["written by client one"] }] } }, undefined, TIMEOUT);
    const r = await m2.callTool({ name: "read_graph", arguments: {} }, undefined, TIMEOUT);
    assert(JSON.stringify(r).includes("written by client one"), "client two does not see it");
    assert(upstreamCount("server-memory") === 1, "not exactly one server-memory upstream");
  });
  await m1.close();
  await m2.close();
}

// Two clients with different roots on one shared server-filesystem: each
// keeps its own directory (the daemon answers roots/list with the union).
async function filesystem() {
  const dir = (n) => {
    const d = join(home, n);
    mkdirSync(d, { recursive: true });
    return realpathSync(d);
  };
  const [dirA, dirB, dirA2] = [dir("root-a"), dir("root-b"), dir("root-a2")];
  let rootsA = [{ uri: `file://${dirA}`, name: "a" }];
  const allowed = async (c) => text(await c.callTool({ name: "list_allowed_directories", arguments: {} }, undefined, TIMEOUT));
  const until = async (what, fn) => {
    const deadline = Date.now() + 10000;
    while (!(await fn())) {
      if (Date.now() > deadline) throw new Error(what);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const direct = await connect("direct", FILESYSTEM, [], "fs-direct", () => rootsA);
  await check("direct", "server-filesystem takes the client's roots", async () => {
    await until(`allowed: ${await allowed(direct)}`, async () => (await allowed(direct)).includes(dirA));
  });
  await direct.close();
  const mode = "shared";
  const a = await connect("mcpshare", FILESYSTEM, [], "fs-a", () => rootsA);
  const b = await connect("mcpshare", FILESYSTEM, [], "fs-b", () => [{ uri: `file://${dirB}`, name: "b" }]);
  await check(mode, "server-filesystem: each client keeps its own root", async () => {
    await until(`allowed: ${await allowed(b)}`, async () => {
      const [la, lb] = [await allowed(a), await allowed(b)];
      return la.includes(dirA) && lb.includes(dirB);
    });
    for (const [c, d] of [[a, dirA], [b, dirB]]) {
      const r = await c.callTool({ name: "write_file", arguments: { path: join(d, "note.txt"), content: "mine" } }, undefined, TIMEOUT);
      assert(!r.isError, `write in ${d}: ${text(r)}`);
    }
    assert(upstreamCount("server-filesystem") === 1, "not exactly one server-filesystem upstream");
  });
  await check(mode, "server-filesystem: one client's new roots leave the other's", async () => {
    rootsA = [{ uri: `file://${dirA2}`, name: "a2" }];
    await a.sendRootsListChanged();
    await until(`allowed: ${await allowed(b)}`, async () => {
      const l = await allowed(b);
      return l.includes(dirA2) && l.includes(dirB);
    });
  });
  await a.close();
  await b.close();
}

// Through the hub: server-memory's writes seen by a second hub client, and
// server-filesystem taking the hub client's roots.
async function hub() {
  const root = join(home, "hub-root");
  mkdirSync(root, { recursive: true });
  const dir = realpathSync(root);
  const [a, b] = await Promise.all([
    connect("hub", null, [], "hub-a", () => [{ uri: `file://${dir}`, name: "hub-root" }]),
    connect("hub", null, [], "hub-b"),
  ]);
  await check("hub", "one tool list over three servers", async () => {
    const tools = (await a.listTools({}, TIMEOUT)).tools.map((t) => t.name);
    for (const t of ["everything__echo", "memory__read_graph", "filesystem__list_allowed_directories"]) {
      assert(tools.includes(t), `missing ${t} in ${tools.length} tools`);
    }
    assert(tools.every((t) => t.length <= 49), "a name over the budget");
  });
  await check("hub", "server-memory: one hub client writes, the other reads", async () => {
    await a.callTool({ name: "memory__create_entities", arguments: { entities: [{ name: "hub-interop", entityType: "test", observations: ["through the hub"] }] } }, undefined, TIMEOUT);
    const r = await b.callTool({ name: "memory__read_graph", arguments: {} }, undefined, TIMEOUT);
    assert(JSON.stringify(r).includes("through the hub"), "not seen by the other hub client");
  });
  await check("hub", "server-filesystem takes the hub client's roots", async () => {
    const deadline = Date.now() + 10000;
    for (;;) {
      const l = text(await a.callTool({ name: "filesystem__list_allowed_directories", arguments: {} }, undefined, TIMEOUT));
      if (l.includes(dir)) break;
      if (Date.now() > deadline) throw new Error(`allowed: ${l}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  await a.close();
  await b.close();
}

try {
  await everything("direct");
  await everything("mcpshare");
  // The same probe by two clients at once on one shared upstream.
  await Promise.all([everything("mcpshare", "pair-1"), everything("mcpshare", "pair-2")]);
  await shared();
  await filesystem();
  await everything("hub");
  await hub();
} finally {
  try { execFileSync(MCPSHARE, ["stop"], { env, stdio: "ignore" }); } catch {}
  rmSync(home, { recursive: true, force: true });
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
