//! A hub session's lists: every page of every server's tools, prompts,
//! resources and templates, gathered at once, named for clients and
//! remembered in the catalog, and handed out whole or in pages of our own;
//! and which server owns a resource URI.

use super::*;

impl HubSession {
    /// The answer to a list request (its result's JSON text): the last one
    /// while no member changed, else made afresh.
    pub(super) fn listed(&self, method: &str) -> Arc<String> {
        let key: ListKey = self
            .members()
            .iter()
            .map(|m| {
                let up = &m.session.upstream;
                (up.id.clone(), up.pid().is_some(), up.list_version())
            })
            .collect();
        if let Some((k, text)) = lock(&self.answers).get(method)
            && *k == key
        {
            return text.clone();
        }
        let result = match method {
            "tools/list" => self.named_list(method, "tools"),
            "prompts/list" => self.named_list(method, "prompts"),
            "resources/list" => self.resource_list(method, "resources", "uri"),
            _ => self.resource_list(method, "resourceTemplates", "uriTemplate"),
        };
        let text = Arc::new(result.to_string());
        lock(&self.answers).insert(method.to_string(), (key, text.clone()));
        text
    }

    /// Every page of `method` from one member.
    pub(super) fn all_pages(
        &self,
        m: &Member,
        method: &str,
        field: &str,
    ) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut params = json!({});
        for _ in 0..MAX_PAGES {
            let page = self.ask_member(m, method, params)?;
            items.extend(page[field].as_array().cloned().unwrap_or_default());
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) => params = json!({"cursor": c}),
                None => break,
            }
        }
        Ok(items)
    }

    /// A merged list of every member's: `field` of `method`, each item
    /// tagged with its server. A running server's list is asked for only
    /// when it may have changed since the last time (see
    /// `Upstream::list_version`); one not running is listed as last seen.
    pub(super) fn gather(&self, method: &str, field: &str) -> Vec<(String, Value)> {
        let d = self.daemon.upgrade();
        let mut ready: Vec<(String, Arc<Vec<Value>>)> = Vec::new();
        let mut ask: Vec<Member> = Vec::new();
        for m in self
            .members()
            .into_iter()
            .filter(|m| self.serves(m, method))
        {
            let up = &m.session.upstream;
            if up.pid().is_none()
                && let Some(d) = &d
                && let Some(known) = d.catalog.field(&m.server, field).as_array()
            {
                ready.push((m.server.clone(), Arc::new(known.clone())));
                continue;
            }
            let version = up.list_version();
            let cached = d.as_ref().and_then(|d| {
                lock(&d.hub_lists)
                    .get(&(up.id.clone(), field.to_string()))
                    .filter(|(v, _)| *v == version)
                    .map(|(_, items)| items.clone())
            });
            match cached {
                Some(items) => ready.push((m.server.clone(), items)),
                None => ask.push(m),
            }
        }
        let asked: Vec<(Member, Result<Vec<Value>, String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = ask
                .into_iter()
                .map(|m| {
                    let version = m.session.upstream.list_version();
                    s.spawn(move || {
                        let items = self.all_pages(&m, method, field);
                        (m, version, items)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .map(|(m, version, items)| {
                    if let (Ok(items), Some(d)) = (&items, &d) {
                        lock(&d.hub_lists).insert(
                            (m.session.upstream.id.clone(), field.to_string()),
                            (version, Arc::new(items.clone())),
                        );
                        d.catalog.put(&m.server, field, json!(items));
                    }
                    (m, items)
                })
                .collect()
        });
        for (m, items) in asked {
            match items {
                Ok(items) => ready.push((m.server, Arc::new(items))),
                Err(e) => crate::log!("hub session {}: {method} of {}: {e}", self.id, m.server),
            }
        }
        {
            let mut seen = lock(&self.seen);
            for (server, items) in &ready {
                seen.insert((server.clone(), field.to_string()), items.clone());
            }
        }
        // In the order of the members, whatever answered first.
        let order: Vec<String> = lock(&self.members)
            .iter()
            .map(|m| m.server.clone())
            .collect();
        ready.sort_by_key(|(s, _)| order.iter().position(|o| o == s));
        ready
            .into_iter()
            .flat_map(|(server, items)| {
                items
                    .iter()
                    .map(|i| (server.clone(), i.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Does this member's server offer what `method` lists? A running
    /// server says in its handshake; one not running, as last seen.
    pub(super) fn serves(&self, m: &Member, method: &str) -> bool {
        let cap = method.split('/').next().unwrap_or("");
        let pointer = format!("/capabilities/{cap}");
        let up = &m.session.upstream;
        if up.pid().is_none()
            && let Some(d) = self.daemon.upgrade()
        {
            let init = d.catalog.field(&m.server, "init");
            if init.is_object() {
                return init.pointer(&pointer).is_some();
            }
        }
        match up.ensure_running(false) {
            Ok(init) => init.pointer(&pointer).is_some(),
            Err(_) => false,
        }
    }

    /// tools/list or prompts/list: every server's, under exposed names.
    pub(super) fn named_list(&self, method: &str, field: &str) -> Value {
        let items = self.gather(method, field);
        let filter = lock(&self.filter).clone();
        let items: Vec<(String, Value)> = items
            .into_iter()
            .filter(|(server, item)| {
                let name = item["name"].as_str().unwrap_or("");
                field != "tools" || filter.admits(&names::qualified(server, name))
            })
            .collect();
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|(s, i)| (s.clone(), i["name"].as_str().unwrap_or("").to_string()))
            .collect();
        let budget = if field == "tools" {
            self.selection.budget
        } else {
            256
        };
        let assigned = match self.daemon.upgrade() {
            Some(d) => d.names.assign(field, &pairs, budget),
            None => Names::assign(&pairs, budget, &Default::default()),
        };
        let out: Vec<Value> = items
            .into_iter()
            .map(|(server, mut item)| {
                let name = item["name"].as_str().unwrap_or("").to_string();
                if let Some(e) = assigned.exposed(&server, &name) {
                    item["name"] = json!(e);
                }
                item
            })
            .collect();
        let names = if field == "tools" {
            &self.tools
        } else {
            &self.prompts
        };
        *lock(names) = assigned;
        json!({ field: out })
    }

    /// resources/list and resources/templates/list: URIs kept, but one
    /// that two servers claim is rewritten per server.
    pub(super) fn resource_list(&self, method: &str, field: &str, key: &str) -> Value {
        let items = self.gather(method, field);
        let mut claims: HashMap<String, usize> = HashMap::new();
        for (_, item) in &items {
            *claims
                .entry(item[key].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        let mut owners = lock(&self.owners);
        if key == "uriTemplate" {
            owners.templates.clear();
        }
        let out: Vec<Value> = items
            .into_iter()
            .map(|(server, mut item)| {
                let uri = item[key].as_str().unwrap_or("").to_string();
                if key == "uriTemplate" {
                    let prefix = uri.split('{').next().unwrap_or("").to_string();
                    owners.templates.push((prefix, server));
                    return item;
                }
                let exposed = if claims.get(&uri).copied().unwrap_or(0) > 1 {
                    format!("{SHARED_URI}{server}/{uri}")
                } else {
                    uri.clone()
                };
                item[key] = json!(exposed);
                owners.uris.insert(exposed, (server, uri));
                item
            })
            .collect();
        json!({ field: out })
    }

    /// The member that owns a resource URI, and the URI it knows.
    pub(super) fn owner_of(&self, uri: &str) -> Option<(Member, String)> {
        let known = {
            let owners = lock(&self.owners);
            owners.uris.get(uri).cloned().or_else(|| {
                owners
                    .templates
                    .iter()
                    .filter(|(p, _)| !p.is_empty() && uri.starts_with(p.as_str()))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(_, s)| (s.clone(), uri.to_string()))
            })
        };
        let (server, original) = match known {
            Some(k) => k,
            None => {
                // Not listed yet: the rewritten form names its server; a
                // hub with one server that has resources owns everything.
                if let Some(rest) = uri.strip_prefix(SHARED_URI)
                    && let Some((server, original)) = rest.split_once('/')
                {
                    (server.to_string(), original.to_string())
                } else {
                    let mut with = self
                        .members()
                        .into_iter()
                        .filter(|m| self.serves(m, "resources/list"));
                    let only = with.next()?;
                    if with.next().is_some() {
                        return None;
                    }
                    (only.server, uri.to_string())
                }
            }
        };
        Some((self.member_named(&server)?, original))
    }
}

/// The field of a list method's result that holds its items.
pub(super) fn list_field(method: &str) -> &'static str {
    match method {
        "tools/list" => "tools",
        "prompts/list" => "prompts",
        "resources/list" => "resources",
        _ => "resourceTemplates",
    }
}

/// One page of the whole list answer `text` (`{field: [...]}`): from the
/// client's `cursor` (None for the first page), at most `size` items (0:
/// all that are left), with a `nextCursor` when more are left. A cursor is
/// ours alone: a hash of the whole answer and an offset, so it is refused
/// once the list changed (the client lists again from the start).
pub(super) fn page(
    text: &str,
    field: &str,
    cursor: Option<&str>,
    size: usize,
) -> Result<Value, String> {
    let whole = crate::hash::fnv1a(text.as_bytes());
    let from = match cursor {
        None => 0,
        Some(c) => {
            let (hash, offset) = c
                .get(..16)
                .zip(c.get(16..))
                .and_then(|(h, o)| {
                    Some((
                        u64::from_str_radix(h, 16).ok()?,
                        usize::from_str_radix(o, 16).ok()?,
                    ))
                })
                .ok_or_else(|| format!("invalid cursor {c:?}: not one this hub gave"))?;
            if hash != whole {
                return Err(format!(
                    "invalid cursor {c:?}: the list changed since; list again without a cursor"
                ));
            }
            offset
        }
    };
    let mut result: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let items = result[field]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    if from > items.len() {
        return Err(format!(
            "invalid cursor {:?}: past the end of the list",
            cursor.unwrap_or("")
        ));
    }
    let to = if size == 0 {
        items.len()
    } else {
        (from + size).min(items.len())
    };
    result[field] = Value::Array(items[from..to].to_vec());
    if to < items.len() {
        result["nextCursor"] = json!(format!("{whole:016x}{to:x}"));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_list_once_and_a_changed_list_refuses_its_cursors() {
        let text =
            json!({"tools": (0..7).map(|i| json!({"name": format!("t{i}")})).collect::<Vec<_>>()})
                .to_string();
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = page(&text, "tools", cursor.as_deref(), 3).unwrap();
            pages += 1;
            for t in p["tools"].as_array().unwrap() {
                names.push(t["name"].as_str().unwrap().to_string());
            }
            match p.get("nextCursor") {
                Some(c) => cursor = Some(c.as_str().unwrap().to_string()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(names, (0..7).map(|i| format!("t{i}")).collect::<Vec<_>>());
        // Without a page size: everything in one page, no cursor.
        let all = page(&text, "tools", None, 0).unwrap();
        assert_eq!(all["tools"].as_array().unwrap().len(), 7);
        assert!(all.get("nextCursor").is_none());
        // A cursor of the list before a change, or not ours, is refused.
        let first = page(&text, "tools", None, 3).unwrap();
        let c = first["nextCursor"].as_str().unwrap();
        let changed = json!({"tools": [{"name": "other"}]}).to_string();
        assert!(
            page(&changed, "tools", Some(c), 3)
                .unwrap_err()
                .contains("changed")
        );
        for bad in ["", "zz", "0123456789abcdefzz", &format!("{}ff", &c[..16])] {
            assert!(page(&text, "tools", Some(bad), 3).is_err(), "{bad:?}");
        }
    }
}
