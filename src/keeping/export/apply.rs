//! One run's changes to the export directory: the paths it may create recorded first, every
//! planned file placed, the files of items no longer exported removed, leftovers of runs
//! that died swept, and the record saved.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use unicode_normalization::UnicodeNormalization;

use super::ExportReport;
use super::place::{self, Outcome, Placer, STAGING_SUFFIX};
use super::plan::{Content, Planned};
use super::state::{ExportDir, How, Recorded, is_bookkeeping};
use crate::keeping::KeepError;

/// The record is saved after this many new files, so a run that dies leaves little unrecorded.
const CHECKPOINT_EVERY: usize = 2000;

pub(super) fn apply(
    dir: &ExportDir,
    selection: &str,
    old: BTreeMap<String, Recorded>,
    planned: &[(String, Planned)],
    copy: bool,
) -> Result<ExportReport, KeepError> {
    let root = dir.path.as_path();
    let mut report = ExportReport {
        directory: dir.path.clone(),
        ..ExportReport::default()
    };
    // Written ahead: every path this run may create, so that what a run that dies leaves
    // behind is known for the export's own by the next one.
    let mut intended = old.clone();
    for (item, file) in planned {
        let absent = matches!(std::fs::symlink_metadata(root.join(&file.rel)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if absent && !intended.contains_key(&file.rel) {
            let how = match (&file.content, copy) {
                (Content::Text(_), _) => How::Written,
                (Content::Media(_), true) => How::Copied,
                (Content::Media(_), false) => How::Linked,
            };
            intended.insert(
                file.rel.clone(),
                Recorded {
                    item: item.clone(),
                    how,
                    placed: None,
                    from: None,
                    theirs: false,
                },
            );
        }
    }
    if intended != old {
        dir.save_state(selection, &intended)?;
    }

    let mut placer = Placer::new(root, copy);
    let mut now: BTreeMap<String, Recorded> = BTreeMap::new();
    let mut since_checkpoint = 0;
    for (item, file) in planned {
        let keep_old = |now: &mut BTreeMap<String, Recorded>| {
            if let Some(recorded) = old.get(&file.rel) {
                now.insert(file.rel.clone(), recorded.clone());
            }
        };
        match placer.place(item, file, intended.get(&file.rel)) {
            Outcome::Done { record, changed } => {
                let counter = match (changed, record.how) {
                    (false, _) => &mut report.unchanged,
                    (true, How::Linked) => &mut report.linked,
                    (true, How::Copied) => &mut report.copied,
                    (true, How::Written) => &mut report.written,
                };
                *counter += 1;
                since_checkpoint += usize::from(changed);
                now.insert(file.rel.clone(), record);
            }
            // What the export holds of a lost vault file stays, and stays recorded.
            Outcome::Missing => {
                report.missing.push(file.rel.clone());
                keep_old(&mut now);
            }
            // Someone's now: recorded as theirs, so never replaced or removed.
            Outcome::Edited => {
                report.edited.push(file.rel.clone());
                if let Some(recorded) = intended.get(&file.rel) {
                    now.insert(
                        file.rel.clone(),
                        Recorded {
                            theirs: true,
                            ..recorded.clone()
                        },
                    );
                }
            }
            Outcome::Theirs => keep_old(&mut now),
            Outcome::Conflict(reason) => {
                report.conflicts.push(format!("{}: {reason}", file.rel));
                keep_old(&mut now);
            }
            Outcome::Failed(error) => {
                report.failed.push(format!("{}: {error}", file.rel));
                keep_old(&mut now);
            }
        }
        if since_checkpoint >= CHECKPOINT_EVERY {
            // The intended and old paths stay listed until the run ends: they may still have
            // to be removed.
            let mut union = intended.clone();
            union.extend(now.iter().map(|(k, v)| (k.clone(), v.clone())));
            dir.save_state(selection, &union)?;
            since_checkpoint = 0;
        }
    }

    let planned_paths: HashSet<&str> = planned.iter().map(|(_, p)| p.rel.as_str()).collect();
    let folded: HashSet<String> = planned.iter().map(|(_, p)| fold(&p.rel)).collect();
    for (rel, recorded) in &old {
        // A file that became someone's is theirs to keep; the record lets it go.
        if planned_paths.contains(rel.as_str()) || is_bookkeeping(rel) || recorded.theirs {
            continue;
        }
        // A path that differs from a planned one only in case or Unicode form is, on a
        // filesystem that does not tell them apart, that planned file: removing it would
        // remove what was just placed.
        if folded.contains(&fold(rel)) && !listed_exactly(root, rel) {
            continue;
        }
        match remove_recorded(root, rel, recorded) {
            Ok(Removal::Removed) => report.removed += 1,
            Ok(Removal::Gone) => {}
            Ok(Removal::Edited) => report.edited.push(rel.clone()),
            Err(reason) => {
                report.conflicts.push(format!("{rel}: {reason}"));
                now.insert(rel.clone(), recorded.clone());
            }
        }
    }
    sweep_staging(root);
    dir.save_state(selection, &now)?;
    Ok(report)
}

fn fold(rel: &str) -> String {
    rel.nfc().collect::<String>().to_lowercase()
}

/// Whether `rel`'s folder lists an entry spelled exactly as `rel`'s name.
fn listed_exactly(root: &Path, rel: &str) -> bool {
    let (folder, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    std::fs::read_dir(root.join(folder))
        .map(|entries| entries.flatten().any(|e| e.file_name() == name))
        .unwrap_or(false)
}

#[derive(Debug, PartialEq, Eq)]
enum Removal {
    Removed,
    /// Nothing was there.
    Gone,
    /// Changed since the export wrote it: left as it is.
    Edited,
}

/// Removes a file the export wrote, still as it left it, then the folders it leaves empty. A
/// path from the record is checked like any input: it must stay inside the directory and
/// not pass through a link.
fn remove_recorded(root: &Path, rel: &str, recorded: &Recorded) -> Result<Removal, String> {
    let inside = !rel.starts_with('/')
        && rel
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\0'));
    if !inside || is_bookkeeping(rel) {
        return Err("not a file of the export; left alone".into());
    }
    let parent = rel.rsplit_once('/').map(|(p, _)| p);
    if let Some(parent) = parent
        && !place::real_folder(root, parent, false)?
    {
        return Ok(Removal::Gone);
    }
    let path = root.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err("a folder is there now; left alone".into()),
        Ok(meta) if !recorded.is_ours(&meta) => return Ok(Removal::Edited),
        Ok(_) => std::fs::remove_file(&path).map_err(|e| e.to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Removal::Gone),
        Err(e) => return Err(e.to_string()),
    }
    let mut folder = parent.map(str::to_string);
    while let Some(current) = folder {
        // Only an empty folder can be removed; the first that is not ends the walk.
        if std::fs::remove_dir(root.join(&current)).is_err() {
            break;
        }
        folder = current.rsplit_once('/').map(|(p, _)| p.to_string());
    }
    Ok(Removal::Removed)
}

/// Removes the staging files runs that died left (`.<name>.prsnl-tmp`), without following
/// links into other trees.
fn sweep_staging(root: &Path) {
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // A directory entry's type is its own: a link to a folder is not followed.
            if kind.is_dir() {
                pending.push(entry.path());
            } else if name.starts_with('.') && name.ends_with(STAGING_SUFFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(item: &str) -> Recorded {
        Recorded {
            item: item.into(),
            how: How::Written,
            placed: None,
            from: None,
            theirs: false,
        }
    }

    #[test]
    fn a_tampered_record_cannot_remove_outside_or_the_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        let root = dir.path().join("export");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join(".prsnl-export.lock"), "").unwrap();
        for rel in [
            "../outside.txt",
            "/etc/passwd",
            "a/../../outside.txt",
            ".prsnl-export.lock",
            "",
        ] {
            assert!(remove_recorded(&root, rel, &ours("i")).is_err(), "{rel}");
        }
        assert!(outside.exists() && root.join(".prsnl-export.lock").exists());
        // Through a folder that is now a link: nothing is removed.
        std::os::unix::fs::symlink(dir.path(), root.join("linked")).unwrap();
        assert!(remove_recorded(&root, "linked/outside.txt", &ours("i")).is_err());
        assert!(outside.exists());
    }

    #[test]
    fn removing_the_last_file_removes_the_folders_it_leaves_empty() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        std::fs::write(root.path().join("a/b/x"), "x").unwrap();
        std::fs::write(root.path().join("a/mine"), "mine").unwrap();
        assert_eq!(
            remove_recorded(root.path(), "a/b/x", &ours("i")),
            Ok(Removal::Removed)
        );
        assert!(!root.path().join("a/b").exists() && root.path().join("a/mine").exists());
        assert_eq!(
            remove_recorded(root.path(), "a/b/x", &ours("i")),
            Ok(Removal::Gone)
        );
    }

    #[test]
    fn leftover_staging_files_are_swept_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a")).unwrap();
        std::fs::write(root.path().join("a/.x.mp4.prsnl-tmp"), "x").unwrap();
        std::fs::write(root.path().join("a/x.prsnl-tmp"), "not hidden: not ours").unwrap();
        sweep_staging(root.path());
        assert!(!root.path().join("a/.x.mp4.prsnl-tmp").exists());
        assert!(root.path().join("a/x.prsnl-tmp").exists());
    }
}
