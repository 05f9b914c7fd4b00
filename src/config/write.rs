//! Every write of the config file: under the sibling lock, on the bytes
//! just read, validated, temp file + rename, and again when a writer that
//! takes no lock (a person's editor) saved in between. Never writes a file
//! it could not parse, unless the caller saw that text and replaces it.

use super::{parse, problem, read};
use crate::error::{Error, Result};
use crate::state::lock;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a write waits for another mcpshare writing the file.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a write re-applies its edit when the file changed
/// under it (a hand edit that does not take our lock).
const WRITE_ATTEMPTS: usize = 5;

/// The sibling lock file every writer of `path` holds.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("config");
    path.with_file_name(format!("{name}.lock"))
}

/// What a write saw and did.
#[derive(Debug)]
pub struct Written {
    /// The text before the edit (empty for a new file).
    pub before: String,
    pub after: String,
}

/// Apply `change` to the config at `path` and write the result: hold the
/// sibling lock, read the current text, apply, validate, write a private
/// temp file and rename it over the file. The edit runs on the latest
/// bytes, so two writers both land. When the file changed between the
/// read and the rename (a hand edit, which takes no lock), the edit is
/// applied again to the new text. With `expected`, the text must still be
/// what the caller read earlier (for `edit`), else nothing is written.
/// An invalid file is never overwritten unless `expected` says the
/// caller saw it and replaces it whole.
/// The directory of the config file `path`, created private (0700) when
/// it does not exist yet.
pub fn private_dir_of(path: &Path) -> Result<&Path> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| Error::Path(dir.to_path_buf(), e))?;
    }
    Ok(dir)
}

pub fn update(
    path: &Path,
    expected: Option<&str>,
    mut change: impl FnMut(&str) -> Result<String>,
) -> Result<Written> {
    private_dir_of(path)?;
    let lock_file = lock_path(path);
    let _held = lock::wait_exclusive(&lock_file, Instant::now() + LOCK_TIMEOUT)
        .map_err(|e| Error::Path(lock_file.clone(), e))?
        .ok_or_else(|| {
            Error::Config(problem(
                path,
                None,
                &format!(
                    "another mcpshare has held {} for {}s",
                    lock_file.display(),
                    LOCK_TIMEOUT.as_secs()
                ),
                Some("try again; if it persists, look for a stuck 'mcpshare edit'"),
            ))
        })?;
    for _ in 0..WRITE_ATTEMPTS {
        let before = read(path)?.unwrap_or_default();
        if let Some(seen) = expected {
            if before != seen {
                return Err(changed(path));
            }
        } else {
            parse(path, &before)?;
        }
        let after = change(&before)?;
        parse(path, &after)?;
        // A writer that ignores our lock (an editor) may have saved since
        // the read: apply the change again to its text instead of losing it.
        if read(path)?.unwrap_or_default() != before {
            if expected.is_some() {
                return Err(changed(path));
            }
            continue;
        }
        crate::state::home::write_atomic(path, after.as_bytes())
            .map_err(|e| Error::Path(path.to_path_buf(), e))?;
        return Ok(Written { before, after });
    }
    Err(changed(path))
}

fn changed(path: &Path) -> Error {
    Error::Config(problem(
        path,
        None,
        "the file changed while mcpshare was writing it; nothing was written",
        Some("look at the file and run the command again"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::edit::{self, New};
    use crate::config::load;
    use crate::error::ConfigError;

    fn temp_config(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mcpshare-cfg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.join("sub").join("config.json")
    }

    #[test]
    fn a_hand_edit_between_read_and_rename_is_kept() {
        let path = temp_config("race");
        let mut calls = 0;
        update(&path, None, |t| {
            edit::put_server(t, "a", &New::Value(serde_json::json!({"command": "x"})))
                .map_err(Error::Usage)
        })
        .unwrap();
        let w = update(&path, None, |text| {
            calls += 1;
            if calls == 1 {
                // A hand edit lands after our read, before our rename.
                let hand = edit::put_server(
                    text,
                    "hand",
                    &New::Value(serde_json::json!({"command": "h"})),
                )
                .unwrap();
                std::fs::write(&path, hand).unwrap();
            }
            edit::put_server(text, "b", &New::Value(serde_json::json!({"command": "y"})))
                .map_err(Error::Usage)
        })
        .unwrap();
        assert_eq!(calls, 2, "the edit is applied again to the new text");
        let names: Vec<String> = load(&path)
            .unwrap()
            .servers
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["a", "hand", "b"]);
        assert!(w.before.contains("hand"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn an_expected_text_that_changed_writes_nothing() {
        let path = temp_config("expected");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"mcpServers\": {}, \"hand\": 1}").unwrap();
        let e = update(&path, Some("{\"mcpServers\": {}}"), |_| Ok("{}".into())).unwrap_err();
        assert!(e.to_string().contains("changed while"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"mcpServers\": {}, \"hand\": 1}"
        );
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn an_invalid_file_or_an_invalid_result_is_never_written() {
        let path = temp_config("invalid");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"mcpServers\": {").unwrap();
        let e = update(&path, None, |t| Ok(t.to_string() + "}}")).unwrap_err();
        assert!(
            matches!(e, Error::Config(ConfigError { line: 1, .. })),
            "{e}"
        );
        std::fs::write(&path, "{}").unwrap();
        let e = update(&path, None, |_| Ok("{\"mcpServers\": {\"A\": {}}}".into())).unwrap_err();
        assert!(e.to_string().contains("'A'"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }
}
