//! Extractor freshness: doctor, readiness and the metrics say how old the installed yt-dlp is,
//! and `prsnl tools update` upgrades it with the pip of the Python that runs it, or refuses.
//!
//! Real installs only: a virtual environment with a real old yt-dlp release from PyPI (pip's
//! cache makes the second run offline-fast), upgraded by real pip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use time::{Date, Month, OffsetDateTime};

use crate::cli::{config, prsnl};
use crate::helpers::{Backend, spawn_app_with};

/// A real release old enough to be stale (2025-01-15) and new enough for the service's
/// argument list (`--no-plugin-dirs` came in 2025.01).
const OLD: &str = "2025.01.15";
const OLD_PIN: &str = "yt-dlp==2025.1.15";

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A virtual environment under `dir` with `OLD` installed by its own pip.
fn venv_with_old_ytdlp(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        OLD_PIN,
    ]));
    venv
}

fn version_of(ytdlp: &Path) -> String {
    let out = run(Command::new(ytdlp).arg("--version"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The ages `OLD` can have while this test runs (it may cross midnight).
fn possible_ages() -> [i64; 2] {
    let released = Date::from_calendar_date(2025, Month::January, 15).unwrap();
    let today = OffsetDateTime::now_utc().date();
    let age = (today - released).whole_days();
    [age, age + 1]
}

fn tools_update(file: &Path) -> (Option<i32>, String, String) {
    let out = prsnl()
        .args(["tools", "update", "--config"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn doctor(file: &Path) -> (Option<i32>, String) {
    let out = prsnl()
        .args(["doctor", "--config"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A config file of its own (`config` always writes `prsnl.toml`) naming `ytdlp`.
fn ytdlp_config(dir: &Path, ytdlp: &Path, extra: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let extra = format!("[download]\nytdlp_path = \"{}\"\n{extra}", ytdlp.display());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let own = dir.join(format!("prsnl-{n}.toml"));
    std::fs::rename(config(dir, &extra), &own).unwrap();
    own
}

/// A directory made read-only in place (a read-only bind mount over itself): even root
/// cannot write there, and every path in it stays the same. Undone on drop.
struct ReadOnly {
    path: PathBuf,
}

impl ReadOnly {
    fn over(path: &Path) -> Self {
        run(Command::new("mount").arg("--bind").arg(path).arg(path));
        let view = Self {
            path: path.to_path_buf(),
        };
        run(Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&view.path));
        view
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test]
async fn an_old_yt_dlp_is_reported_and_updated_with_the_pip_that_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let venv = venv_with_old_ytdlp(dir.path());
    let ytdlp = venv.join("bin/yt-dlp");
    assert_eq!(version_of(&ytdlp), OLD);
    let ages = possible_ages();

    // Doctor: the version with its age, a warning naming the fix, and still exit 0.
    let file = ytdlp_config(dir.path(), &ytdlp, "ytdlp_warn_age_days = 60\n");
    let (code, stdout) = doctor(&file);
    assert_eq!(code, Some(0), "{stdout}");
    let described = ages.map(|age| format!("ok   yt-dlp       {OLD} (released {age} days ago)"));
    assert!(described.iter().any(|d| stdout.contains(d)), "{stdout}");
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("WARN yt-dlp"))
        .unwrap_or_else(|| panic!("no warning in:\n{stdout}"));
    assert!(warning.contains("prsnl tools update"), "{warning}");
    assert!(warning.contains("ytdlp_warn_age_days = 60"), "{warning}");
    // 0 turns the warning off; a limit above the age does too.
    for extra in [
        "ytdlp_warn_age_days = 0\n",
        "ytdlp_warn_age_days = 100000\n",
    ] {
        let quiet = ytdlp_config(dir.path(), &ytdlp, extra);
        let (code, stdout) = doctor(&quiet);
        assert_eq!(code, Some(0), "{stdout}");
        assert!(!stdout.contains("WARN"), "{extra}: {stdout}");
    }

    // Readiness stays 200 and lists the warning; the metrics carry the version and the age.
    {
        let app = spawn_app_with(Backend::Sqlite, |s| {
            s.download.ytdlp_path = ytdlp.clone();
        })
        .await;
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        let detail = body["checks"]["yt-dlp"]["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("{OLD} (released ")), "{body:#}");
        assert_eq!(body["checks"]["yt-dlp"]["ok"], true, "{body:#}");
        let warnings = body["warnings"].as_array().unwrap();
        assert_eq!(warnings.len(), 1, "{body:#}");
        assert!(warnings[0].as_str().unwrap().contains(OLD), "{body:#}");
        let scrape = app.scrape().await;
        assert_eq!(
            scrape.value("prsnl_tool_info", &[("tool", "yt-dlp"), ("version", OLD)]),
            1.0
        );
        let age = scrape.value("prsnl_tool_release_age_days", &[("tool", "yt-dlp")]);
        assert!(
            ages.contains(&(age as i64)),
            "age {age}, expected one of {ages:?}"
        );
        assert_eq!(scrape.value("prsnl_tool_info", &[("tool", "ffmpeg")]), 1.0);
        // Under the limit: no warning.
        let fresh = spawn_app_with(Backend::Sqlite, |s| {
            s.download.ytdlp_path = ytdlp.clone();
            s.download.ytdlp_warn_age_days = 100_000;
        })
        .await;
        let body = fresh.get_json("/readyz").await;
        assert_eq!(body["warnings"], serde_json::json!([]), "{body:#}");
    }

    // Refused, and nothing changed: a read-only install (even for root)…
    let read_only = ReadOnly::over(&venv);
    let (code, stdout, stderr) = tools_update(&file);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("not writable"), "{stderr}");
    drop(read_only);
    // …a copy of the script that no package owns…
    let loose = dir.path().join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    std::fs::copy(&ytdlp, loose.join("yt-dlp")).unwrap();
    let (code, _, stderr) = tools_update(&ytdlp_config(dir.path(), &loose.join("yt-dlp"), ""));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is not the yt-dlp that"), "{stderr}");
    // …a shell wrapper…
    let wrapper = loose.join("yt-dlp-wrapper");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec \"{}\" \"$@\"\n", ytdlp.display()),
    )
    .unwrap();
    run(Command::new("chmod").arg("+x").arg(&wrapper));
    assert_eq!(version_of(&wrapper), OLD);
    let (code, _, stderr) = tools_update(&ytdlp_config(dir.path(), &wrapper, ""));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not a pip-managed yt-dlp"), "{stderr}");
    // …a standalone build: a zip application of the same yt-dlp code, as its releases ship…
    let standalone = standalone_build(dir.path(), &venv);
    assert_eq!(version_of(&standalone), OLD);
    let (code, _, stderr) = tools_update(&ytdlp_config(dir.path(), &standalone, ""));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("standalone yt-dlp build"), "{stderr}");
    // …an install another installer made (uv records itself as pip does)…
    let installer = site_packages(&venv)
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("yt_dlp-")
        })
        .expect("yt-dlp's dist-info")
        .join("INSTALLER");
    assert_eq!(std::fs::read_to_string(&installer).unwrap().trim(), "pip");
    std::fs::write(&installer, "uv\n").unwrap();
    let (code, _, stderr) = tools_update(&file);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("installed by uv, not by pip"), "{stderr}");
    std::fs::write(&installer, "pip\n").unwrap();
    // …and a path where nothing is.
    let (code, _, stderr) = tools_update(&ytdlp_config(dir.path(), &loose.join("nothing"), ""));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no such executable"), "{stderr}");
    assert_eq!(version_of(&ytdlp), OLD, "a refusal changed nothing");

    // The update: from the old release to the newest pip finds, in that venv.
    let (code, stdout, stderr) = tools_update(&file);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let now = version_of(&ytdlp);
    assert_ne!(now, OLD);
    assert!(
        stdout.contains(&format!("yt-dlp updated from {OLD} to {now}")),
        "{stdout}"
    );
    let (code, stdout) = doctor(&file);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("ok   yt-dlp       {now} (released")),
        "{stdout}"
    );
    // Again: nothing newer, said so.
    let (code, stdout, stderr) = tools_update(&file);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("already the newest"), "{stdout}");
}

/// yt-dlp's own package as a zip application run by `/usr/bin/env python3`: the form of
/// its standalone release, which pip does not manage.
fn standalone_build(dir: &Path, venv: &Path) -> PathBuf {
    let source = dir.join("zipapp-source");
    std::fs::create_dir_all(&source).unwrap();
    let package = site_packages(venv).join("yt_dlp");
    run(Command::new("cp").arg("-r").arg(&package).arg(&source));
    std::fs::write(source.join("__main__.py"), "import yt_dlp\nyt_dlp.main()\n").unwrap();
    let target = dir.join("standalone/yt-dlp");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    run(Command::new("python3")
        .args(["-m", "zipapp"])
        .arg(&source)
        .args(["-p", "/usr/bin/env python3", "-o"])
        .arg(&target));
    target
}

/// The venv's `lib/python3.X/site-packages`.
fn site_packages(venv: &Path) -> PathBuf {
    std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("the venv has a site-packages")
}
