//! The Windows side of the platform, on kernel32 alone (no dependency):
//! liveness, start time and executable through process handles,
//! `TerminateProcess` in place of signals (Windows has no SIGTERM), and a
//! job object that ends every upstream with the daemon. CI only compiles
//! this file (`cargo check --target x86_64-pc-windows-gnu`).

use super::Signal;
use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

type Handle = *mut c_void;
type Bool = i32;

const PROCESS_TERMINATE: u32 = 0x0001;
const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;
const STILL_ACTIVE: u32 = 259;
const ERROR_ACCESS_DENIED: i32 = 5;
/// `JobObjectExtendedLimitInformation` in JOBOBJECTINFOCLASS.
const JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS: i32 = 9;
const JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: u32 = 0x2000;

#[repr(C)]
#[derive(Default)]
struct BasicLimitInformation {
    per_process_user_time_limit: i64,
    per_job_user_time_limit: i64,
    limit_flags: u32,
    minimum_working_set_size: usize,
    maximum_working_set_size: usize,
    active_process_limit: u32,
    affinity: usize,
    priority_class: u32,
    scheduling_class: u32,
}

#[repr(C)]
#[derive(Default)]
struct IoCounters {
    read_operation_count: u64,
    write_operation_count: u64,
    other_operation_count: u64,
    read_transfer_count: u64,
    write_transfer_count: u64,
    other_transfer_count: u64,
}

/// JOBOBJECT_EXTENDED_LIMIT_INFORMATION, field for field.
#[repr(C)]
#[derive(Default)]
struct ExtendedLimitInformation {
    basic_limit_information: BasicLimitInformation,
    io_info: IoCounters,
    process_memory_limit: usize,
    job_memory_limit: usize,
    peak_process_memory_used: usize,
    peak_job_memory_used: usize,
}

// The sizes winnt.h gives; a wrong layout would make SetInformationJobObject fail.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<ExtendedLimitInformation>() == 144);
#[cfg(target_pointer_width = "32")]
const _: () = assert!(std::mem::size_of::<ExtendedLimitInformation>() == 112);

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FileTime {
    low: u32,
    high: u32,
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn OpenProcess(access: u32, inherit: Bool, pid: u32) -> Handle;
    fn GetExitCodeProcess(process: Handle, code: *mut u32) -> Bool;
    fn TerminateProcess(process: Handle, code: u32) -> Bool;
    fn GetProcessTimes(
        process: Handle,
        creation: *mut FileTime,
        exit: *mut FileTime,
        kernel: *mut FileTime,
        user: *mut FileTime,
    ) -> Bool;
    fn QueryFullProcessImageNameW(
        process: Handle,
        flags: u32,
        name: *mut u16,
        size: *mut u32,
    ) -> Bool;
    fn CreateJobObjectW(attributes: *const c_void, name: *const u16) -> Handle;
    fn SetInformationJobObject(job: Handle, class: i32, info: *const c_void, len: u32) -> Bool;
    fn AssignProcessToJobObject(job: Handle, process: Handle) -> Bool;
}

