// A stdio MCP server with what the official conformance suite's server
// scenarios call (tools, resources, prompts, logging, completion), for
// `make interop`'s conformance run: on stdio (what mcpshare runs), or with
// `--http PORT` on the SDK's own Streamable HTTP transport with its
// resumability on (the baseline); PORT 0 picks one and writes it to
// $CONFORMANCE_PORT_FILE. Written on the SDK's low-level Server.
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import {
  CallToolRequestSchema, CompleteRequestSchema, CreateMessageResultSchema, ElicitResultSchema,
  GetPromptRequestSchema, ListPromptsRequestSchema, ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema, ListToolsRequestSchema, ReadResourceRequestSchema,
  SetLevelRequestSchema, SubscribeRequestSchema, UnsubscribeRequestSchema, McpError, ErrorCode,
} from "@modelcontextprotocol/sdk/types.js";

// A 1x1 PNG and a minimal WAV, base64.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ content: [{ type: "text", text: t }] });
const object = (properties = {}, required = []) => ({ type: "object", properties, required });

function createServer() {
const server = new Server(
  { name: "mcpshare-conformance-server", version: "1.0.0" },
  { capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true },
    prompts: { listChanged: true }, logging: {}, completions: {} } },
);

const log = (level, data) =>
  server.notification({ method: "notifications/message", params: { level, logger: "conformance", data } })
    .catch(() => {});

async function elicit(extra, message, requestedSchema) {
  try {
    const r = await extra.sendRequest(
      { method: "elicitation/create", params: { mode: "form", message, requestedSchema } }, ElicitResultSchema);
    return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  } catch (e) {
    return text(`Elicitation not supported or error: ${e.message}`);
  }
}

const enumOptions = (prefix, titles) => titles.map((title, i) => ({ const: `${prefix}${i + 1}`, title }));

