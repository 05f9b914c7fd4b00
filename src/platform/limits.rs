//! Resource limits for the children mcpshare starts.

use std::process::Command;

/// Cap the data segment of the process `cmd` starts (and of its children)
/// at `bytes`, by RLIMIT_DATA set between fork and exec.
#[cfg(unix)]
pub fn limit_data(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit is async-signal-safe and `limit` is a plain value
    // copied into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Not enforced here (mcpshare(1), LIMITS).
#[cfg(not(unix))]
pub fn limit_data(_cmd: &mut Command, _bytes: u64) {}

/// Can a child be started in its own systemd user scope, where CPU and
/// memory caps apply? Asked once (`systemd-run --user --scope true`).
pub fn user_scopes() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        cfg!(target_os = "linux")
            && Command::new("systemd-run")
                .args(["--user", "--scope", "--quiet", "--collect", "true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}
