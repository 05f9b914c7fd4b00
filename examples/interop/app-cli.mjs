// make interop: what apps.mjs and connect.mjs share to drive the real
// client apps (node_modules/.bin of the scratch directory): a command run
// with a deadline, Codex's app-server asked for its servers' status, and
// the "ok / FAIL / skip" lines with their count.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join, resolve } from "node:path";

export const BIN = resolve("node_modules/.bin");
export const TIMEOUT_MS = 60000;

/// Run app (a name in BIN, or an absolute path) with args; resolves with
/// its stdout and stderr together, rejects on a non-zero exit or when it
/// is still running after timeoutMs (then killed, by its pid).
export function run(app, args, { cwd, env, timeoutMs = TIMEOUT_MS }) {
  return new Promise((ok, fail) => {
    const file = app.startsWith("/") ? app : join(BIN, app);
    const child = spawn(file, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let timedOut = false;
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => { timedOut = true; child.kill("SIGKILL"); }, timeoutMs);
    child.on("error", (e) => { clearTimeout(timer); fail(e); });
    child.on("close", (code) => {
      clearTimeout(timer);
      const name = app.split("/").pop();
      if (timedOut) fail(new Error(`${name} ${args.join(" ")} did not finish in ${timeoutMs / 1000}s:\n${out}`));
      else if (code === 0) ok(out);
      else fail(new Error(`${name} ${args.join(" ")} exited ${code}:\n${out}`));
    });
  });
}

/// Codex's app-server: initialize, then mcpServerStatus/list; resolves
/// with its result. The app-server is ended (stdin closed, then killed by
/// its pid if it lingers) before this resolves.
export function codexStatus({ cwd, env, timeoutMs = TIMEOUT_MS }) {
  return new Promise((ok, fail) => {
    const child = spawn(join(BIN, "codex"), ["app-server"], { cwd, env, stdio: ["pipe", "pipe", "ignore"] });
    const send = (m) => child.stdin.write(JSON.stringify(m) + "\n");
    let answer = null;
    const finish = () => {
      clearTimeout(timer);
      child.stdin.end();
      // It exits when its stdin ends; bounded all the same.
      const reaper = setTimeout(() => child.kill("SIGKILL"), 10000);
      child.on("close", () => clearTimeout(reaper));
    };
    const timer = setTimeout(() => { child.kill("SIGKILL"); fail(new Error("no mcpServerStatus/list answer")); }, timeoutMs);
    child.on("error", (e) => { clearTimeout(timer); fail(e); });
    child.stdin.on("error", () => {});
    createInterface({ input: child.stdout }).on("line", (line) => {
      let m;
      try { m = JSON.parse(line); } catch { return; }
      if (m.id === 1) {
        send({ method: "initialized" });
        send({ id: 2, method: "mcpServerStatus/list", params: {} });
      } else if (m.id === 2 && !answer) {
        answer = m;
        finish();
        m.error ? fail(new Error(JSON.stringify(m.error))) : ok(m.result);
      }
    });
    send({ id: 1, method: "initialize", params: { clientInfo: { name: "mcpshare-interop", version: "1.0.0" } } });
  });
}

/// Checks printed as "ok", "FAIL" or "skip" lines under a label.
export function checks(label) {
  const t = { passed: 0, failed: 0, skipped: 0 };
  const pad = label.padEnd(8);
  t.check = async (name, fn) => {
    try {
      const shown = await fn();
      t.passed++;
      console.log(`ok     ${pad} ${name}${shown ? `\n${shown.trimEnd().replace(/^/gm, "         ")}` : ""}`);
    } catch (e) {
      if (e instanceof Skip) {
        t.skipped++;
        console.log(`skip   ${pad} ${name}: ${e.message}`);
        return;
      }
      t.failed++;
      console.log(`FAIL   ${pad} ${name}: ${e?.message ?? e}`);
    }
  };
  t.summary = () => `${t.passed} passed, ${t.failed} failed${t.skipped ? `, ${t.skipped} skipped` : ""}`;
  return t;
}

/// Thrown by a check that cannot run here, with the reason.
export class Skip extends Error {}

export function assert(cond, what) {
  if (!cond) throw new Error(what);
}
