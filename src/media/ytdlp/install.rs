//! Where the configured yt-dlp comes from, and upgrading it with pip (`prsnl tools update`).
//!
//! Only an install that pip made and that this user can write is upgraded, with the pip of the
//! very Python that runs `download.ytdlp_path`: any other pip could install into another
//! Python and leave the configured yt-dlp as old as it was. Everything else is refused with
//! what to do instead: a standalone build updates itself, a distribution's package comes
//! from its package manager, a read-only install needs its owner.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use super::launcher::{Launcher, launcher, locate, read_head};

/// How long pip may take (it downloads a few MiB).
const PIP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the interpreter may take to describe the install.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the configured yt-dlp cannot be upgraded here, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

fn refuse(message: impl Into<String>) -> Refusal {
    Refusal(message.into())
}

/// A yt-dlp that pip installed into a Python this process can write to.
#[derive(Debug, Clone)]
pub struct PipInstall {
    /// The yt-dlp script, symlinks resolved.
    pub script: PathBuf,
    /// The interpreter that runs it.
    pub python: PathBuf,
    /// The version as yt-dlp itself prints it (`2025.01.15`; pip's metadata says
    /// `2025.1.15`), so that it reads as doctor and readiness show it.
    pub version: String,
    /// Where the package lives (site-packages).
    pub location: PathBuf,
}

/// What one upgrade did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub from: String,
    pub to: String,
}

/// What the interpreter says about its yt-dlp distribution.
#[derive(Debug, Deserialize)]
struct Inspection {
    python: String,
    externally_managed: bool,
    pip: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    installer: Option<String>,
    #[serde(default)]
    owns_script: bool,
    #[serde(default)]
    location: Option<String>,
}

/// Asks `python` about the yt-dlp distribution installed in it and whether it owns `script`.
/// The script is passed as an argument, never put into the code.
const INSPECT: &str = r#"
import json, os, sys, sysconfig
from importlib import metadata
venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
out = {"python": sys.executable, "venv": venv, "externally_managed": (not venv) and os.path.exists(marker)}
try:
    import pip
    out["pip"] = pip.__version__
except Exception:
    out["pip"] = None
try:
    dist = metadata.distribution("yt-dlp")
except metadata.PackageNotFoundError:
    dist = None
if dist is not None:
    out["version"] = dist.version
    out["installer"] = (dist.read_text("INSTALLER") or "").strip()
    out["location"] = str(dist.locate_file(""))
    script = os.path.realpath(sys.argv[1])
    out["owns_script"] = any(os.path.realpath(f.locate()) == script for f in (dist.files or []))
print(json.dumps(out))
"#;

