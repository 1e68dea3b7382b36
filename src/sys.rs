//! The one module allowed `unsafe`: a `pre_exec` hook for child processes.
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