const tools = {
  test_simple_text: { schema: object(), run: async () => text("This is a simple text response for testing.") },
  test_image_content: { schema: object(), run: async () => ({ content: [{ type: "image", data: PNG, mimeType: "image/png" }] }) },
  test_audio_content: { schema: object(), run: async () => ({ content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] }) },
  test_embedded_resource: { schema: object(), run: async () => ({ content: [{ type: "resource", resource: {
    uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." } }] }) },
  test_multiple_content_types: { schema: object(), run: async () => ({ content: [
    { type: "text", text: "Multiple content types test:" },
    { type: "image", data: PNG, mimeType: "image/png" },
    { type: "resource", resource: { uri: "test://mixed-content-resource", mimeType: "application/json",
      text: JSON.stringify({ test: "data", value: 123 }) } },
  ] }) },
  test_tool_with_logging: { schema: object(), run: async (_args, extra) => {
    for (const [i, data] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
      if (i > 0) await sleep(50);
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data } });
    }
    return text("Tool with logging executed successfully");
  } },
  test_tool_with_progress: { schema: object(), run: async (_args, extra) => {
    const progressToken = extra._meta?.progressToken ?? 0;
    for (const progress of [0, 50, 100]) {
      if (progress > 0) await sleep(50);
      await extra.sendNotification({ method: "notifications/progress",
        params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` } });
    }
    return text(String(progressToken));
  } },
  test_error_handling: { schema: object(), run: async () => ({ isError: true,
    content: [{ type: "text", text: "This tool intentionally returns an error for testing" }] }) },
  // Over HTTP the SDK closes the call's SSE stream mid-call; a stdio
  // server cannot, and only takes a while.
  test_reconnection: { schema: object(), run: async (_args, extra) => {
    extra.closeSSEStream?.();
    await sleep(100);
    return text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.");
  } },
  test_sampling: { schema: object({ prompt: { type: "string" } }, ["prompt"]), run: async (args, extra) => {
    try {
      const r = await extra.sendRequest({ method: "sampling/createMessage", params: {
        messages: [{ role: "user", content: { type: "text", text: args.prompt } }], maxTokens: 100 } },
        CreateMessageResultSchema);
      return text(`LLM response: ${r.content?.text ?? "No response"}`);
    } catch (e) {
      return text(`Sampling not supported or error: ${e.message}`);
    }
  } },
  test_elicitation: { schema: object({ message: { type: "string" } }, ["message"]), run: (args, extra) =>
    elicit(extra, args.message, object({ response: { type: "string", description: "User's response" } }, ["response"])) },
  test_elicitation_sep1034_defaults: { schema: object(), run: (_args, extra) =>
    elicit(extra, "Please review and update the form fields with defaults", object({
      name: { type: "string", description: "User name", default: "John Doe" },
      age: { type: "integer", description: "User age", default: 30 },
      score: { type: "number", description: "User score", default: 95.5 },
      status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
      verified: { type: "boolean", description: "Verification status", default: true },
    })) },
  test_elicitation_sep1330_enums: { schema: object(), run: (_args, extra) =>
    elicit(extra, "Please select options from the enum fields", object({
      untitledSingle: { type: "string", description: "Select one option", enum: ["option1", "option2", "option3"] },
      titledSingle: { type: "string", description: "Select one option with titles",
        oneOf: enumOptions("value", ["First Option", "Second Option", "Third Option"]) },
      legacyEnum: { type: "string", description: "Select one option (legacy)", enum: ["opt1", "opt2", "opt3"],
        enumNames: ["Option One", "Option Two", "Option Three"] },
      untitledMulti: { type: "array", description: "Select multiple options", minItems: 1, maxItems: 3,
        items: { type: "string", enum: ["option1", "option2", "option3"] } },
      titledMulti: { type: "array", description: "Select multiple options with titles", minItems: 1, maxItems: 3,
        items: { anyOf: enumOptions("value", ["First Choice", "Second Choice", "Third Choice"]) } },
    })) },
  json_schema_2020_12_tool: {
    schema: { $schema: "https://json-schema.org/draft/2020-12/schema", type: "object",
      $defs: { address: { type: "object", properties: { street: { type: "string" }, city: { type: "string" } } } },
      properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } }, additionalProperties: false },
    run: async (args) => text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`),
  },
};

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: Object.entries(tools).map(([name, t]) => ({ name, description: `conformance: ${name}`, inputSchema: t.schema })),
}));
server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
  const tool = tools[req.params.name];
  if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${req.params.name}`);
  return tool.run(req.params.arguments ?? {}, { ...extra, _meta: req.params._meta });
});

const resources = {
  "test://static-text": { name: "static-text", mimeType: "text/plain", text: "This is the content of the static text resource." },
  "test://static-binary": { name: "static-binary", mimeType: "image/png", blob: PNG },
  "test://watched-resource": { name: "watched-resource", mimeType: "text/plain", text: "Watched resource content" },
};
server.setRequestHandler(ListResourcesRequestSchema, async () => ({
  resources: Object.entries(resources).map(([uri, r]) => ({ uri, name: r.name, mimeType: r.mimeType })),
}));
server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
  resourceTemplates: [{ uriTemplate: "test://template/{id}/data", name: "template", mimeType: "application/json" }],
}));
server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
  const uri = req.params.uri;
  const r = resources[uri];
  if (r) {
    const { name: _name, ...content } = r;
    return { contents: [{ uri, ...content }] };
  }
  const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
  if (m) {
    return { contents: [{ uri, mimeType: "application/json",
      text: JSON.stringify({ id: m[1], templateTest: true, data: `Data for ID: ${m[1]}` }) }] };
  }
  throw new McpError(-32002, `Resource not found: ${uri}`);
});
server.setRequestHandler(SubscribeRequestSchema, async () => ({}));
server.setRequestHandler(UnsubscribeRequestSchema, async () => ({}));

const prompts = {
  test_simple_prompt: { arguments: [], messages: () => [
    { role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }] },
  test_prompt_with_arguments: {
    arguments: [{ name: "arg1", description: "First test argument", required: true },
      { name: "arg2", description: "Second test argument", required: true }],
    messages: (a) => [{ role: "user", content: { type: "text", text: `Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'` } }],
  },
  test_prompt_with_embedded_resource: {
    arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
    messages: (a) => [
      { role: "user", content: { type: "resource", resource: { uri: a.resourceUri, mimeType: "text/plain",
        text: "Embedded resource content for testing." } } },
      { role: "user", content: { type: "text", text: "Please process the embedded resource above." } }],
  },
  test_prompt_with_image: { arguments: [], messages: () => [
    { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
    { role: "user", content: { type: "text", text: "Please analyze the image above." } }] },
};
server.setRequestHandler(ListPromptsRequestSchema, async () => ({
  prompts: Object.entries(prompts).map(([name, p]) => ({ name, description: `conformance: ${name}`, arguments: p.arguments })),
}));
server.setRequestHandler(GetPromptRequestSchema, async (req) => {
  const p = prompts[req.params.name];
  if (!p) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${req.params.name}`);
  return { messages: p.messages(req.params.arguments ?? {}) };
});

server.setRequestHandler(SetLevelRequestSchema, async (req) => {
  log("info", `Log level set to: ${req.params.level}`);
  return {};
});
server.setRequestHandler(CompleteRequestSchema, async () => ({ completion: { values: [], total: 0, hasMore: false } }));

return server;
}

const httpAt = process.argv.indexOf("--http");
if (httpAt < 0) {
  await createServer().connect(new StdioServerTransport());
} else {
  const sessions = new Map();
  const listener = http.createServer(async (req, res) => {
    const sid = req.headers["mcp-session-id"];
    let transport = sid && sessions.get(sid);
    if (!transport && sid) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
      return;
    }
    if (!transport) {
      const port = listener.address().port;
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: new InMemoryEventStore(),
        retryInterval: 1000,
        enableDnsRebindingProtection: true,
        allowedHosts: [`127.0.0.1:${port}`, `localhost:${port}`],
        onsessioninitialized: (id) => sessions.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && sessions.delete(transport.sessionId);
      await createServer().connect(transport);
    }
    await transport.handleRequest(req, res);
  });
  listener.listen(Number(process.argv[httpAt + 1] ?? 0), "127.0.0.1", () => {
    if (process.env.CONFORMANCE_PORT_FILE) writeFileSync(process.env.CONFORMANCE_PORT_FILE, String(listener.address().port));
  });
}
