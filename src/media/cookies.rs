//! Cookies files for yt-dlp: a quick sanity check of the Netscape format, so that a wrong
//! file shows in `prsnl doctor` and readiness before downloads start failing with it.

use std::path::Path;

/// Whether `path` looks like a Netscape cookies.txt that yt-dlp will accept.
pub fn check_file(path: &Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let mut cookies = 0;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        // "#HttpOnly_" prefixes a real cookie line; other '#' lines are comments.
        if line.trim().is_empty() || (line.starts_with('#') && !line.starts_with("#HttpOnly_")) {
            continue;
        }
        if line.split('\t').count() != 7 {
            return Err(format!(
                "{} line {} is not a Netscape cookie (7 tab-separated fields)",
                path.display(),
                number + 1
            ));
        }
        cookies += 1;
    }
    if cookies == 0 {
        return Err(format!("{} holds no cookies", path.display()));
    }
    Ok(cookies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_netscape_files_and_explains_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.txt");
        std::fs::write(
            &good,
            "# Netscape HTTP Cookie File\n\n.youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tabc\n#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t0\tHSID\tdef\n",
        )
        .unwrap();
        assert_eq!(check_file(&good), Ok(2));
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "SID=abc; HSID=def\n").unwrap();
        assert!(check_file(&bad).unwrap_err().contains("line 1"));
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# Netscape HTTP Cookie File\n").unwrap();
        assert!(check_file(&empty).unwrap_err().contains("no cookies"));
        assert!(check_file(&dir.path().join("missing")).is_err());
    }
}
