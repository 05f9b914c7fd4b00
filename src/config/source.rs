//! `add NAME --source DIR`: find a project's runtime and entry point,
//! install its dependencies into an environment of that server (never the
//! user's global one), and produce the launch of the server entry. Nothing
//! here writes the config: the caller writes the entry only when this
//! succeeded.

use super::{Launch, Runtime};
use crate::error::{ConfigError, Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a dependency install may take before it is stopped.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// How many lines of the installer's stderr a failure shows.
const STDERR_TAIL_LINES: usize = 20;

/// Pause between checks of whether the installer has exited.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// A project ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub runtime: Runtime,
    /// The absolute project directory.
    pub dir: PathBuf,
    pub launch: Launch,
}

/// The runtime of the project in `dir`: a bun lockfile or `bunfig.toml`,
/// then `package.json` (node), then `pyproject.toml` or
/// `requirements.txt` (python).
pub fn detect_runtime(dir: &Path) -> Option<Runtime> {
    let has = |f: &str| dir.join(f).is_file();
    if has("bun.lockb") || has("bun.lock") || has("bunfig.toml") {
        Some(Runtime::Bun)
    } else if has("package.json") {
        Some(Runtime::Node)
    } else if has("pyproject.toml") || has("requirements.txt") {
        Some(Runtime::Python)
    } else {
        None
    }
}

/// The entry point, as the arguments after the interpreter: node and bun
/// take `main`, then `bin` (a string, or the first of an object), then
/// the first of `dist/index.js`, `src/index.js`, `src/index.ts`,
/// `index.js`; python the first of `server.py`, `src/server.py`,
/// `main.py`, `src/main.py`, else `-m server`.
pub fn detect_entry(dir: &Path, runtime: Runtime) -> std::result::Result<Vec<String>, String> {
    let first_file = |names: &[&str]| {
        names
            .iter()
            .find(|n| dir.join(n).is_file())
            .map(|n| dir.join(n).to_string_lossy().into_owned())
    };
    match runtime {
        Runtime::Python => Ok(
            match first_file(&["server.py", "src/server.py", "main.py", "src/main.py"]) {
                Some(f) => vec![f],
                None => vec!["-m".into(), "server".into()],
            },
        ),
        Runtime::Node | Runtime::Bun => {
            let pj = dir.join("package.json");
            let from_package = match std::fs::read_to_string(&pj) {
                Ok(text) => {
                    let v: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| format!("{}: invalid JSON: {e}", pj.display()))?;
                    let bin = match v.get("bin") {
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(serde_json::Value::Object(o)) => {
                            o.values().find_map(|x| x.as_str()).map(str::to_string)
                        }
                        _ => None,
                    };
                    v.get("main")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                        .or(bin)
                }
                Err(_) => None,
            };
            if let Some(rel) = from_package {
                let f = dir.join(&rel);
                if !f.is_file() {
                    return Err(format!(
                        "{} names {rel} as its entry, but {} does not exist (build the project first?)",
                        pj.display(),
                        f.display()
                    ));
                }
                return Ok(vec![f.to_string_lossy().into_owned()]);
            }
            first_file(&["dist/index.js", "src/index.js", "src/index.ts", "index.js"])
                .map(|f| vec![f])
                .ok_or_else(|| {
                    format!(
                        "no entry point: package.json has no \"main\" or \"bin\", and none of \
                         dist/index.js, src/index.js, src/index.ts, index.js exists in {}",
                        dir.display()
                    )
                })
        }
    }
}

/// The python of a virtual environment.
pub fn venv_python(env: &Path) -> PathBuf {
    if cfg!(windows) {
        env.join("Scripts").join("python.exe")
    } else {
        env.join("bin").join("python")
    }
}

