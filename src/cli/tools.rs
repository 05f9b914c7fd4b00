//! `mcpshare tools NAME` and `mcpshare call NAME TOOL [ARGS]`: one short
//! MCP session with a configured server through the daemon (started if
//! needed), the same shared upstream its clients use. Scripts and quick
//! checks need no MCP client. A request the server sends back (sampling,
//! elicitation) is refused: nobody here can answer it.

use crate::election;
use crate::error::{Error, Result};
use crate::mcp::jsonrpc;
use crate::net::client::{Client, McpHeaders};
use crate::state::home::Home;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// How long registering the server at the daemon may take.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most pages of `tools/list` read.
const MAX_PAGES: usize = 100;

/// One MCP session with a configured server, ended on drop.
struct Session {
    client: Client,
    path: String,
    id: String,
    version: String,
    next: u64,
}

impl Session {
    fn open(name: &str) -> Result<Session> {
        let home = Home::open()?;
        let m = election::ensure_daemon(&home, Instant::now() + election::STARTUP_TIMEOUT)?;
        let client = Client::new(&m);
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot read the working directory", e))?;
        let env: Map<String, Value> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, json!(v.into_string().ok()?))))
            .collect();
        let ask = json!({
            "server": name,
            "cwd": cwd.display().to_string(),
            "env": env,
            "config": crate::config::path()?,
        });
        let (status, body) = client
            .call("POST", "/api/upstreams", Some(&ask), REGISTER_TIMEOUT)
            .map_err(|e| Error::Daemon(format!("daemon pid {}: {e}", m.pid)))?;
        let Some(upstream) = body["id"].as_str().filter(|_| status == 200) else {
            return Err(Error::Daemon(
                body["error"]
                    .as_str()
                    .unwrap_or("the daemon did not register the server")
                    .to_string(),
            ));
        };
        let path = format!("/u/{upstream}/mcp");
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": jsonrpc::LATEST_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpshare-cli", "version": env!("CARGO_PKG_VERSION")},
        }});
        let reply = client
            .mcp_post(&path, &McpHeaders::default(), init.to_string().as_bytes())
            .map_err(|e| Error::Daemon(format!("initialize: {e}")))?;
        let id = reply.session.clone();
        let answer = reply
            .json(jsonrpc::max_message())
            .map_err(|e| Error::Daemon(format!("initialize: {e}")))?;
        if let Some(e) = answer.get("error") {
            return Err(Error::Daemon(format!(
                "server '{name}' did not start: {}",
                e["message"].as_str().unwrap_or("unknown error")
            )));
        }
        let version = answer["result"]["protocolVersion"]
            .as_str()
            .unwrap_or(jsonrpc::LATEST_VERSION)
            .to_string();
        let id = id.ok_or_else(|| Error::Daemon("the daemon gave no session id".into()))?;
        let s = Session {
            client,
            path,
            id,
            version,
            next: 1,
        };
        s.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(s)
    }

    fn headers(&self) -> McpHeaders<'_> {
        McpHeaders {
            session: Some(&self.id),
            version: Some(&self.version),
        }
    }

    fn post(&self, msg: &Value) -> Result<crate::net::client::Reply> {
        self.client
            .mcp_post(&self.path, &self.headers(), msg.to_string().as_bytes())
            .map_err(|e| Error::Daemon(format!("daemon: {e}")))
    }

    /// Send a request and wait for its answer, refusing what the server
    /// asks meanwhile. The answer's `result`, or its error as an error.
    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next;
        self.next += 1;
        let reply =
            self.post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let max = jsonrpc::max_message();
        let answer = if reply.is_sse() {
            let mut events = reply.events(max);
            loop {
                let Some(data) = events
                    .next_data()
                    .map_err(|e| Error::Daemon(format!("{method}: {e}")))?
                else {
                    return Err(Error::Daemon(format!(
                        "{method}: the stream ended unanswered"
                    )));
                };
                let Ok(m) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                if m["id"] == json!(id) && m.get("method").is_none() {
                    break m;
                }
                if let (Some(asked), Some(their_id)) = (m["method"].as_str(), m.get("id")) {
                    let refusal = jsonrpc::error(
                        their_id.clone(),
                        jsonrpc::METHOD_NOT_FOUND,
                        format!("mcpshare {method} cannot answer {asked}"),
                    );
                    let _ = self.post(&refusal);
                }
            }
        } else {
            reply
                .json(max)
                .map_err(|e| Error::Daemon(format!("{method}: {e}")))?
        };
        match answer.get("error") {
            Some(e) => Err(Error::Daemon(format!(
                "{method}: {}",
                e["message"].as_str().unwrap_or("unknown error")
            ))),
            None => Ok(answer["result"].clone()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self
            .client
            .mcp_delete(&self.path, &self.headers(), Duration::from_secs(2));
    }
}

