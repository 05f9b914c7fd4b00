//! A hub session's lists: every page of every server's tools, prompts,
//! resources and templates, gathered at once, named for clients and
//! remembered in the catalog; and which server owns a resource URI.

use super::*;

impl HubSession {
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
    /// tagged with its server.
    pub(super) fn gather(&self, method: &str, field: &str) -> Vec<(String, Value)> {
        let members = self.members();
        let d = self.daemon.upgrade();
        let lists: Vec<(String, Result<Vec<Value>, String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = members
                .iter()
                .filter(|m| self.serves(m, method))
                .map(|m| {
                    let d = d.clone();
                    (
                        m.server.clone(),
                        s.spawn(move || {
                            // A server not running is listed as last seen.
                            if let Some(d) = &d
                                && m.session.upstream.pid().is_none()
                                && let Some(known) = d.catalog.read(&m.server)[field].as_array()
                            {
                                return Ok(known.clone());
                            }
                            let items = self.all_pages(m, method, field)?;
                            if let Some(d) = &d {
                                d.catalog.put(&m.server, field, json!(items));
                            }
                            Ok(items)
                        }),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(n, h)| (n, h.join().unwrap_or_else(|_| Err("panicked".into()))))
                .collect()
        });
        let mut out = Vec::new();
        for (server, items) in lists {
            match items {
                Ok(items) => out.extend(items.into_iter().map(|i| (server.clone(), i))),
                Err(e) => crate::log!("hub session {}: {method} of {server}: {e}", self.id),
            }
        }
        out
    }

    /// Does this member's server offer what `method` lists?
    pub(super) fn serves(&self, m: &Member, method: &str) -> bool {
        let cap = method.split('/').next().unwrap_or("");
        let known = self
            .daemon
            .upgrade()
            .map(|d| d.catalog.read(&m.server)["init"].clone())
            .filter(|i| i.is_object() && m.session.upstream.pid().is_none());
        let init = match known {
            Some(init) => init,
            None => match m.session.upstream.ensure_running(false) {
                Ok(init) => init,
                Err(_) => return false,
            },
        };
        init.pointer(&format!("/capabilities/{cap}")).is_some()
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
        let assigned = Names::assign(&pairs, budget);
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
