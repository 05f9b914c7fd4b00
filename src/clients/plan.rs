//! `connect` and `disconnect` as pure functions over a file's text: what
//! the new text is, which entries were removed, added or wrapped (kept in
//! the record so disconnect undoes exactly that), and a line diff to show
//! first. JSON edits go through the config's format-preserving editor;
//! only the entries named here change, every other byte stays.

use super::codex::{self, env_lines};
use super::json_clients::{self, blank_comments};
use super::toml;
use super::{Client, ClientServer, Shape};
use crate::config::edit::{self, New};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ops::Range;

/// The name of the hub's entry in a client.
pub const HUB_NAME: &str = "mcpshare";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One entry running `mcpshare mcp` in place of the imported servers.
    Hub,
    /// Each stdio entry runs through `mcpshare run --`.
    Wrap,
}

/// An entry connect took out (its text as it was), or put in (its text
/// as written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub keys: Vec<String>,
    pub name: String,
    pub text: String,
}

/// An entry whose command and args connect rewrote: the values' text
/// before and after; and the variables it added to the entry's env (the
/// hub's, each one the entry did not set), and whether it made the env.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrapped {
    pub keys: Vec<String>,
    pub name: String,
    pub command: String,
    pub args: Option<String>,
    pub new_command: String,
    pub new_args: String,
    // Records written before connect added variables have neither.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub env_created: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub after: String,
    pub removed: Vec<Entry>,
    pub added: Vec<Entry>,
    pub wrapped: Vec<Wrapped>,
    pub notes: Vec<String>,
}

/// Where to connect in one file: the servers object's keys, whether the
/// hub's entry goes there, and which entries it replaces.
pub struct Target<'a> {
    pub keys: Vec<String>,
    pub hub_here: bool,
    pub replaces: &'a dyn Fn(&ClientServer) -> bool,
}

/// Is this command mcpshare itself (any path to a binary of that name)?
pub fn is_mcpshare(command: &str) -> bool {
    std::path::Path::new(command)
        .file_stem()
        .is_some_and(|s| s == "mcpshare")
}

/// The args of a wrapped entry: `run -- COMMAND ARGS...`.
pub fn wrap_args(command: &str, args: &[String]) -> Vec<String> {
    let mut out = vec!["run".to_string(), "--".to_string(), command.to_string()];
    out.extend(args.iter().cloned());
    out
}

/// Apply `f` (an edit by the config's editor) to strict JSON and carry
/// the changed bytes back into `text`, whose comments stay where they
/// were: the blanked text has the same offsets.
fn splice_back(
    text: &str,
    f: impl FnOnce(&str) -> Result<String, String>,
) -> Result<String, String> {
    let strict = blank_comments(text);
    let after = f(&strict)?;
    let (a, b) = (strict.as_bytes(), after.as_bytes());
    let mut p = 0;
    while p < a.len() && p < b.len() && a[p] == b[p] {
        p += 1;
    }
    // Never inside a character: names that share a UTF-8 lead byte would
    // otherwise cut one in two.
    while p > 0 && !(strict.is_char_boundary(p) && after.is_char_boundary(p)) {
        p -= 1;
    }
    let mut s = 0;
    while s < a.len() - p && s < b.len() - p && a[a.len() - 1 - s] == b[b.len() - 1 - s] {
        s += 1;
    }
    while s > 0 && !(strict.is_char_boundary(a.len() - s) && after.is_char_boundary(b.len() - s)) {
        s -= 1;
    }
    Ok(format!(
        "{}{}{}",
        &text[..p],
        &after[p..b.len() - s],
        &text[a.len() - s..]
    ))
}

/// The range of the object at `keys` in strict JSON, if present.
fn object_at(strict: &str, keys: &[String]) -> Result<Option<Range<usize>>, String> {
    let Some(mut obj) = edit::root(strict)? else {
        return Ok(None);
    };
    for k in keys {
        match edit::member(strict, obj, k)? {
            Some(m) if strict.as_bytes()[m.value.start] == b'{' => obj = m.value,
            Some(_) => return Err(format!("\"{}\" is not an object", keys.join("."))),
            None => return Ok(None),
        }
    }
    Ok(Some(obj))
}

/// Set `keys[..].name` to `value`, creating the objects on the way.
fn put(text: &str, keys: &[String], name: &str, value: &New) -> Result<String, String> {
    let text = if edit::root(&blank_comments(text))?.is_none() {
        "{}\n".to_string()
    } else {
        text.to_string()
    };
    splice_back(&text, |strict| {
        let mut obj = edit::root(strict)?.expect("an object");
        for (i, k) in keys.iter().enumerate() {
            match edit::member(strict, obj.clone(), k)? {
                Some(m) if strict.as_bytes()[m.value.start] == b'{' => obj = m.value,
                Some(_) => return Err(format!("\"{}\" is not an object", keys.join("."))),
                None => {
                    let mut v = New::Object(vec![(name.to_string(), value.clone())]);
                    for k in keys[i + 1..].iter().rev() {
                        v = New::Object(vec![(k.clone(), v)]);
                    }
                    return edit::set_member(strict, obj, k, &v);
                }
            }
        }
        edit::set_member(strict, obj, name, value)
    })
}

fn remove(text: &str, keys: &[String], name: &str) -> Result<String, String> {
    splice_back(text, |strict| {
        let obj = object_at(strict, keys)?.ok_or("no such object")?;
        Ok(edit::remove_member(strict, obj, name)?.unwrap_or_else(|| strict.to_string()))
    })
}