/// A handle to `pid` with `access`, closed on drop.
fn open(pid: u32, access: u32) -> io::Result<OwnedHandle> {
    if pid == 0 {
        return Err(io::Error::other("refusing to open pid 0"));
    }
    // SAFETY: OpenProcess takes plain integers and returns a new handle or null.
    let h = unsafe { OpenProcess(access, 0, pid) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a valid handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// Alive when its exit code is still STILL_ACTIVE (a process that exits
/// with 259 reads as alive), or when we may not open it (someone else's
/// process exists, as EPERM does on unix).
pub fn pid_alive(pid: u32) -> bool {
    match open(pid, PROCESS_QUERY_LIMITED_INFORMATION) {
        Ok(h) => {
            let mut code = 0u32;
            // SAFETY: `h` is open for query and `code` is a local we own.
            let ok = unsafe { GetExitCodeProcess(h.as_raw_handle(), &mut code) } != 0;
            !ok || code == STILL_ACTIVE
        }
        Err(e) => e.raw_os_error() == Some(ERROR_ACCESS_DENIED),
    }
}

/// Windows has no SIGTERM: both signals are `TerminateProcess(pid, 1)`,
/// so a "term" gives the process no chance to clean up.
pub fn signal(pid: u32, _s: Signal) -> io::Result<()> {
    let h = open(pid, PROCESS_TERMINATE)?;
    // SAFETY: `h` is open with PROCESS_TERMINATE.
    if unsafe { TerminateProcess(h.as_raw_handle(), 1) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Windows has no process groups: ends the leader `pgid` only. Its
/// children are in the daemon's job ([`contain_child`]) and end with it.
pub fn signal_group(pgid: u32, s: Signal) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::other("refusing to signal process group <= 1"));
    }
    signal(pgid, s)
}

/// The job every upstream joins. Its handle is never closed: the OS closes
/// it when the daemon exits, and KILL_ON_JOB_CLOSE then ends the members.
static JOB: OnceLock<Result<OwnedHandle, String>> = OnceLock::new();

fn create_job() -> io::Result<OwnedHandle> {
    // SAFETY: null attributes and name ask for an unnamed job with default security.
    let h = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a fresh handle that nothing else owns.
    let job = unsafe { OwnedHandle::from_raw_handle(h) };
    let mut info = ExtendedLimitInformation::default();
    info.basic_limit_information.limit_flags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    let len = u32::try_from(std::mem::size_of_val(&info)).map_err(io::Error::other)?;
    // SAFETY: `info` is a JOBOBJECT_EXTENDED_LIMIT_INFORMATION (layout
    // asserted above), `len` its size, and the job handle is open.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
            (&raw const info).cast(),
            len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(job)
}

/// Put `child` in this process's kill-on-close job (created on first use),
/// so it and the processes it starts die with the daemon.
pub fn contain_child(child: &std::process::Child) -> io::Result<()> {
    let job = JOB
        .get_or_init(|| create_job().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(format!("cannot create a job object: {e}")))?;
    // SAFETY: the job handle lives as long as the process; the child's
    // handle is open while `child` is borrowed.
    if unsafe { AssignProcessToJobObject(job.as_raw_handle(), child.as_raw_handle()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The creation time of `pid` in 100 ns units since 1601 (a FILETIME).
pub fn start_time(pid: u32) -> Option<u64> {
    let h = open(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok()?;
    let mut t = [FileTime::default(); 4];
    let [creation, exit, kernel, user] = &mut t;
    // SAFETY: `h` is open for query and the four FILETIMEs are locals we own.
    let ok = unsafe { GetProcessTimes(h.as_raw_handle(), creation, exit, kernel, user) };
    (ok != 0).then(|| (u64::from(t[0].high) << 32) | u64::from(t[0].low))
}

pub fn exe(pid: u32) -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    let h = open(pid, PROCESS_QUERY_LIMITED_INFORMATION).ok()?;
    let mut buf = vec![0u16; 32_768];
    let mut len = u32::try_from(buf.len()).ok()?;
    // SAFETY: `buf` holds `len` UTF-16 units; the call writes at most that
    // many and stores the count written in `len`.
    let ok =
        unsafe { QueryFullProcessImageNameW(h.as_raw_handle(), 0, buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return None;
    }
    let used = buf.get(..len as usize)?;
    Some(std::ffi::OsString::from_wide(used).into())
}

/// Not told here (it would take a process snapshot): never a zombie.
pub fn is_zombie(_pid: u32) -> bool {
    false
}

/// Not told here: Windows has no process groups, and parents are only in
/// a process snapshot, which mcpshare does not take.
pub fn parent_and_group(_pid: u32) -> Option<(u32, u32)> {
    None
}

/// Windows has no unix sessions.
pub fn session(_pid: u32) -> Option<u32> {
    None
}

/// Not listed here (it would take a process snapshot): doctor then shows
/// no child pids and names no survivors, rather than guessing.
pub fn all_pids() -> Vec<u32> {
    Vec::new()
}

/// Not supported: upstreams are ended by [`signal_group`] and the job.
pub fn child_exited(_pid: u32, _block: bool) -> io::Result<bool> {
    Err(unsupported())
}

fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "not supported on this platform")
}

pub fn detach(_cmd: &mut Command) {}
pub fn default_signals(_cmd: &mut Command) {}
pub fn die_with_parent(_cmd: &mut Command) {}
pub fn stdout_to_stderr() -> io::Result<()> {
    Ok(())
}
/// Without a portable way to tell, never: the log is then not rotated.
pub fn stderr_is(_path: &std::path::Path) -> bool {
    false
}
pub fn redirect_stdout_stderr(_file: &std::fs::File) -> io::Result<()> {
    Err(unsupported())
}
pub fn on_termination(_f: impl FnMut(i32) + Send + 'static) -> io::Result<()> {
    Ok(())
}
pub fn raise_fd_limit() -> Option<u64> {
    None
}
pub fn open_descriptors() -> Option<u64> {
    None
}
/// Handles are not inherited unless asked for on Windows.
pub fn close_inherited() {}
pub fn widen_backlog(_listener: &std::net::TcpListener, _n: i32) -> io::Result<()> {
    Ok(())
}
/// Without poll, the answer is always left to a worker thread.
pub fn readable_before_stdin(_s: &std::net::TcpStream, _t: std::time::Duration) -> bool {
    false
}
pub fn nothing_to_read(s: &std::net::TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let quiet = matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).is_ok() && quiet
}
pub fn uid() -> Option<u32> {
    None
}
pub fn on_network_fs(_path: &std::path::Path) -> Option<bool> {
    None
}

/// std seeds RandomState from the OS generator; fold several fresh ones.
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(chunk.as_ptr() as usize);
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    Ok(())
}

/// Without poll on pipes, nothing can be watched: see the Unix version.
pub struct PipeWatch;

impl PipeWatch {
    pub fn of(_pipe: &std::process::ChildStdout) -> Option<PipeWatch> {
        None
    }
    pub fn drained(&self) -> bool {
        true
    }
}
