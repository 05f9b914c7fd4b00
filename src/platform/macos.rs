//! What macOS says of a process, from libproc (`proc_pidinfo`,
//! `proc_pidpath`, `proc_listallpids`) and `getsid`. Reads only. CI can
//! only compile this file (`cargo check --target x86_64-apple-darwin`);
//! the pure parts live in the parent module, where they are tested.

use std::path::PathBuf;

fn bsd_info(pid: u32) -> Option<libc::proc_bsdinfo> {
    let p = libc::c_int::try_from(pid).ok().filter(|p| *p > 0)?;
    let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
    // SAFETY: proc_bsdinfo is plain old data, for which all zeroes is valid.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`, a local
    // of exactly that size.
    let n =
        unsafe { libc::proc_pidinfo(p, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size) };
    (n == size).then_some(info)
}

pub fn is_zombie(pid: u32) -> bool {
    bsd_info(pid).is_some_and(|i| i.pbi_status == libc::SZOMB)
}

/// Microseconds since the Unix epoch (`pbi_start_tvsec`, `pbi_start_tvusec`).
pub fn start_time(pid: u32) -> Option<u64> {
    let i = bsd_info(pid)?;
    Some(super::micros_since_epoch(
        i.pbi_start_tvsec,
        i.pbi_start_tvusec,
    ))
}

pub fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    let i = bsd_info(pid)?;
    Some((i.pbi_ppid, i.pbi_pgid))
}

pub fn session(pid: u32) -> Option<u32> {
    let p = libc::pid_t::try_from(pid).ok().filter(|p| *p > 0)?;
    // SAFETY: getsid takes a plain pid and touches no memory of ours.
    let s = unsafe { libc::getsid(p) };
    u32::try_from(s).ok()
}

pub fn all_pids() -> Vec<u32> {
    // SAFETY: a null buffer of size 0 only asks how many pids there are.
    let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    let Ok(n) = usize::try_from(n) else {
        return Vec::new();
    };
    // Room for processes started between the two calls.
    let mut buf: Vec<libc::c_int> = vec![0; n + 64];
    let bytes =
        libc::c_int::try_from(std::mem::size_of_val(buf.as_slice())).unwrap_or(libc::c_int::MAX);
    // SAFETY: `buf` is ours and `bytes` is its size in bytes (or less).
    let got = unsafe { libc::proc_listallpids(buf.as_mut_ptr().cast(), bytes) };
    super::listed_pids(&buf, got)
}

/// `proc_pidpath`: the path the kernel holds for the process's executable.
pub fn exe(pid: u32) -> Option<PathBuf> {
    let p = libc::c_int::try_from(pid).ok().filter(|p| *p > 0)?;
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    let len = u32::try_from(buf.len()).ok()?;
    // SAFETY: proc_pidpath writes at most `len` bytes into `buf`, which we own.
    let n = unsafe { libc::proc_pidpath(p, buf.as_mut_ptr().cast(), len) };
    super::path_from_c_buf(&buf, n)
}