/// `mcpshare tools NAME [--json]`.
pub(super) fn tools(name: &str, as_json: bool) -> Result<i32> {
    let mut s = Session::open(name)?;
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let page = s.request("tools/list", params)?;
        tools.extend(page["tools"].as_array().cloned().unwrap_or_default());
        cursor = page["nextCursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&tools).unwrap_or_default()
        );
        return Ok(0);
    }
    let width = tools
        .iter()
        .filter_map(|t| t["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(4);
    for t in &tools {
        let about = t["description"]
            .as_str()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        println!("{:<width$}  {about}", t["name"].as_str().unwrap_or("?"));
    }
    Ok(0)
}

/// `mcpshare call NAME TOOL [JSON | K=V...] [--json]`: exit 0 on success,
/// 1 when the tool reports an error.
pub(super) fn call(name: &str, tool: &str, args: &[String], as_json: bool) -> Result<i32> {
    let arguments = arguments(args)?;
    let mut s = Session::open(name)?;
    let result = s.request("tools/call", json!({"name": tool, "arguments": arguments}))?;
    let failed = result["isError"] == json!(true);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        for item in result["content"].as_array().into_iter().flatten() {
            match item["text"].as_str() {
                Some(text) if item["type"] == "text" => println!("{text}"),
                _ => println!("{item}"),
            }
        }
        if let Some(structured) = result.get("structuredContent")
            && result["content"].as_array().is_none_or(Vec::is_empty)
        {
            println!("{structured}");
        }
    }
    Ok(i32::from(failed))
}

/// A tool's arguments from the command line: one JSON object, or `K=V`
/// pairs whose values are JSON when they parse as JSON, else strings.
pub fn arguments(args: &[String]) -> Result<Value> {
    if let [one] = args
        && one.trim_start().starts_with('{')
    {
        return serde_json::from_str::<Value>(one)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| Error::Usage(format!("'{one}' is not a JSON object")));
    }
    let mut obj = Map::new();
    for a in args {
        let Some((k, v)) = a.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Error::Usage(format!(
                "'{a}' is neither a JSON object nor KEY=VALUE"
            )));
        };
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| json!(v));
        obj.insert(k.to_string(), value);
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_are_a_json_object_or_key_value_pairs() {
        assert_eq!(
            arguments(&args(&[r#"{"a": [1]}"#])).unwrap(),
            json!({"a": [1]})
        );
        assert_eq!(
            arguments(&args(&["n=3", "s=hi", "b=true", "o={\"x\":1}", "e="])).unwrap(),
            json!({"n": 3, "s": "hi", "b": true, "o": {"x": 1}, "e": ""})
        );
        assert_eq!(arguments(&[]).unwrap(), json!({}));
        assert!(arguments(&args(&["novalue"])).is_err());
        assert!(arguments(&args(&["=v"])).is_err());
        assert!(arguments(&args(&["{not json"])).is_err());
    }
}