/// The names of the entries of the JSON servers object at `keys`.
pub fn names_at(text: &str, keys: &[String]) -> Result<Vec<String>, String> {
    Ok(json_entries(text, keys)?
        .into_iter()
        .map(|(n, ..)| n)
        .collect())
}

/// The entries of the servers object at `keys`: name, value, value range.
fn json_entries(text: &str, keys: &[String]) -> Result<Vec<(String, Value, Range<usize>)>, String> {
    let strict = blank_comments(text);
    let Some(obj) = object_at(&strict, keys)? else {
        return Ok(Vec::new());
    };
    edit::members(&strict, obj)?
        .into_iter()
        .map(|m| {
            let v: Value =
                serde_json::from_str(&strict[m.value.clone()]).map_err(|e| e.to_string())?;
            Ok((m.key, v, m.value))
        })
        .collect()
}

/// The names of `vars`: `A and B`.
fn names_of(vars: &[(String, String)]) -> String {
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    names.join(" and ")
}

/// `vars` as a JSON object, in their order.
fn env_object(vars: &[(String, String)]) -> New {
    New::Object(
        vars.iter()
            .map(|(k, v)| (k.clone(), New::Value(Value::from(v.as_str()))))
            .collect(),
    )
}

fn hub_entry(shape: Shape, exe: &str, env: &[(String, String)]) -> New {
    let mut pairs = Vec::new();
    if shape == Shape::VscodeServers {
        pairs.push(("type".to_string(), New::Value(Value::from("stdio"))));
    }
    pairs.push(("command".to_string(), New::Value(Value::from(exe))));
    pairs.push(("args".to_string(), New::Value(serde_json::json!(["mcp"]))));
    if !env.is_empty() {
        pairs.push(("env".to_string(), env_object(env)));
    }
    New::Object(pairs)
}

/// Plan `connect` of one file. The hub's entry runs `exe mcp` with
/// `hub_env` (the variables a client must pass it to find the user's
/// mcpshare home and config; none when they are the defaults).
pub fn connect(
    client: Client,
    shape: Shape,
    text: &str,
    targets: &[Target],
    mode: Mode,
    exe: &str,
    hub_env: &[(String, String)],
) -> Result<Change, String> {
    if shape == Shape::CodexToml {
        return connect_toml(text, targets, mode, exe, hub_env);
    }
    json_clients::parse(text)?;
    let mut c = Change {
        after: text.to_string(),
        ..Change::default()
    };
    for t in targets {
        let names: Vec<String> = json_entries(&c.after, &t.keys)?
            .into_iter()
            .map(|(n, ..)| n)
            .collect();
        for name in names {
            let Some((_, v, range)) = json_entries(&c.after, &t.keys)?
                .into_iter()
                .find(|(n, ..)| *n == name)
            else {
                continue;
            };
            let Some(s) = json_clients::server(client, shape, &name, &v) else {
                continue;
            };
            let super::Transport::Stdio { command, args, .. } = &s.transport else {
                continue;
            };
            if is_mcpshare(command) {
                continue;
            }
            match mode {
                Mode::Hub if (t.replaces)(&s) => {
                    c.removed.push(Entry {
                        keys: t.keys.clone(),
                        name: name.clone(),
                        text: c.after[range].to_string(),
                    });
                    c.after = remove(&c.after, &t.keys, &name)?;
                }
                Mode::Hub => {}
                Mode::Wrap => {
                    let (inner, ck) = launch_keys(&t.keys, &name, &v);
                    let new_args = compact(&wrap_args(command, args));
                    let holder = json_clients::at(&v, &inner[t.keys.len() + 1..]);
                    let (env, env_created) = match holder.and_then(|h| h.get("env")) {
                        None => (hub_env.to_vec(), !hub_env.is_empty()),
                        Some(Value::Object(set)) => (
                            hub_env
                                .iter()
                                .filter(|(k, _)| !set.contains_key(k))
                                .cloned()
                                .collect(),
                            false,
                        ),
                        Some(_) => {
                            if !hub_env.is_empty() {
                                c.notes.push(format!(
                                    "'{name}': its env is not an object; {} not added",
                                    names_of(hub_env)
                                ));
                            }
                            (Vec::new(), false)
                        }
                    };
                    c.wrapped.push(Wrapped {
                        keys: t.keys.clone(),
                        name: name.clone(),
                        command: raw_member(&c.after, &inner, ck)?.unwrap_or_default(),
                        args: raw_member(&c.after, &inner, "args")?,
                        new_command: Value::from(exe).to_string(),
                        new_args: new_args.clone(),
                        env: env.clone(),
                        env_created,
                    });
                    c.after = set_in(&c.after, &inner, ck, &New::Value(Value::from(exe)))?;
                    c.after = set_raw(&c.after, &inner, "args", &new_args)?;
                    if env_created {
                        c.after = set_in(&c.after, &inner, "env", &env_object(&env))?;
                    } else {
                        let at = [inner.as_slice(), &["env".to_string()]].concat();
                        for (k, val) in &env {
                            c.after =
                                set_in(&c.after, &at, k, &New::Value(Value::from(val.as_str())))?;
                        }
                    }
                }
            }
        }
        if mode == Mode::Hub && t.hub_here {
            let want = hub_entry(shape, exe, hub_env);
            let have = json_entries(&c.after, &t.keys)?
                .into_iter()
                .find(|(n, ..)| n == HUB_NAME);
            let want_value = new_value(&want);
            match have {
                Some((_, v, _)) if v == want_value => {}
                Some(_) => c.notes.push(format!(
                    "an entry named '{HUB_NAME}' is already there and differs; left as it is"
                )),
                None => {
                    c.after = put(&c.after, &t.keys, HUB_NAME, &want)?;
                    let (_, _, range) = json_entries(&c.after, &t.keys)?
                        .into_iter()
                        .find(|(n, ..)| n == HUB_NAME)
                        .ok_or("the hub entry was not written")?;
                    c.added.push(Entry {
                        keys: t.keys.clone(),
                        name: HUB_NAME.into(),
                        text: c.after[range].to_string(),
                    });
                }
            }
        }
    }
    Ok(c)
}

