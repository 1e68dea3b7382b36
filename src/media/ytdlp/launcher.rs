//! What kind of program `download.ytdlp_path` is, read from its first bytes: a Python script
//! (and which interpreter runs it), a pyenv shim, a standalone build, or something else.
//! Reading, never running: the answer decides what `prsnl tools update` may run.

use std::path::{Path, PathBuf};

/// Finds the executable a configured name or path means: a name without a slash is looked up
/// on PATH, as the service's own spawn does.
pub fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 || program.is_absolute() {
        return program.is_file().then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What the first bytes of the executable say about the program.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Launcher {
    /// A Python script: the interpreter its first line names.
    Python(PathBuf),
    /// A pyenv shim: the real script is where `pyenv which` says.
    PyenvShim { pyenv: PathBuf },
    /// A self-contained build (a native executable or a zip application).
    Standalone,
    /// Something else (a shell wrapper, …).
    Other(String),
}

/// Reads the launcher from the start of the file.
pub(super) fn launcher(head: &[u8]) -> Launcher {
    if head.starts_with(b"\x7fELF") || head.starts_with(b"MZ") || head.starts_with(b"\xcf\xfa") {
        return Launcher::Standalone;
    }
    let Some(rest) = head.strip_prefix(b"#!") else {
        return Launcher::Other("it is neither a script nor a program this tool knows".into());
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default().trim();
    // yt-dlp's zip application: a shebang line, then the archive.
    let after_first = rest
        .iter()
        .position(|&b| b == b'\n')
        .map(|at| &rest[at + 1..]);
    if after_first.is_some_and(|body| body.starts_with(b"PK\x03\x04")) {
        return Launcher::Standalone;
    }
    let mut words = first.split_whitespace();
    let interpreter = words.next().unwrap_or_default();
    let program = if interpreter.ends_with("/env") {
        words.find(|w| !w.starts_with('-')).unwrap_or_default()
    } else {
        interpreter
    };
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("python") {
        let python = if program.contains('/') {
            PathBuf::from(program)
        } else {
            locate(Path::new(program)).unwrap_or_else(|| PathBuf::from(program))
        };
        return Launcher::Python(python);
    }
    if name == "sh" || name == "bash" {
        // pip writes this two-line launcher when the interpreter's path is too long or has
        // spaces for a shebang: `'''exec' "/path/to/python" "$0" "$@"`.
        for line in text.lines().take(4) {
            if let Some(rest) = line.trim().strip_prefix("'''exec' \"")
                && let Some((python, _)) = rest.split_once('"')
            {
                return Launcher::Python(PathBuf::from(python));
            }
        }
        if let Some(line) = text.lines().find(|l| l.contains("pyenv\" exec")) {
            // exec "/root/.pyenv/libexec/pyenv" exec "$program" "$@"
            if let Some(pyenv) = line.split('"').nth(1) {
                return Launcher::PyenvShim {
                    pyenv: PathBuf::from(pyenv),
                };
            }
        }
    }
    Launcher::Other(format!("it is run by `{first}`, not by Python"))
}

/// The first few KiB of `path`: enough for any launcher line.
pub(super) fn read_head(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    head.truncate(n);
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_name_the_launcher() {
        assert_eq!(
            launcher(b"#!/opt/venv/bin/python3\n# -*- coding: utf-8 -*-\nimport re\n"),
            Launcher::Python("/opt/venv/bin/python3".into())
        );
        assert_eq!(
            launcher(b"#!/bin/sh\n'''exec' \"/very long/venv/bin/python\" \"$0\" \"$@\"\n' '''\n"),
            Launcher::Python("/very long/venv/bin/python".into())
        );
        assert_eq!(
            launcher(b"#!/usr/bin/env python3\nPK\x03\x04rest of the zip"),
            Launcher::Standalone
        );
        assert_eq!(launcher(b"\x7fELF\x02\x01"), Launcher::Standalone);
        assert_eq!(
            launcher(
                b"#!/usr/bin/env bash\nset -e\nexec \"/root/.pyenv/libexec/pyenv\" exec \"$program\" \"$@\"\n"
            ),
            Launcher::PyenvShim {
                pyenv: "/root/.pyenv/libexec/pyenv".into()
            }
        );
        assert!(matches!(
            launcher(b"#!/bin/sh\nexec /usr/local/bin/real-yt-dlp \"$@\"\n"),
            Launcher::Other(_)
        ));
        assert!(matches!(launcher(b"hello"), Launcher::Other(_)));
    }
}
