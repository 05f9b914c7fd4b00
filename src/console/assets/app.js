// The mcpshare console: logs in with the one-time code in the URL's
// fragment, then renders what the daemon's live feed (SSE) pushes.
// Standard DOM APIs only; every value from the daemon goes in as text.
"use strict";

const LOG_LINES_KEPT = 200;
let csrf = null;
let feed = null;
const logs = new Map(); // upstream id -> <pre>

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function notice(text) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.hidden = !text;
}

function setConn(text, cls) {
  const c = document.getElementById("conn");
  c.textContent = text;
  c.className = "badge " + cls;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const mib = n / (1024 * 1024);
  return mib >= 1 ? mib.toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB";
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60, sec = s % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + (d || h || m ? m + "m " : "") + sec + "s";
}

function when(ms) {
  return new Date(ms).toLocaleTimeString();
}

function facts(pairs) {
  const dl = el("dl");
  for (const [k, v] of pairs) {
    dl.append(el("dt", null, k), el("dd", { "data-fact": k }, v === null || v === undefined || v === "" ? "–" : v));
  }
  return dl;
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf || "" },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await res.json(); } catch (_) { /* no body */ }
  if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
  return data;
}

function action(label, path, confirmText, cls) {
  const b = el("button", { type: "button", class: cls || "", "data-action": path }, label);
  b.addEventListener("click", async () => {
    if (confirmText && !window.confirm(confirmText)) return;
    b.disabled = true;
    try {
      await post("/console/api/" + path);
      notice("");
    } catch (e) {
      notice(label + " failed: " + e.message);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

function eventList(events) {
  if (!events || !events.length) return el("p", { class: "empty" }, "No report from this bridge.");
  const ul = el("ul", { class: "events" });
  for (const e of events.slice(-20)) {
    const cls = e.kind === "error" ? "error" : "";
    ul.append(el("li", { class: cls, "data-kind": e.kind }, when(e.at_ms) + " " + e.kind + (e.message ? ": " + e.message : "")));
  }
  return ul;
}

function logPane(id) {
  let pre = logs.get(id);
  if (!pre) {
    pre = el("pre", { class: "log", "data-log": id, "aria-label": "log of " + id });
    logs.set(id, pre);
  }
  return pre;
}

function renderDaemon(st) {
  const d = st.daemon || {};
  document.getElementById("daemon-facts").replaceWith(Object.assign(facts([
    ["pid", d.pid], ["version", d.version], ["uptime", duration(d.uptime_s)],
    ["memory", bytes(d.rss_bytes)], ["port", d.port], ["home", d.home],
  ]), { id: "daemon-facts" }));
}

function renderServers(st) {
  const box = document.getElementById("servers");
  const ups = st.upstreams || [];
  box.replaceChildren();
  if (!ups.length) box.append(el("p", { class: "empty" }, "No server yet."));
  for (const u of ups) {
    const card = el("article", { class: "card", "data-server": u.id },
      el("header", null,
        el("h3", null, u.id),
        el("span", { class: "badge state-" + u.state, "data-fact": "state" }, u.state)),
      facts([
        ["command", (u.command || []).join(" ")], ["cwd", u.cwd], ["pid", u.pid],
        ["sessions", u.sessions], ["restarts", u.restarts], ["memory", bytes(u.rss_bytes)],
        ["clients", (u.clients || []).join(", ")],
        ["server", u.server], ["hub tools", (u.tools || []).join(", ")],
        ["last error", u.last_error],
      ]),
      el("div", { class: "actions" },
        action("Restart", "servers/" + u.id + "/restart", "Restart " + u.id + "? Calls in flight fail."),
        action("Stop", "servers/" + u.id + "/stop", "Stop " + u.id + "? Calls in flight fail; the next request starts it again.", "danger"),
        action("Enable", "servers/" + u.id + "/enable"),
        action("Disable", "servers/" + u.id + "/disable", "Disable " + u.id + "?", "danger")),
      logPane(u.id));
    if (u.last_error) card.querySelector('[data-fact="last error"]').classList.add("error");
    box.append(card);
  }
  for (const id of [...logs.keys()]) {
    if (!ups.some((u) => u.id === id)) logs.delete(id);
  }
}

function renderSessions(st) {
  const box = document.getElementById("sessions");
  const ss = st.sessions || [];
  box.replaceChildren();
  if (!ss.length) box.append(el("p", { class: "empty" }, "No session."));
  for (const s of ss) {
    const client = (s.client_name || "?") + (s.client_version ? " " + s.client_version : "");
    box.append(el("article", { class: "card", "data-session": s.id },
      el("header", null, el("h3", null, client), el("span", { class: "badge" }, s.upstream)),
      facts([
        ["session", s.id.slice(0, 12) + "…"], ["bridge pid", s.bridge_pid], ["cwd", s.cwd],
        ["protocol", s.protocol], ["hub", s.hub],
      ]),
      el("div", { class: "actions" },
        action("End session", "sessions/" + s.id + "/end", "End this session of " + client + "? Its bridge is stopped.", "danger")),
      eventList(s.events)));
  }
  const bb = document.getElementById("bridges");
  bb.replaceChildren();
  if (!(st.bridges || []).length) bb.append(el("p", { class: "empty" }, "None."));
  for (const b of st.bridges || []) {
    bb.append(el("article", { class: "card", "data-bridge": b.pid },
      el("header", null, el("h3", null, "bridge pid " + b.pid)), eventList(b.events)));
  }
}

function renderDoctor(findings) {
  const ul = document.getElementById("doctor");
  ul.replaceChildren();
  for (const f of findings || []) {
    ul.append(el("li", { class: "level-" + f.level, "data-check": f.check },
      f.level + " " + f.check + ": " + f.message + (f.fix ? " (fix: " + f.fix + ")" : "")));
  }
}

function appendLog(id, lines) {
  const pre = logPane(id);
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  for (const l of lines) pre.append(l.text + "\n");
  while (pre.childNodes.length > LOG_LINES_KEPT) pre.removeChild(pre.firstChild);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function onMessage(ev) {
  const msg = JSON.parse(ev.data);
  if (msg.kind === "state") {
    renderDaemon(msg);
    renderServers(msg);
    renderSessions(msg);
  } else if (msg.kind === "log") {
    appendLog(msg.id, msg.lines);
  } else if (msg.kind === "doctor") {
    renderDoctor(msg.findings);
  }
}

function openFeed() {
  feed = new EventSource("/console/api/feed");
  feed.onopen = () => setConn("live", "conn-live");
  feed.onmessage = onMessage;
  feed.onerror = () => {
    setConn("disconnected", "conn-lost");
    if (feed.readyState === EventSource.CLOSED) {
      notice("The live feed ended: the daemon stopped or this login expired. Run 'mcpshare console' again.");
    }
  };
}

async function login() {
  const m = /^#code=([0-9a-f]+)$/.exec(location.hash);
  if (m) {
    // The code is spent by this exchange; it must not linger in history.
    history.replaceState(null, "", location.pathname);
    const res = await fetch("/console/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: m[1] }),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
    return data.csrf;
  }
  const res = await fetch("/console/api/whoami", { credentials: "same-origin" });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
  return data.csrf;
}

async function start() {
  try {
    csrf = await login();
  } catch (e) {
    setConn("logged out", "conn-lost");
    notice(e.message);
    return;
  }
  const stop = document.getElementById("stop-daemon");
  stop.disabled = false;
  stop.addEventListener("click", async () => {
    if (!window.confirm("Stop the mcpshare daemon? Every server and session ends.")) return;
    try {
      await post("/console/api/daemon/stop");
      notice("The daemon is stopping.");
    } catch (e) {
      notice("Stop failed: " + e.message);
    }
  });
  openFeed();
}

start();