fn new_value(n: &New) -> Value {
    match n {
        New::Value(v) => v.clone(),
        New::Object(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), new_value(v)))
                .collect(),
        ),
    }
}

/// The keys of the object holding an entry's command and args, and the
/// command's key: Zed's older entries nest them, `command: {path, args}`.
fn launch_keys(keys: &[String], name: &str, entry: &Value) -> (Vec<String>, &'static str) {
    let mut inner = keys.to_vec();
    inner.push(name.to_string());
    if entry.get("command").is_some_and(Value::is_object) {
        inner.push("command".into());
        (inner, "path")
    } else {
        (inner, "command")
    }
}

/// The text of member `key` of the object at `keys`, as written.
fn raw_member(text: &str, keys: &[String], key: &str) -> Result<Option<String>, String> {
    let strict = blank_comments(text);
    let Some(obj) = object_at(&strict, keys)? else {
        return Ok(None);
    };
    Ok(edit::member(&strict, obj, key)?.map(|m| text[m.value].to_string()))
}

/// A JSON array of strings on one line: `["a", "b"]`.
fn compact(items: &[String]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|i| Value::from(i.as_str()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

/// Set `keys[..].key` to the JSON text `raw` as it is (an entry as the
/// user wrote it, say): the editor places a `null`, whose bytes `raw`
/// then replaces.
fn set_raw(text: &str, keys: &[String], key: &str, raw: &str) -> Result<String, String> {
    let mut out = put(text, keys, key, &New::Value(Value::Null))?;
    let strict = blank_comments(&out);
    let obj = object_at(&strict, keys)?.ok_or("no such object")?;
    let m = edit::member(&strict, obj, key)?.ok_or("the entry was not written")?;
    out.replace_range(m.value, raw);
    Ok(out)
}

/// Set member `key` of the object at `keys` (which must exist).
fn set_in(text: &str, keys: &[String], key: &str, value: &New) -> Result<String, String> {
    splice_back(text, |strict| {
        let obj = object_at(strict, keys)?.ok_or("no such object")?;
        edit::set_member(strict, obj, key, value)
    })
}

fn connect_toml(
    text: &str,
    targets: &[Target],
    mode: Mode,
    exe: &str,
    hub_env: &[(String, String)],
) -> Result<Change, String> {
    let entries = codex::entries(text)?;
    let servers = codex::servers(text)?;
    let replaces = targets.first().map(|t| t.replaces);
    let keys = vec![codex::TABLE.to_string()];
    let mut c = Change::default();
    let mut cuts: Vec<Range<usize>> = Vec::new();
    // (range, new text), applied from the end.
    let mut splices: Vec<(Range<usize>, String)> = Vec::new();
    for s in &servers {
        let super::Transport::Stdio { command, args, .. } = &s.transport else {
            continue;
        };
        let e = entries
            .iter()
            .find(|e| e.name == s.name)
            .expect("read from these entries");
        if is_mcpshare(command) {
            continue;
        }
        let replaced = mode == Mode::Hub && replaces.is_some_and(|r| r(s));
        if (replaced || mode == Mode::Wrap) && e.scattered {
            c.notes.push(format!(
                "'{}' is not written as its own [mcp_servers.{}] table; left as it is",
                s.name, s.name
            ));
            continue;
        }
        if replaced {
            c.removed.push(Entry {
                keys: keys.clone(),
                name: s.name.clone(),
                text: e.sections.iter().map(|r| &text[r.clone()]).collect(),
            });
            cuts.extend(e.sections.iter().cloned());
        } else if mode == Mode::Wrap {
            let new_args = toml::render(&toml::Value::Array(
                wrap_args(command, args)
                    .into_iter()
                    .map(toml::Value::Str)
                    .collect(),
            ));
            let (line, cv) = e.command.clone().ok_or("command not in its table")?;
            let mut env: Vec<(String, String)> = hub_env
                .iter()
                .filter(|(k, _)| !codex::sets_env(e, k))
                .cloned()
                .collect();
            if !env.is_empty() && e.env.is_none() && codex::has_env(e) {
                c.notes.push(format!(
                    "'{}': its env is not a table of its own; {} not added",
                    s.name,
                    names_of(&env)
                ));
                env.clear();
            }
            let env_created = !env.is_empty() && e.env.is_none();
            c.wrapped.push(Wrapped {
                keys: keys.clone(),
                name: s.name.clone(),
                command: text[cv.clone()].to_string(),
                args: e.args.as_ref().map(|(_, v)| text[v.clone()].to_string()),
                new_command: toml::string(exe),
                new_args: new_args.clone(),
                env: env.clone(),
                env_created,
            });
            splices.push((cv, toml::string(exe)));
            // A new env goes on the line after args.
            let new_env = if env_created {
                let vars = env
                    .iter()
                    .map(|(k, v)| (k.clone(), toml::Value::Str(v.clone())))
                    .collect();
                format!("env = {}\n", toml::render(&toml::Value::Table(vars)))
            } else {
                String::new()
            };
            match &e.args {
                Some((aline, av)) => {
                    splices.push((av.clone(), new_args));
                    if env_created {
                        splices.push((aline.end..aline.end, new_env));
                    }
                }
                None => splices.push((line.end..line.end, format!("args = {new_args}\n{new_env}"))),
            }
            match &e.env {
                _ if env.is_empty() => {}
                None => {}
                Some(codex::Env::Inline { value, .. }) => splices.push((
                    value.clone(),
                    codex::inline_with(&text[value.clone()], &env)?,
                )),
                Some(codex::Env::Lines { prefix, end, .. }) => {
                    let lead = if text[..*end].ends_with('\n') {
                        ""
                    } else {
                        "\n"
                    };
                    splices.push((*end..*end, format!("{lead}{}", env_lines(prefix, &env))));
                }
            }
        }
    }
    splices.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut after = text.to_string();
    for (r, with) in splices {
        after.replace_range(r, &with);
    }
    after = codex::cut(&after, &cuts);
    if mode == Mode::Hub && targets.iter().any(|t| t.hub_here) {
        let want = codex::section(HUB_NAME, exe, &["mcp".to_string()], hub_env);
        match codex::entries(&after)?
            .into_iter()
            .find(|e| e.name == HUB_NAME)
        {
            Some(e) if e.table == codex::entries(&want)?[0].table => {}
            Some(_) => c.notes.push(format!(
                "an entry named '{HUB_NAME}' is already there and differs; left as it is"
            )),
            None => {
                after = codex::append(&after, &want);
                c.added.push(Entry {
                    keys,
                    name: HUB_NAME.into(),
                    text: want,
                });
            }
        }
    }
    c.after = after;
    Ok(c)
}

/// Plan `disconnect` when the file is no longer what connect wrote: take
/// out only our entries still as we wrote them, put back the removed ones
/// whose names are free, unwrap the wrapped ones still wrapped. Returns
/// the new text and a note for each thing left as the user made it.
pub fn disconnect(
    shape: Shape,
    text: &str,
    removed: &[Entry],
    added: &[Entry],
    wrapped: &[Wrapped],
) -> Result<(String, Vec<String>), String> {
    if shape == Shape::CodexToml {
        return disconnect_toml(text, removed, added, wrapped);
    }
    json_clients::parse(text)?;
    let mut after = text.to_string();
    let mut notes = Vec::new();
    let parse =
        |s: &str| serde_json::from_str::<Value>(&blank_comments(s)).map_err(|e| e.to_string());
    for a in added {
        match json_entries(&after, &a.keys)?
            .into_iter()
            .find(|(n, ..)| *n == a.name)
        {
            Some((_, v, _)) if v == parse(&a.text)? => after = remove(&after, &a.keys, &a.name)?,
            Some(_) => notes.push(format!("kept '{}': edited since connect", a.name)),
            None => {}
        }
    }
    for w in wrapped {
        let Some((_, v, _)) = json_entries(&after, &w.keys)?
            .into_iter()
            .find(|(n, ..)| *n == w.name)
        else {
            continue;
        };
        let (inner, ck) = launch_keys(&w.keys, &w.name, &v);
        let holder = json_clients::at(&v, &inner[w.keys.len() + 1..])
            .cloned()
            .unwrap_or_default();
        if holder.get(ck) != Some(&parse(&w.new_command)?)
            || holder.get("args") != Some(&parse(&w.new_args)?)
        {
            notes.push(format!("kept '{}': edited since connect", w.name));
            continue;
        }
        after = set_raw(&after, &inner, ck, &w.command)?;
        after = match &w.args {
            Some(a) => set_raw(&after, &inner, "args", a)?,
            None => remove(&after, &inner, "args")?,
        };
        let Some(Value::Object(env)) = holder.get("env") else {
            continue;
        };
        let at = [inner.as_slice(), &["env".to_string()]].concat();
        for (k, val) in &w.env {
            match env.get(k) {
                Some(now) if now.as_str() == Some(val) => after = remove(&after, &at, k)?,
                Some(_) => notes.push(format!("kept {k} in '{}': edited since connect", w.name)),
                None => {}
            }
        }
        if w.env_created && json_entries(&after, &at)?.is_empty() {
            after = remove(&after, &inner, "env")?;
        }
    }
    for r in removed {
        if json_entries(&after, &r.keys)?
            .iter()
            .any(|(n, ..)| *n == r.name)
        {
            notes.push(format!(
                "did not put back '{}': an entry of that name is there now",
                r.name
            ));
            continue;
        }
        after = set_raw(&after, &r.keys, &r.name, &r.text)?;
    }
    Ok((after, notes))
}

fn disconnect_toml(
    text: &str,
    removed: &[Entry],
    added: &[Entry],
    wrapped: &[Wrapped],
) -> Result<(String, Vec<String>), String> {
    let mut notes = Vec::new();
    let entries = codex::entries(text)?;
    let mut cuts = Vec::new();
    let mut splices: Vec<(Range<usize>, String)> = Vec::new();
    for a in added {
        let Some(e) = entries.iter().find(|e| e.name == a.name) else {
            continue;
        };
        if !e.scattered && e.table == codex::entries(&a.text)?[0].table {
            cuts.extend(e.sections.iter().cloned());
        } else {
            notes.push(format!("kept '{}': edited since connect", a.name));
        }
    }
    let value = |s: &str| -> Result<toml::Value, String> {
        let d = toml::parse(&format!("x = {s}\n"))?;
        Ok(d.sections[0].pairs[0].value.clone())
    };
    for w in wrapped {
        let Some(e) = entries.iter().find(|e| e.name == w.name) else {
            continue;
        };
        let (Some((_, cv)), Some((aline, av))) = (&e.command, &e.args) else {
            notes.push(format!("kept '{}': edited since connect", w.name));
            continue;
        };
        if value(&text[cv.clone()])? != value(&w.new_command)?
            || value(&text[av.clone()])? != value(&w.new_args)?
        {
            notes.push(format!("kept '{}': edited since connect", w.name));
            continue;
        }
        splices.push((cv.clone(), w.command.clone()));
        match &w.args {
            Some(a) => splices.push((av.clone(), a.clone())),
            None => splices.push((aline.clone(), String::new())),
        }
        let ours =
            |k: &str, v: &toml::Value| w.env.iter().any(|(n, s)| n == k && v.as_str() == Some(s));
        let mut edited: Vec<&str> = w.env.iter().map(|(k, _)| k.as_str()).collect();
        match &e.env {
            _ if w.env.is_empty() => {}
            None => {}
            Some(codex::Env::Inline { line, value }) => {
                let members = toml::inline_members(text, value.start)?;
                let (mine, theirs): (Vec<_>, Vec<_>) = members
                    .iter()
                    .partition(|m| matches!(m.keys.as_slice(), [k] if ours(k, &m.value)));
                edited.retain(|k| !mine.iter().any(|m| m.keys == [*k]));
                if w.env_created && theirs.is_empty() {
                    splices.push((line.clone(), String::new()));
                } else if !mine.is_empty() {
                    let names: Vec<&str> = mine.iter().map(|m| m.keys[0].as_str()).collect();
                    let table = codex::inline_without(&text[value.clone()], &names)?;
                    splices.push((value.clone(), table));
                }
            }
            Some(codex::Env::Lines { vars, .. }) => {
                for (k, line, v) in vars {
                    if ours(k, v) {
                        edited.retain(|e| e != k);
                        splices.push((line.clone(), String::new()));
                    }
                }
            }
        }
        // Ours and still there, with another value.
        for k in edited {
            if codex::env_value(e, k).is_some() {
                notes.push(format!("kept {k} in '{}': edited since connect", w.name));
            }
        }
    }
    splices.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut after = text.to_string();
    for (r, with) in splices {
        after.replace_range(r, &with);
    }
    after = codex::cut(&after, &cuts);
    for r in removed {
        if codex::entries(&after)?.iter().any(|e| e.name == r.name) {
            notes.push(format!(
                "did not put back '{}': an entry of that name is there now",
                r.name
            ));
            continue;
        }
        after = codex::append(&after, &r.text);
    }
    Ok((after, notes))
}

/// A line diff of `before` and `after`: the changed lines between the
/// common head and tail, with up to three lines of context.
pub fn diff(path: &str, before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let mut head = 0;
    while head < a.len() && head < b.len() && a[head] == b[head] {
        head += 1;
    }
    let mut tail = 0;
    while tail < a.len() - head
        && tail < b.len() - head
        && a[a.len() - 1 - tail] == b[b.len() - 1 - tail]
    {
        tail += 1;
    }
    if head == a.len() && head == b.len() {
        return String::new();
    }
    let from = head.saturating_sub(3);
    let to_a = (a.len() - tail + 3).min(a.len());
    let mut out = format!(
        "--- {path}\n+++ {path} (new)\n@@ -{},{} +{},{} @@\n",
        from + 1,
        to_a - from,
        from + 1,
        (b.len() - tail + 3).min(b.len()) - from
    );
    for l in &a[from..head] {
        out.push_str(&format!(" {l}\n"));
    }
    for l in &a[head..a.len() - tail] {
        out.push_str(&format!("-{l}\n"));
    }
    for l in &b[head..b.len() - tail] {
        out.push_str(&format!("+{l}\n"));
    }
    for l in &a[a.len() - tail..to_a] {
        out.push_str(&format!(" {l}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Transport;

    const EXE: &str = "/opt/bin/mcpshare";

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn replace_a(s: &ClientServer) -> bool {
        matches!(&s.transport, Transport::Stdio { command, .. } if command == "a")
    }

    #[test]
    fn names_sharing_a_utf8_lead_byte_are_never_cut() {
        for (x, y) in [("あ", "い"), ("ä", "å")] {
            let text = format!(
                "{{\"mcpServers\": {{\"{x}\": {{\"command\": \"a\"}}, \"{y}\": {{\"command\": \"b\"}}}}}}"
            );
            let c = plan(
                Client::Cursor,
                Shape::McpServers,
                "mcpServers",
                &text,
                true,
                Mode::Hub,
                &[],
            );
            assert!(
                c.after.contains(y) && !c.after.contains(&format!("\"{x}\"")),
                "{}",
                c.after
            );
        }
    }

    #[test]
    fn hub_keeps_comments_and_other_entries_and_is_undone_by_splicing() {
        let text = "// settings\n{\n  \"x\": 1, // one\n  \"context_servers\": {\n    \"a\": {\"command\": \"a\", \"args\": []},\n    \"b\": {\"command\": \"b\"},\n  },\n}\n";
        let c = plan(
            Client::Zed,
            Shape::ZedContextServers,
            "context_servers",
            text,
            true,
            Mode::Hub,
            &[],
        );
        assert!(
            c.after.starts_with("// settings\n{\n  \"x\": 1, // one\n"),
            "{}",
            c.after
        );
        assert!(!c.after.contains("\"a\"") && c.after.contains("\"b\": {\"command\": \"b\"}"));
        assert_eq!(c.removed[0].text, "{\"command\": \"a\", \"args\": []}");
        assert_eq!(c.added.len(), 1);
        // Connecting again changes nothing.
        let again = plan(
            Client::Zed,
            Shape::ZedContextServers,
            "context_servers",
            &c.after,
            true,
            Mode::Hub,
            &[],
        );
        assert_eq!(again.after, c.after);
        assert!(again.removed.is_empty() && again.added.is_empty());
        let (back, notes) = disconnect(
            Shape::ZedContextServers,
            &c.after,
            &c.removed,
            &c.added,
            &c.wrapped,
        )
        .unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert!(
            back.contains("\"a\": {\"command\": \"a\", \"args\": []}") && !back.contains(HUB_NAME),
            "{back}"
        );
        assert!(back.starts_with("// settings\n{\n  \"x\": 1, // one\n"));
    }

    #[test]
    fn an_edited_hub_entry_is_kept_and_a_taken_name_not_put_back() {
        let text = "{\"mcpServers\": {\"a\": {\"command\": \"a\"}}}";
        let c = plan(
            Client::Cursor,
            Shape::McpServers,
            "mcpServers",
            text,
            true,
            Mode::Hub,
            &[],
        );
        let edited = c
            .after
            .replace("\"mcp\"", "\"mcp\", \"--verbose\"")
            .replace(
                "\"mcpServers\": {",
                "\"mcpServers\": {\"a\": {\"command\": \"mine\"},",
            );
        let (back, notes) =
            disconnect(Shape::McpServers, &edited, &c.removed, &c.added, &c.wrapped).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            back.contains("--verbose") && back.contains("\"mine\""),
            "{back}"
        );
    }

    #[test]
    fn codex_wrap_and_unwrap_splice_only_command_and_args() {
        let text = "# top\n[mcp_servers.a]\ncommand = \"a\" # the server\nenv = { K = \"v\" }\n\n[mcp_servers.b]\ncommand = 'b'\nargs = [\"-x\"]\n";
        let c = plan(
            Client::Codex,
            Shape::CodexToml,
            "mcp_servers",
            text,
            true,
            Mode::Wrap,
            &[],
        );
        assert_eq!(
            c.after,
            "# top\n[mcp_servers.a]\ncommand = \"/opt/bin/mcpshare\" # the server\nargs = [\"run\", \"--\", \"a\"]\nenv = { K = \"v\" }\n\n[mcp_servers.b]\ncommand = \"/opt/bin/mcpshare\"\nargs = [\"run\", \"--\", \"b\", \"-x\"]\n"
        );
        let (back, notes) =
            disconnect(Shape::CodexToml, &c.after, &c.removed, &c.added, &c.wrapped).unwrap();
        assert!(notes.is_empty());
        assert_eq!(back, text);
    }

    fn hub_env() -> Vec<(String, String)> {
        vec![
            ("MCPSHARE_CONFIG".into(), "/c/config.json".into()),
            ("MCPSHARE_HOME".into(), "/h".into()),
        ]
    }

    /// `connect` of `text`, the servers at `key`, replacing entry `a`.
    fn plan(
        client: Client,
        shape: Shape,
        key: &str,
        text: &str,
        hub_here: bool,
        mode: Mode,
        env: &[(String, String)],
    ) -> Change {
        let t = [Target {
            keys: keys(&[key]),
            hub_here,
            replaces: &replace_a,
        }];
        connect(client, shape, text, &t, mode, EXE, env).unwrap()
    }

    fn wrap(client: Client, shape: Shape, key: &str, text: &str) -> Change {
        plan(client, shape, key, text, false, Mode::Wrap, &hub_env())
    }

    fn env_of(v: &Value) -> Value {
        v.get("env").cloned().unwrap_or_default()
    }

    #[test]
    fn json_wrap_adds_the_hub_env_the_entry_does_not_set_and_disconnect_takes_it_back() {
        let text = "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"a\"},\n    \"b\": {\n      \"command\": \"b\",\n      \"args\": [\"-x\"],\n      \"env\": {\"K\": \"v\"}\n    },\n    \"c\": {\"command\": \"c\", \"env\": {\"MCPSHARE_HOME\": \"/mine\"}},\n    \"d\": {\"command\": \"d\", \"env\": {}}\n  }\n}\n";
        let c = wrap(Client::Cursor, Shape::McpServers, "mcpServers", text);
        let (_, v) = json_clients::parse(&c.after).unwrap();
        let s = &v["mcpServers"];
        let both = serde_json::json!({"MCPSHARE_CONFIG": "/c/config.json", "MCPSHARE_HOME": "/h"});
        assert_eq!(env_of(&s["a"]), both, "{}", c.after);
        assert_eq!(
            env_of(&s["b"]),
            serde_json::json!({"K": "v", "MCPSHARE_CONFIG": "/c/config.json", "MCPSHARE_HOME": "/h"})
        );
        // What the user set stays theirs.
        assert_eq!(
            env_of(&s["c"]),
            serde_json::json!({"MCPSHARE_HOME": "/mine", "MCPSHARE_CONFIG": "/c/config.json"})
        );
        assert_eq!(env_of(&s["d"]), both);
        assert_eq!(s["a"]["args"], serde_json::json!(["run", "--", "a"]));
        let recorded: Vec<_> = c
            .wrapped
            .iter()
            .map(|w| (w.name.as_str(), w.env.clone(), w.env_created))
            .collect();
        assert_eq!(
            recorded,
            [
                ("a", hub_env(), true),
                ("b", hub_env(), false),
                ("c", hub_env()[..1].to_vec(), false),
                ("d", hub_env(), false),
            ]
        );
        let (back, notes) = disconnect(
            Shape::McpServers,
            &c.after,
            &c.removed,
            &c.added,
            &c.wrapped,
        )
        .unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(back, text);
        // With the default home and config, nothing but command and args.
        let plain = plan(
            Client::Cursor,
            Shape::McpServers,
            "mcpServers",
            text,
            false,
            Mode::Wrap,
            &[],
        );
        assert!(
            !plain.after.contains("/c/config.json") && !plain.after.contains("\"/h\""),
            "{}",
            plain.after
        );
        assert!(
            plain
                .wrapped
                .iter()
                .all(|w| w.env.is_empty() && !w.env_created)
        );
    }

    #[test]
    fn json_wrap_env_goes_where_vscode_and_zed_keep_it() {
        let text = "{\n  \"servers\": {\n    \"v\": {\"type\": \"stdio\", \"command\": \"v\", \"args\": []}\n  }\n}\n";
        let c = wrap(Client::Vscode, Shape::VscodeServers, "servers", text);
        let (_, v) = json_clients::parse(&c.after).unwrap();
        assert_eq!(
            env_of(&v["servers"]["v"]),
            serde_json::json!({"MCPSHARE_CONFIG": "/c/config.json", "MCPSHARE_HOME": "/h"})
        );
        let (back, _) = disconnect(Shape::VscodeServers, &c.after, &[], &[], &c.wrapped).unwrap();
        assert_eq!(back, text);
        // Zed's older entries nest the launch, env included.
        let text = "{\n  // mine\n  \"context_servers\": {\n    \"z\": {\"command\": {\"path\": \"z\", \"args\": [], \"env\": {\"MCPSHARE_CONFIG\": \"/z\"}}},\n    \"y\": {\"command\": {\"path\": \"y\"}}\n  }\n}\n";
        let c = wrap(
            Client::Zed,
            Shape::ZedContextServers,
            "context_servers",
            text,
        );
        let (_, v) = json_clients::parse(&c.after).unwrap();
        let z = &v["context_servers"]["z"]["command"];
        assert_eq!(
            env_of(z),
            serde_json::json!({"MCPSHARE_CONFIG": "/z", "MCPSHARE_HOME": "/h"}),
            "{}",
            c.after
        );
        assert_eq!(z["path"], EXE);
        assert_eq!(
            env_of(&v["context_servers"]["y"]["command"]),
            serde_json::json!({"MCPSHARE_CONFIG": "/c/config.json", "MCPSHARE_HOME": "/h"})
        );
        assert!(v["context_servers"]["y"].get("env").is_none());
        let (back, notes) =
            disconnect(Shape::ZedContextServers, &c.after, &[], &[], &c.wrapped).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(back, text);
    }

    #[test]
    fn a_wrapped_json_env_edited_since_connect_keeps_the_users_values() {
        let text = "{\"mcpServers\": {\"a\": {\"command\": \"a\"}, \"b\": {\"command\": \"b\", \"env\": {\"K\": \"v\"}}}}";
        let c = wrap(Client::Cursor, Shape::McpServers, "mcpServers", text);
        let edited = c.after.replacen("\"/h\"", "\"/a\"", 1);
        assert_ne!(edited, c.after);
        let (back, notes) = disconnect(Shape::McpServers, &edited, &[], &[], &c.wrapped).unwrap();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("MCPSHARE_HOME"), "{notes:?}");
        let (_, v) = json_clients::parse(&back).unwrap();
        assert_eq!(v["mcpServers"]["a"]["command"], "a");
        // The env connect made stays for the user's value, without ours.
        assert_eq!(
            env_of(&v["mcpServers"]["a"]),
            serde_json::json!({"MCPSHARE_HOME": "/a"}),
            "{back}"
        );
        assert_eq!(env_of(&v["mcpServers"]["b"]), serde_json::json!({"K": "v"}));
    }

    const CODEX: &str = "# top\n[mcp_servers.a]\ncommand = \"a\" # the server\n\n[mcp_servers.b]\ncommand = 'b'\nargs = [\"-x\"]\nenv = { K = \"v\" } # mine\n\n[mcp_servers.c]\ncommand = \"c\"\n\n[mcp_servers.c.env]\nMCPSHARE_HOME = \"/mine\"\n\n[mcp_servers.d]\ncommand = \"d\"\nenv = {}\nenv_vars = [\"MCPSHARE_CONFIG\"]\n\n[mcp_servers.e]\ncommand = \"e\"\nargs = []\nenv.K = \"v\"\n";

    #[test]
    fn codex_wrap_adds_the_hub_env_to_each_way_of_writing_env_and_takes_it_back() {
        let c = wrap(Client::Codex, Shape::CodexToml, "mcp_servers", CODEX);
        assert_eq!(
            c.after,
            "# top\n[mcp_servers.a]\ncommand = \"/opt/bin/mcpshare\" # the server\nargs = [\"run\", \"--\", \"a\"]\nenv = { MCPSHARE_CONFIG = \"/c/config.json\", MCPSHARE_HOME = \"/h\" }\n\n[mcp_servers.b]\ncommand = \"/opt/bin/mcpshare\"\nargs = [\"run\", \"--\", \"b\", \"-x\"]\nenv = { K = \"v\", MCPSHARE_CONFIG = \"/c/config.json\", MCPSHARE_HOME = \"/h\" } # mine\n\n[mcp_servers.c]\ncommand = \"/opt/bin/mcpshare\"\nargs = [\"run\", \"--\", \"c\"]\n\n[mcp_servers.c.env]\nMCPSHARE_HOME = \"/mine\"\nMCPSHARE_CONFIG = \"/c/config.json\"\n\n[mcp_servers.d]\ncommand = \"/opt/bin/mcpshare\"\nargs = [\"run\", \"--\", \"d\"]\nenv = { MCPSHARE_HOME = \"/h\"}\nenv_vars = [\"MCPSHARE_CONFIG\"]\n\n[mcp_servers.e]\ncommand = \"/opt/bin/mcpshare\"\nargs = [\"run\", \"--\", \"e\"]\nenv.K = \"v\"\nenv.MCPSHARE_CONFIG = \"/c/config.json\"\nenv.MCPSHARE_HOME = \"/h\"\n"
        );
        // It reads back as Codex reads it.
        let servers = codex::servers(&c.after).unwrap();
        for s in &servers {
            let super::super::Transport::Stdio { env, .. } = &s.transport else {
                panic!("{s:?}");
            };
            assert!(env.contains_key("MCPSHARE_HOME"), "{s:?}");
            assert!(env.contains_key("MCPSHARE_CONFIG"), "{s:?}");
        }
        let recorded: Vec<(&str, usize, bool)> = c
            .wrapped
            .iter()
            .map(|w| (w.name.as_str(), w.env.len(), w.env_created))
            .collect();
        assert_eq!(
            recorded,
            [
                ("a", 2, true),
                ("b", 2, false),
                ("c", 1, false),
                ("d", 1, false),
                ("e", 2, false)
            ]
        );
        let (back, notes) = disconnect(Shape::CodexToml, &c.after, &[], &[], &c.wrapped).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(back, CODEX);
        // With the default home and config, nothing but command and args.
        let plain = plan(
            Client::Codex,
            Shape::CodexToml,
            "mcp_servers",
            CODEX,
            false,
            Mode::Wrap,
            &[],
        );
        assert!(!plain.after.contains("\"/h\""), "{}", plain.after);
    }

    #[test]
    fn a_wrapped_codex_env_edited_since_connect_keeps_the_users_values() {
        let c = wrap(Client::Codex, Shape::CodexToml, "mcp_servers", CODEX);
        // The user changes one of ours in a's and b's env and adds one to a's.
        let edited = c
            .after
            .replacen(
                "env = { MCPSHARE_CONFIG = \"/c/config.json\", MCPSHARE_HOME = \"/h\" }",
                "env = { MCPSHARE_CONFIG = \"/c/config.json\", MCPSHARE_HOME = \"/a\", X = \"1\" }",
                1,
            )
            .replacen(
                "K = \"v\", MCPSHARE_CONFIG = \"/c/config.json\"",
                "K = \"v\", MCPSHARE_CONFIG = \"/b\"",
                1,
            );
        let (back, notes) = disconnect(Shape::CodexToml, &edited, &[], &[], &c.wrapped).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            back.starts_with("# top\n[mcp_servers.a]\ncommand = \"a\" # the server\nenv = { MCPSHARE_HOME = \"/a\", X = \"1\" }\n\n[mcp_servers.b]\ncommand = 'b'\nargs = [\"-x\"]\nenv = { K = \"v\", MCPSHARE_CONFIG = \"/b\" } # mine\n"),
            "{back}"
        );
        assert!(
            back.ends_with(&CODEX[CODEX.find("\n[mcp_servers.c]").unwrap()..]),
            "{back}"
        );
    }

    #[test]
    fn a_wrap_record_from_before_env_still_loads() {
        let old = r#"{"keys": ["mcpServers"], "name": "a", "command": "\"a\"", "args": null, "new_command": "\"/m\"", "new_args": "[\"run\"]"}"#;
        let w: Wrapped = serde_json::from_str(old).unwrap();
        assert!(w.env.is_empty() && !w.env_created);
    }

    #[test]
    fn diff_shows_the_changed_lines_with_context() {
        let d = diff("f", "a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nd\nX\nf\ng\nh\n");
        assert_eq!(
            d,
            "--- f\n+++ f (new)\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+X\n f\n g\n h\n"
        );
        assert_eq!(diff("f", "same\n", "same\n"), "");
    }
}
