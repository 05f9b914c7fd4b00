//! The home directory: where it is, that it is private to this user, and
//! the name of every file mcpshare keeps there. Nothing outside this module
//! builds a path inside the home by hand. Only `run` and `daemon` create or
//! tighten it; the commands that read (status, logs, doctor) never change it.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Home {
    dir: PathBuf,
}

/// What is found where the home should be (see [`Home::inspect`]).
#[derive(Debug)]
pub enum Found {
    /// `MCPSHARE_HOME` is a relative path; the absolute one it means here.
    Relative {
        given: PathBuf,
        absolute: PathBuf,
    },
    /// Nothing there yet: the first client creates it.
    Missing(PathBuf),
    NotDirectory(PathBuf),
    Foreign {
        dir: PathBuf,
        uid: u32,
        ours: u32,
    },
    /// Readable by others (it holds the bearer token): `mode` is its mode.
    Loose {
        home: Home,
        mode: u32,
    },
    Private(Home),
}

impl Home {
    /// `$MCPSHARE_HOME`, else `$XDG_STATE_HOME/mcpshare`, else
    /// `$HOME/.local/state/mcpshare`. Created 0700 if missing, tightened
    /// to 0700 if others may read it: for `run` and `daemon` only.
    pub fn open() -> Result<Home> {
        Home::at(&locate()?)
    }

    /// The home as it is, for commands that only read: nothing is created
    /// or changed. A missing home is returned as it would be (no daemon
    /// runs there).
    pub fn existing() -> Result<Home> {
        match Home::inspect()? {
            Found::Relative { given, absolute } => Err(relative(&given, &absolute)),
            Found::Missing(dir) => Ok(Home { dir }),
            Found::NotDirectory(dir) => Err(Error::UnsafeHome(dir, "not a directory".into())),
            Found::Foreign { dir, uid, ours } => Err(Error::UnsafeHome(dir, foreign(uid, ours))),
            Found::Loose { home, .. } | Found::Private(home) => Ok(home),
        }
    }

    /// Look at the home without touching it.
    pub fn inspect() -> Result<Found> {
        let given = given_dir()?;
        if given.is_relative() {
            let absolute = std::env::current_dir()
                .map_err(|e| Error::io("cannot read the working directory", e))?
                .join(&given);
            return Ok(Found::Relative { given, absolute });
        }
        let md = match std::fs::metadata(&given) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing(given)),
            Err(e) => return Err(Error::Path(given, e)),
        };
        if !md.is_dir() {
            return Ok(Found::NotDirectory(given));
        }
        let dir = given.canonicalize().map_err(|e| Error::Path(given, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if let Some(ours) = crate::platform::uid()
                && md.uid() != ours
            {
                return Ok(Found::Foreign {
                    dir,
                    uid: md.uid(),
                    ours,
                });
            }
            if md.mode() & 0o077 != 0 {
                return Ok(Found::Loose {
                    home: Home { dir },
                    mode: md.mode() & 0o7777,
                });
            }
        }
        Ok(Found::Private(Home { dir }))
    }

    /// Use (and create) `dir` as the home, checking owner and mode.
    pub fn at(dir: &Path) -> Result<Home> {
        if dir.is_relative() {
            let absolute = std::env::current_dir().unwrap_or_default().join(dir);
            return Err(relative(dir, &absolute));
        }
        if std::fs::metadata(dir).is_ok_and(|md| !md.is_dir()) {
            return Err(Error::UnsafeHome(dir.into(), "not a directory".into()));
        }
        create_private_dir(dir)?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::Path(dir.to_path_buf(), e))?;
        check_private(&dir)?;
        let home = Home { dir };
        create_private_dir(&home.logs_dir())?;
        create_private_dir(&home.processes_dir())?;
        Ok(home)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn daemon_lock(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }
    pub fn start_lock(&self) -> PathBuf {
        self.dir.join("start.lock")
    }
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }
    pub fn daemon_log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn processes_dir(&self) -> PathBuf {
        self.dir.join("processes")
    }
    /// What `connect` wrote to each client's file, and its backups.
    pub fn clients_dir(&self) -> PathBuf {
        self.dir.join("clients")
    }
    pub fn upstream_log(&self, id: &str) -> PathBuf {
        self.logs_dir().join(format!("{id}.log"))
    }
}

