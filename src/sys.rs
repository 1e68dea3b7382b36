//! The one module allowed `unsafe`: a `pre_exec` hook for child processes, glibc's
//! `malloc_trim`, the default SIGPIPE for one-shot commands, a memory map of media files and
//! one SQLite connection setting.
//!
//! Children are put in their own process group (done safely by `Command::process_group`) and
//! asked to die with their parent: `PR_SET_PDEATHSIG` makes the kernel SIGKILL the child when
//! the thread that forked it exits, so a `kill -9` of the service leaves no yt-dlp or ffmpeg
//! behind (THREATS SUB-05). Children are spawned from tokio's worker threads, which live as
//! long as the runtime, so the signal fires when the process goes, not earlier. Never spawn a
//! tool from `spawn_blocking`: blocking-pool threads exit after being idle for a while, and
//! the kernel would then kill the tool with them.
#![allow(unsafe_code)]

use nix::sys::signal::Signal;
use tokio::process::Command;

/// Arranges for the child of `command` to be SIGKILLed if this process dies.
pub fn kill_child_with_parent(command: &mut Command) {
    // Taken before the fork: in the child, a different parent means ours already died.
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed. It calls prctl(2) and getppid(2), both async-signal-safe system
    // calls, reads a copied integer, touches no locks and allocates nothing (errors are built
    // from raw errno values, which does not allocate).
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))?;
            // The parent may have died between fork and prctl; then nobody will signal us.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Lets a command that prints die quietly when its reader goes (`prsnl export | head`), as
/// Unix tools do: Rust ignores SIGPIPE, so a print to a closed pipe fails and `println!`
/// panics. Only for the one-shot commands: the service keeps ignoring it (its sockets and its
/// tools' pipes report a closed peer as an error it handles).
pub fn die_quietly_on_closed_stdout() {
    // SAFETY: installs the default disposition for SIGPIPE before any thread is started; no
    // handler function is involved.
    unsafe {
        let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
}

/// Caps glibc's malloc arenas at `max` unless the operator chose with `MALLOC_ARENA_MAX`.
/// glibc gives a thread that meets a busy arena a new one, up to eight per core, and every
/// arena keeps its own free pages: with tokio's blocking pool growing under load, private
/// memory rose with the thread count (bench/soak: 19 → 23 threads, +7 MiB) although nothing
/// was leaking. Call before any thread is started.
pub fn cap_heap_arenas(max: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets an allocator parameter; it is called before the runtime
        // starts its threads.
        unsafe {
            nix::libc::mallopt(nix::libc::M_ARENA_MAX, max);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = max;
}

/// Hands the heap's free pages back to the kernel; true if any were. glibc keeps memory freed
/// by a thread in that thread's arena, and with tokio's blocking pool coming and going under
/// load the arenas hold several MiB of free, fragmented pages that only a trim returns
/// (measured in `bench/soak`: 6 MiB of a 33 MiB private footprint after ten minutes). A no-op
/// on other C libraries.
pub fn release_free_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes the allocator's own locks, touches only free chunks and
        // may be called from any thread at any time.
        unsafe { nix::libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Whether SQLite plans each statement once, whatever values are bound to it
/// (`SQLITE_DBCONFIG_ENABLE_QPSG`, the query planner stability guarantee), after turning it
/// on or off when `change` says so.
///
/// Without it, SQLite lets the values bound to some parameters steer the plan (a `LIMIT $n`,
/// a `LIKE $n` pattern, a parameter compared with a partial index's condition) and so marks
/// such a statement stale whenever that parameter is bound again: every search, listing and
/// job claim was parsed and planned anew on each run, although sqlx keeps it prepared
/// (perf: `sqlite3Reprepare` under `sqlite3_step`; a search finding nothing took 0.9 ms, 0.35
/// with it on). Our statements do not need value-specific plans: their limits are small and
/// no index of ours is chosen by a bound value.
pub fn sqlite_stable_plans(
    db: std::ptr::NonNull<libsqlite3_sys::sqlite3>,
    change: Option<bool>,
) -> Result<bool, i32> {
    use std::ffi::c_int;
    let request: c_int = match change {
        Some(on) => c_int::from(on),
        None => -1, // leave it, just report it
    };
    let mut now: c_int = -1;
    // SAFETY: `db` is a live connection handle that sqlx has locked for the caller (no other
    // thread uses it during the call). SQLITE_DBCONFIG_ENABLE_QPSG takes exactly an int (1 on,
    // 0 off, negative: unchanged) and a pointer to an int that receives the setting; `now`
    // lives across the call.
    let code = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db.as_ptr(),
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            request,
            &mut now as *mut c_int,
        )
    };
    if code == libsqlite3_sys::SQLITE_OK {
        Ok(now == 1)
    } else {
        Err(code)
    }
}

/// A read-only memory map of a completed media file, for serving it without copies through
/// userspace buffers (the stream benchmark measures the gain over reading in chunks).
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl MappedFile {
    /// Maps `file`, which must be non-empty (an empty mapping is an error for mmap(2)).
    pub fn map(file: &std::fs::File) -> std::io::Result<Self> {
        // SAFETY: a mapping is only sound while nobody truncates or rewrites the file, since a
        // read past a truncated end raises SIGBUS and a rewrite changes bytes under a `&[u8]`.
        // Only completed media files are mapped, and those are immutable by construction:
        // they are written in a work directory and renamed into place once, never opened for
        // writing again; deleting one unlinks it, which keeps existing mappings valid. This
        // binds operators too: files under media_root must never be truncated in place
        // (ARCHITECTURE.md says so); replacing one by rename is safe.
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        Ok(Self { map })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn private_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Freed memory that free() cannot give back (a live block above it pins the heap's top)
    /// stays private until a trim hands the free pages back.
    #[test]
    fn a_trim_returns_free_pages_that_free_kept() {
        // On a thread of its own, so its arena holds nothing of the other tests.
        std::thread::spawn(|| {
            let mut blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|i| vec![i as u8; 1024]).collect();
            let pin = vec![1u8; 1024];
            let before_free = private_kib();
            blocks.clear();
            blocks.shrink_to_fit();
            let kept = private_kib();
            assert!(
                kept + 16 * 1024 > before_free,
                "free() already returned the memory ({before_free} → {kept} KiB): nothing to test"
            );
            assert!(release_free_heap(), "malloc_trim found nothing to release");
            let trimmed = private_kib();
            assert!(
                trimmed + 32 * 1024 < kept,
                "a trim returned too little: {kept} → {trimmed} KiB"
            );
            drop(pin);
        })
        .join()
        .unwrap();
    }
}