/// Detect, install and describe the project in `dir` for server `name`.
/// Python gets a virtual environment at `envs/NAME`; node and bun install
/// into the project's own `node_modules` (node resolves modules from the
/// script's directory, so that is the per-server place).
pub fn prepare(name: &str, dir: &Path, runtime: Option<Runtime>, envs: &Path) -> Result<Prepared> {
    let fail = |message: String, hint: &str| {
        Error::Config(ConfigError {
            path: dir.to_path_buf(),
            server: Some(name.to_string()),
            line: 0,
            column: 0,
            message,
            hint: Some(hint.to_string()),
        })
    };
    let dir = std::fs::canonicalize(dir).map_err(|e| {
        fail(
            format!(
                "cannot use the source directory: {}",
                Error::Path(dir.into(), e)
            ),
            "give an existing project directory",
        )
    })?;
    if !dir.is_dir() {
        return Err(fail(
            "not a directory".into(),
            "give the project's directory",
        ));
    }
    let runtime = match runtime.or_else(|| detect_runtime(&dir)) {
        Some(r) => r,
        None => {
            return Err(fail(
                "no runtime detected: none of bun.lockb, bun.lock, bunfig.toml, package.json, \
                 pyproject.toml, requirements.txt is there"
                    .into(),
                "name it with --runtime node|bun|python, or give the project's top directory",
            ));
        }
    };
    let entry = detect_entry(&dir, runtime).map_err(|m| {
        fail(
            m,
            "set \"main\" in package.json, or add the server with -- COMMAND ARGS",
        )
    })?;
    let (command, steps): (String, Vec<Vec<String>>) = match runtime {
        Runtime::Node => (
            "node".into(),
            if dir.join("package.json").is_file() {
                vec![words(&[
                    "npm",
                    "install",
                    "--omit=dev",
                    "--no-audit",
                    "--no-fund",
                ])]
            } else {
                vec![]
            },
        ),
        Runtime::Bun => (
            "bun".into(),
            vec![words(&["bun", "install", "--production"])],
        ),
        Runtime::Python => {
            let env = envs.join(name);
            let python = venv_python(&env);
            let py = python.to_string_lossy().into_owned();
            let mut steps = vec![vec![
                python_launcher(),
                "-m".into(),
                "venv".into(),
                env.to_string_lossy().into_owned(),
            ]];
            if dir.join("requirements.txt").is_file() {
                steps.push(vec![
                    py.clone(),
                    "-m".into(),
                    "pip".into(),
                    "install".into(),
                    "--no-cache-dir".into(),
                    "-r".into(),
                    "requirements.txt".into(),
                ]);
            } else if dir.join("pyproject.toml").is_file() {
                steps.push(vec![
                    py.clone(),
                    "-m".into(),
                    "pip".into(),
                    "install".into(),
                    "--no-cache-dir".into(),
                    ".".into(),
                ]);
            }
            (py, steps)
        }
    };
    if runtime == Runtime::Python {
        std::fs::create_dir_all(envs).map_err(|e| {
            fail(
                format!("cannot create {}: {e}", envs.display()),
                "check the permissions of the config directory",
            )
        })?;
    }
    for step in &steps {
        run_step(&dir, step, INSTALL_TIMEOUT).map_err(|m| {
            fail(
                m,
                "fix the project (or the network) and run the same 'mcpshare add' again; the config was not changed",
            )
        })?;
    }
    Ok(Prepared {
        runtime,
        launch: Launch::Stdio {
            command,
            args: entry,
            env: BTreeMap::new(),
            cwd: Some(dir.clone()),
        },
        dir,
    })
}

/// The file that says server `name` is being installed by `add --source`:
/// `installing/NAME` under the mcpshare home, holding the installer's pid
/// and start stamp. `list` and `status` show such a server as `installing`.
pub fn installing_marker(home: &Path, name: &str) -> PathBuf {
    home.join("installing").join(name)
}

/// The servers being installed now, each with its installer's pid. A
/// marker whose process is gone (killed mid-install) is removed.
pub fn installing(home: &Path) -> BTreeMap<String, u32> {
    let mut found = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(home.join("installing")) else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // `.NAME.PID.tmp` is a marker being written.
        if name.starts_with('.') || super::check_name(&name).is_err() {
            continue;
        }
        match std::fs::read_to_string(entry.path()) {
            Ok(text) => match live_installer(&text) {
                Some(pid) => {
                    found.insert(name, pid);
                }
                None => {
                    let _ = std::fs::remove_file(entry.path());
                }
            },
            Err(_) => continue,
        }
    }
    found
}

