//! What `connect` did to a client's file, kept under the home's
//! `clients/` so `disconnect` undoes exactly that: the bytes it wrote, the
//! entries it removed, added and wrapped, and a backup of the file as it
//! was. Written temp + rename, mode 0600. Also the one write of a
//! client's file: only when it is still the text the plan was made from.

use super::plan::{Entry, Wrapped};
use crate::error::{Error, Result};
use crate::state::home::{Home, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub client: String,
    pub path: PathBuf,
    /// `hub` or `wrap`.
    pub mode: String,
    /// The file's text as connect left it.
    pub written: String,
    /// The backup holds the file as it was before any connect, and
    /// nobody edited the file between two connects: restoring it when
    /// the file is still `written` loses nothing.
    pub backup_valid: bool,
    pub removed: Vec<Entry>,
    pub added: Vec<Entry>,
    pub wrapped: Vec<Wrapped>,
}

/// A stable short name for a file's path (FNV-1a, 64 bits).
fn key(client: &str, path: &Path) -> String {
    let h = crate::hash::fnv1a(path.to_string_lossy().as_bytes());
    format!("{client}-{h:016x}")
}

pub fn record_path(home: &Home, client: &str, path: &Path) -> PathBuf {
    home.clients_dir()
        .join(format!("{}.json", key(client, path)))
}

pub fn backup_path(home: &Home, client: &str, path: &Path) -> PathBuf {
    home.clients_dir()
        .join(format!("{}.backup", key(client, path)))
}

pub fn load(home: &Home, client: &str, path: &Path) -> Result<Option<Record>> {
    let p = record_path(home, client, path);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Client {
                path: p.clone(),
                message: format!("unreadable record of a connect: {e}"),
                hint: Some(format!(
                    "remove it to forget that connect ({})",
                    p.display()
                )),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Path(p, e)),
    }
}

fn private_dir(home: &Home) -> Result<PathBuf> {
    let dir = home.clients_dir();
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir).map_err(|e| Error::Path(dir.clone(), e))?;
    Ok(dir)
}

pub fn save(home: &Home, r: &Record) -> Result<()> {
    private_dir(home)?;
    let p = record_path(home, &r.client, &r.path);
    let bytes = serde_json::to_vec_pretty(r).expect("a record serializes");
    write_atomic(&p, &bytes).map_err(|e| Error::Path(p, e))
}

/// Keep `text` as the backup of `path` (once: a later connect keeps the
/// first backup).
pub fn save_backup(home: &Home, client: &str, path: &Path, text: &str) -> Result<PathBuf> {
    private_dir(home)?;
    let p = backup_path(home, client, path);
    write_atomic(&p, text.as_bytes()).map_err(|e| Error::Path(p.clone(), e))?;
    Ok(p)
}

pub fn read_backup(home: &Home, client: &str, path: &Path) -> Result<Option<String>> {
    super::read_text(&backup_path(home, client, path))
}

/// Forget a connect: its record and backup.
pub fn forget(home: &Home, client: &str, path: &Path) -> Result<()> {
    for p in [
        record_path(home, client, path),
        backup_path(home, client, path),
    ] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Path(p, e)),
        }
    }
    Ok(())
}

/// The file changed between the read and the write.
pub fn changed(path: &Path) -> Error {
    Error::Client {
        path: path.to_path_buf(),
        message: "the file changed while mcpshare was writing it; nothing was written".into(),
        hint: Some("a running client may have saved it: run the command again".into()),
    }
}

/// Write `after` to a client's `path` if it still holds `before` (None:
/// does not exist), keeping its permissions: a temp file beside it, then
/// a rename. Refuses when the file changed since it was read.
pub fn replace(path: &Path, before: Option<&str>, after: &str) -> Result<()> {
    // Through a symlink, its target is the file to replace.
    let target = crate::state::home::write_target(path);
    let path = target.as_path();
    if super::read_text(path)?.as_deref() != before {
        return Err(changed(path));
    }
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions());
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Path(dir.to_path_buf(), e))?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.mcpshare-{}.tmp", std::process::id()));
    write_atomic(&tmp, after.as_bytes()).map_err(|e| Error::Path(tmp.clone(), e))?;
    let result = (|| {
        if let Some(m) = mode {
            std::fs::set_permissions(&tmp, m).map_err(|e| Error::Path(tmp.clone(), e))?;
        }
        // Last look before the rename: a client may have saved meanwhile.
        if super::read_text(path)?.as_deref() != before {
            return Err(changed(path));
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::Path(path.to_path_buf(), e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
