//! The one way this service runs an external tool (yt-dlp, ffprobe, ffmpeg).
//!
//! Every child gets: no shell, an explicit argv, a scrubbed environment, its own process group
//! (so grandchildren are reached too), death with the parent, a wall-clock timeout that sends
//! SIGTERM then SIGKILL to the group, and a guard that kills the group when the owner drops
//! it — an aborted task or a crashed actor never leaves a process running.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::domain::{ErrorCode, JobError};

/// How long a group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Most bytes of stdout kept by [`Tool::run`]; ffprobe JSON is a few KiB.
const MAX_STDOUT: usize = 8 * 1024 * 1024;

/// Bytes of stderr kept (the tail), for error classification and messages.
pub const STDERR_TAIL: usize = 64 * 1024;

/// A command line to run.
#[derive(Debug, Clone)]
pub struct Tool {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    home: Option<PathBuf>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} ran longer than {timeout:?} and was stopped")]
    Timeout { program: String, timeout: Duration },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("I/O error talking to {program}: {source}")]
    Io {
        program: String,
        source: std::io::Error,
    },
}

impl ToolError {
    /// The stable code of this failure as a job error. A caller that reads the tool's
    /// stderr (ffmpeg's "Invalid data found", ffprobe's refusal) may know better for `Failed`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::Spawn { .. } | Self::Failed { .. } | Self::Io { .. } => {
                ErrorCode::ProcessingFailed
            }
        }
    }
}

impl From<ToolError> for JobError {
    fn from(error: ToolError) -> Self {
        JobError::new(error.code(), error.to_string())
    }
}

/// What a finished tool printed.
#[derive(Debug)]
pub struct ToolOutput {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Tool {
    pub fn new(program: impl AsRef<Path>, timeout: Duration) -> Self {
        Self {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            cwd: None,
            home: None,
            timeout,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs in `dir`, which is also the child's `HOME` (so no user config is found there).
    pub fn in_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self.home = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn argv(&self) -> &[OsString] {
        &self.args
    }

    pub fn program_name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // The environment is rebuilt from scratch: only what tools need to start. PATH finds
        // the interpreter of a pip-installed yt-dlp; a private HOME hides user config files.
        for key in [
            "PATH",
            "LANG",
            "LC_ALL",
            "TZ",
            "PYTHONPATH",
            "PYENV_ROOT",
            "PYENV_VERSION",
        ] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        if std::env::var_os("LANG").is_none() {
            command.env("LANG", "C.UTF-8");
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        if let Some(home) = &self.home {
            command
                .env("HOME", home)
                .env("XDG_CONFIG_HOME", home)
                .env("XDG_CACHE_HOME", home);
        }
        crate::sys::kill_child_with_parent(&mut command);
        command
    }

    /// Starts the tool; the caller reads its output and waits.
    pub fn spawn(&self) -> Result<Running, ToolError> {
        let mut child = self.command().spawn().map_err(|source| ToolError::Spawn {
            program: self.program_name(),
            source,
        })?;
        let group = child.id().map(|pid| ProcessGroup {
            pgid: Pid::from_raw(pid as i32),
        });
        Ok(Running {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            group,
            program: self.program_name(),
        })
    }

    /// Runs the tool to its end and returns its output; a non-zero exit is an error.
    pub async fn run(&self) -> Result<ToolOutput, ToolError> {
        let mut running = self.spawn()?;
        let program = self.program_name();
        let stdout = running.stdout.take().expect("piped");
        let stderr = running.stderr.take().expect("piped");
        let work = async {
            let (out, err, status) = tokio::join!(
                read_capped(stdout, MAX_STDOUT),
                read_tail(stderr, STDERR_TAIL),
                running.child.wait()
            );
            let io = |source| ToolError::Io {
                program: program.clone(),
                source,
            };
            Ok::<_, ToolError>((out.map_err(io)?, err.map_err(io)?, status.map_err(io)?))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => {
                let (stdout, stderr, status) = result?;
                if status.success() {
                    Ok(ToolOutput { stdout, stderr })
                } else {
                    Err(ToolError::Failed {
                        program,
                        status,
                        stderr,
                    })
                }
            }
            Err(_) => {
                running.terminate().await;
                Err(ToolError::Timeout {
                    program,
                    timeout: self.timeout,
                })
            }
        }
    }
}

/// A started tool. Dropping it kills its whole process group.
pub struct Running {
    pub child: Child,
    pub stdout: Option<tokio::process::ChildStdout>,
    pub stderr: Option<tokio::process::ChildStderr>,
    group: Option<ProcessGroup>,
    program: String,
}

impl Running {
    pub fn program(&self) -> &str {
        &self.program
    }

    pub fn pid(&self) -> Option<u32> {
        self.group.as_ref().map(|g| g.pgid.as_raw() as u32)
    }

    /// SIGTERM to the group, then SIGKILL if it has not exited within the grace period.
    pub async fn terminate(&mut self) {
        if let Some(group) = &self.group {
            group.signal(Signal::SIGTERM);
            if tokio::time::timeout(TERM_GRACE, self.child.wait())
                .await
                .is_err()
            {
                group.signal(Signal::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
    }
}

/// Kills the group on drop: grandchildren (yt-dlp's ffmpeg) included.
struct ProcessGroup {
    pgid: Pid,
}

impl ProcessGroup {
    fn signal(&self, signal: Signal) {
        // ESRCH (group already gone) is the normal case after a clean exit. The pgid cannot
        // be recycled while any member lives, and a new group reusing the number between our
        // reap and this call would need the pid space to wrap in microseconds.
        let _ = killpg(self.pgid, signal);
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// Reads everything up to `cap` bytes, then drains the rest (so the child never blocks on a
/// full pipe).
pub async fn read_capped<R: AsyncRead + Unpin>(
    mut reader: R,
    cap: usize,
) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// Reads everything, keeping the last `cap` bytes, as lossy UTF-8.
pub async fn read_tail<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> std::io::Result<String> {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&kept).into_owned());
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > cap {
            kept.drain(..kept.len() - cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_a_tool_and_captures_its_output() {
        let out = Tool::new("sh", Duration::from_secs(5))
            .args(["-c", "echo out; echo err >&2"])
            .run()
            .await
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[tokio::test]
    async fn a_failing_tool_reports_its_stderr() {
        let err = Tool::new("sh", Duration::from_secs(5))
            .args(["-c", "echo broken >&2; exit 3"])
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(err, ToolError::Failed { ref stderr, .. } if stderr == "broken\n"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_hung_tool_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let err = Tool::new("sh", Duration::from_millis(500))
            .args(["-c", &script])
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::Timeout { .. }), "{err}");
        assert_eq!(JobError::from(err).code, ErrorCode::Timeout);
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was in the group, so it got the signal too. It may take a moment to
        // die and be reaped by init; a zombie (state Z) counts as dead.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|stat| !stat.contains(") Z "))
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "grandchild {grandchild} survived the timeout");
    }

    #[tokio::test]
    async fn a_missing_tool_is_a_spawn_error() {
        let err = Tool::new("/nonexistent/tool", Duration::from_secs(1))
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::Spawn { .. }), "{err}");
    }

    #[tokio::test]
    async fn the_environment_is_scrubbed() {
        // Setting a variable is unsafe in edition 2024, so use one that cargo sets for every
        // test process: CARGO must not reach the child.
        assert!(std::env::var_os("CARGO").is_some());
        let out = Tool::new("sh", Duration::from_secs(5))
            .args(["-c", "echo \"[$CARGO]\""])
            .run()
            .await
            .unwrap();
        assert_eq!(out.stdout, b"[]\n");
    }
}