/// The pid a marker names, if that very process still runs (a reused pid
/// has another start stamp).
fn live_installer(text: &str) -> Option<u32> {
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    // 0: the platform gave no start stamp.
    let stamp: Option<u64> = words
        .next()
        .and_then(|w| w.parse().ok())
        .filter(|s| *s != 0);
    let same = match (stamp, crate::platform::start_time(pid)) {
        (Some(ours), Some(now)) => ours == now,
        _ => true,
    };
    (crate::platform::pid_alive(pid) && same).then_some(pid)
}

/// The marker of one install, removed when dropped: on success, on an
/// error, and on a panic alike.
#[derive(Debug)]
pub struct Installing {
    path: PathBuf,
}

impl Installing {
    /// Mark server `name` as being installed by this process; refused
    /// while another live process installs the same name.
    pub fn begin(home: &Path, name: &str) -> Result<Installing> {
        if let Some(pid) = installing(home).get(name) {
            return Err(Error::Config(ConfigError {
                path: installing_marker(home, name),
                server: Some(name.to_string()),
                line: 0,
                column: 0,
                message: format!("is being installed by pid {pid}"),
                hint: Some("wait for that 'mcpshare add' to finish".into()),
            }));
        }
        let path = installing_marker(home, name);
        let dir = home.join("installing");
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&dir).map_err(|e| Error::Path(dir.clone(), e))?;
        let pid = std::process::id();
        let stamp = crate::platform::start_time(pid).unwrap_or(0);
        crate::state::home::write_atomic(&path, format!("{pid} {stamp}\n").as_bytes())
            .map_err(|e| Error::Path(path.clone(), e))?;
        Ok(Installing { path })
    }
}