async fn inspect(python: &Path, script: &Path) -> Result<Inspection, Refusal> {
    let output = Command::new(python)
        .arg("-c")
        .arg(INSPECT)
        .arg(script)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(INSPECT_TIMEOUT, output)
        .await
        .map_err(|_| {
            refuse(format!(
                "{} did not answer within a minute",
                python.display()
            ))
        })?
        .map_err(|e| refuse(format!("cannot run {}: {e}", python.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(refuse(format!(
            "{} could not describe its yt-dlp ({}): {}",
            python.display(),
            output.status,
            crate::domain::text::clean(stderr.trim(), 400)
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        refuse(format!(
            "{} gave an unreadable description of its yt-dlp: {e}",
            python.display()
        ))
    })
}

/// Finds the pip-managed, writable install behind `ytdlp_path`, or says why there is none.
pub async fn find(ytdlp_path: &Path) -> Result<PipInstall, Refusal> {
    let shown = ytdlp_path.display();
    let found = locate(ytdlp_path).ok_or_else(|| {
        refuse(format!(
            "download.ytdlp_path = {shown:?}: no such executable (install yt-dlp with pip, \
             for example into a virtual environment, and point download.ytdlp_path at it)"
        ))
    })?;
    let mut script = std::fs::canonicalize(&found).unwrap_or(found);
    let mut hops = 0;
    let python = loop {
        let head = read_head(&script)
            .map_err(|e| refuse(format!("cannot read {}: {e}", script.display())))?;
        match launcher(&head) {
            Launcher::Python(python) => break python,
            Launcher::PyenvShim { pyenv } if hops == 0 => {
                hops += 1;
                script = pyenv_which(&pyenv, &script).await?;
            }
            Launcher::PyenvShim { .. } => {
                return Err(refuse(format!(
                    "{}: a pyenv shim leads to another shim",
                    script.display()
                )));
            }
            Launcher::Standalone => {
                return Err(refuse(format!(
                    "{} is a standalone yt-dlp build, not pip-managed: it updates itself with \
                     `yt-dlp -U`, or install yt-dlp with pip and point download.ytdlp_path at it",
                    script.display()
                )));
            }
            Launcher::Other(why) => {
                return Err(refuse(format!(
                    "{} is not a pip-managed yt-dlp ({why}); point download.ytdlp_path at the \
                     yt-dlp script pip installed",
                    script.display()
                )));
            }
        }
    };
    let seen = inspect(&python, &script).await?;
    let python = PathBuf::from(&seen.python);
    let Some(version) = seen.version.clone() else {
        return Err(refuse(format!(
            "{} runs {}, which has no yt-dlp installed by a package manager it knows",
            script.display(),
            python.display()
        )));
    };
    if !seen.owns_script {
        return Err(refuse(format!(
            "{} is not the yt-dlp that {}'s package (version {version}) installed; point \
             download.ytdlp_path at that package's script",
            script.display(),
            python.display()
        )));
    }
    match seen.installer.as_deref() {
        Some("pip") => {}
        other => {
            let by = match other.filter(|s| !s.is_empty()) {
                Some(installer) => format!("by {installer}"),
                None => "without an installer record (a distribution's package?)".to_string(),
            };
            return Err(refuse(format!(
                "yt-dlp {version} in {} was installed {by}, not by pip: update it the way it \
                 was installed, or install yt-dlp with pip into a virtual environment and \
                 point download.ytdlp_path at it",
                python.display()
            )));
        }
    }
    if seen.externally_managed {
        return Err(refuse(format!(
            "{} is managed by the operating system (EXTERNALLY-MANAGED): pip may not change \
             it; install yt-dlp into a virtual environment and point download.ytdlp_path at it",
            python.display()
        )));
    }
    if seen.pip.is_none() {
        return Err(refuse(format!(
            "{} has no pip (python -m pip is missing); add it with `{} -m ensurepip`",
            python.display(),
            python.display()
        )));
    }
    let location = PathBuf::from(seen.location.unwrap_or_default());
    for dir in [
        location.as_path(),
        script.parent().unwrap_or(Path::new("/")),
    ] {
        if let Err(e) = crate::storage::check_writable(dir) {
            return Err(refuse(format!(
                "yt-dlp {version} is pip-managed but {} is not writable by this user ({e}); \
                 run `prsnl tools update` as the install's owner",
                dir.display()
            )));
        }
    }
    let version = printed_version(&script).await.unwrap_or(version);
    Ok(PipInstall {
        script,
        python,
        version,
        location,
    })
}

/// What `yt-dlp --version` prints, if it runs.
async fn printed_version(script: &Path) -> Option<String> {
    crate::media::tools::version(script, "--version").await.ok()
}

/// The script a pyenv shim runs, as `pyenv which` names it.
async fn pyenv_which(pyenv: &Path, shim: &Path) -> Result<PathBuf, Refusal> {
    let name = shim.file_name().unwrap_or_default();
    let output = Command::new(pyenv)
        .arg("which")
        .arg(name)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(INSPECT_TIMEOUT, output)
        .await
        .map_err(|_| refuse("pyenv did not answer within a minute"))?
        .map_err(|e| refuse(format!("cannot run {}: {e}", pyenv.display())))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let path = PathBuf::from(text.trim());
    if !output.status.success() || !path.is_absolute() {
        return Err(refuse(format!(
            "{} is a pyenv shim and `pyenv which` cannot say which yt-dlp it runs",
            shim.display()
        )));
    }
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// Upgrades the install to the newest release pip finds (its configuration, index and proxy
/// settings apply). pip's own output goes to this process's stderr, for the operator to watch.
pub async fn upgrade(install: &PipInstall) -> Result<Upgrade, Refusal> {
    use std::os::fd::AsFd;
    // pip's progress goes to stderr, so that stdout keeps only the result.
    let to_stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| refuse(format!("cannot pass stderr to pip: {e}")))?;
    let pip = Command::new(&install.python)
        .args(["-m", "pip", "install", "--upgrade", "--no-input"])
        .args(["--disable-pip-version-check", "yt-dlp"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(to_stderr))
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .status();
    let status = tokio::time::timeout(PIP_TIMEOUT, pip)
        .await
        .map_err(|_| refuse("pip did not finish within 10 minutes; nothing else was changed"))?
        .map_err(|e| refuse(format!("cannot run pip: {e}")))?;
    if !status.success() {
        return Err(refuse(format!(
            "pip failed ({status}); its output above says why. yt-dlp {} is unchanged",
            install.version
        )));
    }
    let after = inspect(&install.python, &install.script).await?;
    let installed = after.version.ok_or_else(|| {
        refuse("pip finished but yt-dlp is no longer installed in that Python; reinstall it")
    })?;
    let to = printed_version(&install.script).await.unwrap_or(installed);
    Ok(Upgrade {
        from: install.version.clone(),
        to,
    })
}