/// The home the environment names, as given.
fn given_dir() -> Result<PathBuf> {
    match std::env::var_os("MCPSHARE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => Ok(PathBuf::from(d)),
        None => default_dir(),
    }
}

/// The environment's home, refused when relative.
pub fn locate() -> Result<PathBuf> {
    let dir = given_dir()?;
    if dir.is_relative() {
        let absolute = std::env::current_dir().unwrap_or_default().join(&dir);
        return Err(relative(&dir, &absolute));
    }
    Ok(dir)
}

fn relative(given: &Path, absolute: &Path) -> Error {
    Error::UnsafeHome(
        given.into(),
        format!(
            "MCPSHARE_HOME is a relative path: each client's working directory would get a \
             daemon of its own; set MCPSHARE_HOME={} (an absolute path)",
            absolute.display()
        ),
    )
}

fn foreign(uid: u32, ours: u32) -> String {
    format!("owned by uid {uid}, not by this user (uid {ours})")
}

fn default_dir() -> Result<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(state).join("mcpshare"));
    }
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Usage("neither MCPSHARE_HOME nor HOME is set".into()))?;
    Ok(PathBuf::from(home)
        .join(".local")
        .join("state")
        .join("mcpshare"))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| Error::Path(dir.to_path_buf(), e))
}

/// The home must belong to us; a group- or world-accessible one is
/// tightened to 0700 (it holds the bearer token).
#[cfg(unix)]
fn check_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = std::fs::metadata(dir).map_err(|e| Error::Path(dir.to_path_buf(), e))?;
    if !md.is_dir() {
        return Err(Error::UnsafeHome(dir.into(), "not a directory".into()));
    }
    if let Some(uid) = crate::platform::uid()
        && md.uid() != uid
    {
        return Err(Error::UnsafeHome(dir.into(), foreign(md.uid(), uid)));
    }
    if md.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::Path(dir.to_path_buf(), e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> Result<()> {
    Ok(())
}

/// The file a write to `path` is meant for: through a symlink (a config
/// kept in a dotfiles repository, say), its target, so that the rename
/// replaces that file and not the link.
pub fn write_target(path: &Path) -> std::path::PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Write `bytes` to `path` atomically: a private temp file in the same
/// directory, fsync, rename over the target (a symlink's target, see
/// [`write_target`]), fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let target = write_target(path);
    let path = target.as_path();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A temp file of [`write_atomic`] older than this is left over even if a
/// process with its pid runs: a write takes milliseconds, and the pid may
/// have been reused.
pub const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The writer's pid in a temp file name of [`write_atomic`]: `.NAME.PID.tmp`.
fn temp_writer(file_name: &str) -> Option<u32> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    inner.rsplit_once('.')?.1.parse().ok()
}

/// Remove the temp files [`write_atomic`] left in `dir` (a writer that
/// died between write and rename): those whose writer is gone, or older
/// than [`STALE_TEMP_AGE`]; never this process's own. The paths removed.
pub fn sweep_temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(temp_writer) else {
            continue;
        };
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMP_AGE);
        let stale = pid != me && (old || !crate::platform::pid_alive(pid));
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed.sort();
    removed
}

/// The last `n` lines of a text file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_write_through_a_symlink_replaces_its_target() {
        let dir = std::env::temp_dir().join(format!("mcpshare-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dotfiles")).unwrap();
        let real = dir.join("dotfiles").join("mcp.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.join("mcp.json");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &link).unwrap();
        #[cfg(unix)]
        {
            super::write_atomic(&link, b"new").unwrap();
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
            assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn temp_file_names_name_their_writer() {
        assert_eq!(super::temp_writer(".daemon.json.4242.tmp"), Some(4242));
        assert_eq!(super::temp_writer(".4242.json.17.tmp"), Some(17));
        assert_eq!(super::temp_writer("daemon.json.4242.tmp"), None);
        assert_eq!(super::temp_writer(".daemon.json.tmp"), None);
        assert_eq!(super::temp_writer(".x.json.12.tmp.bak"), None);
    }
}