impl Drop for Installing {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

fn python_launcher() -> String {
    if cfg!(windows) { "python" } else { "python3" }.to_string()
}

/// Run one install step in `dir`, output to temp files (a full pipe would
/// block the installer); on failure the exit status and the stderr tail.
fn run_step(dir: &Path, argv: &[String], timeout: Duration) -> std::result::Result<(), String> {
    let shown = argv.join(" ");
    static STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!("mcpshare-install-{}-{n}.log", std::process::id()));
    // A new private file: never one another user planted in the shared
    // temp directory.
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let err_file = opts
        .open(&log)
        .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(err_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(err_file);
    crate::platform::detach(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&log);
            return Err(format!(
                "cannot run {}: {}",
                argv[0],
                Error::io("spawn", e)
                    .to_string()
                    .trim_start_matches("spawn: ")
            ));
        }
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if Instant::now() >= deadline => {
                // The installer leads its own group: stop its children too.
                let _ = crate::platform::signal_group(child.id(), crate::platform::Signal::Kill);
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "'{shown}' did not finish within {}s and was stopped",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(POLL_EVERY),
            Err(e) => break Err(format!("waiting for '{shown}': {e}")),
        }
    };
    let tail = crate::state::home::tail(&log, STDERR_TAIL_LINES);
    let _ = std::fs::remove_file(&log);
    let with_tail = |m: String| {
        if tail.is_empty() {
            m
        } else {
            format!("{m}\nlast lines of its output:\n{tail}")
        }
    };
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(with_tail(format!(
            "'{shown}' failed ({})",
            match s.code() {
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_string(),
            }
        ))),
        Err(m) => Err(with_tail(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mcpshare-src-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (f, body) in files {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn runtimes_are_detected_in_order() {
        for (files, want) in [
            (vec!["package.json", "bun.lockb"], Some(Runtime::Bun)),
            (vec!["package.json", "bunfig.toml"], Some(Runtime::Bun)),
            (
                vec!["package.json", "requirements.txt"],
                Some(Runtime::Node),
            ),
            (vec!["pyproject.toml"], Some(Runtime::Python)),
            (vec!["requirements.txt"], Some(Runtime::Python)),
            (vec!["README.md"], None),
        ] {
            let d = project(
                &files.join("+"),
                &files.iter().map(|f| (*f, "")).collect::<Vec<_>>(),
            );
            assert_eq!(detect_runtime(&d), want, "{files:?}");
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn node_entries_main_then_bin_then_usual_files() {
        let d = project(
            "main",
            &[
                ("package.json", r#"{"main": "lib/s.js", "bin": "b.js"}"#),
                ("lib/s.js", ""),
                ("b.js", ""),
            ],
        );
        assert_eq!(
            detect_entry(&d, Runtime::Node).unwrap(),
            [d.join("lib/s.js").to_string_lossy()]
        );
        std::fs::remove_dir_all(d).unwrap();
        let d = project(
            "bin",
            &[
                ("package.json", r#"{"bin": {"x": "cli.js"}}"#),
                ("cli.js", ""),
            ],
        );
        assert_eq!(
            detect_entry(&d, Runtime::Node).unwrap(),
            [d.join("cli.js").to_string_lossy()]
        );
        std::fs::remove_dir_all(d).unwrap();
        let d = project(
            "usual",
            &[
                ("package.json", "{}"),
                ("src/index.ts", ""),
                ("index.js", ""),
            ],
        );
        assert_eq!(
            detect_entry(&d, Runtime::Bun).unwrap(),
            [d.join("src/index.ts").to_string_lossy()]
        );
        std::fs::remove_dir_all(d).unwrap();
        let d = project("missing", &[("package.json", r#"{"main": "dist/x.js"}"#)]);
        assert!(
            detect_entry(&d, Runtime::Node)
                .unwrap_err()
                .contains("dist/x.js")
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn python_entries_scripts_then_module() {
        let d = project(
            "py",
            &[
                ("requirements.txt", ""),
                ("src/main.py", ""),
                ("main.py", ""),
            ],
        );
        assert_eq!(
            detect_entry(&d, Runtime::Python).unwrap(),
            [d.join("main.py").to_string_lossy()]
        );
        std::fs::remove_dir_all(d).unwrap();
        let d = project("pym", &[("pyproject.toml", "")]);
        assert_eq!(detect_entry(&d, Runtime::Python).unwrap(), ["-m", "server"]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_failing_step_reports_its_status_and_stderr_tail() {
        let d = project("step", &[]);
        let argv = words(&["sh", "-c", "echo one >&2; echo two >&2; exit 7"]);
        let e = run_step(&d, &argv, Duration::from_secs(20)).unwrap_err();
        assert!(
            e.contains("exit status 7") && e.ends_with("one\ntwo"),
            "{e}"
        );
        let e = run_step(
            &d,
            &words(&["sh", "-c", "sleep 30"]),
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.contains("did not finish within"), "{e}");
        let e = run_step(
            &d,
            &words(&["no-such-installer-mcpshare"]),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.contains("cannot run no-such-installer-mcpshare"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_install_marker_lives_while_its_process_does() {
        let home = project("marker-home", &[]);
        {
            let _mark = Installing::begin(&home, "memory").unwrap();
            let live = installing(&home);
            assert_eq!(live.get("memory"), Some(&std::process::id()));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let md = std::fs::metadata(installing_marker(&home, "memory")).unwrap();
                assert_eq!(md.permissions().mode() & 0o777, 0o600);
            }
            // A second install of the same name is refused while this one runs.
            assert!(Installing::begin(&home, "memory").is_err());
        }
        assert!(installing(&home).is_empty(), "dropped marker removed");
        assert!(!installing_marker(&home, "memory").exists());
        // A dead pid's marker (and one of a reused pid) is ignored and removed.
        let mut child = Command::new(if cfg!(windows) { "cmd" } else { "true" })
            .args(if cfg!(windows) {
                &["/c", "exit"][..]
            } else {
                &[][..]
            })
            .spawn()
            .unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = installing_marker(&home, "gone");
        std::fs::write(&stale, format!("{dead} 0\n")).unwrap();
        let reused = installing_marker(&home, "reused");
        std::fs::write(&reused, format!("{} 1\n", std::process::id())).unwrap();
        let live = installing(&home);
        assert!(!live.contains_key("gone") && !stale.exists(), "{live:?}");
        if crate::platform::start_time(std::process::id()).is_some() {
            assert!(!live.contains_key("reused") && !reused.exists(), "{live:?}");
        }
        std::fs::remove_dir_all(home).unwrap();
    }
}
