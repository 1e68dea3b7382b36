//! Imports: a local file (dropped in the watch folder, or a photo the Telegram bot downloaded)
//! becomes an item of its kind and an `import` job in one transaction, idempotent on a key that
//! names the file.
//!
//! The job's payload says where the file will be when the job runs (`file`) and where it was
//! found (`found_at`): the importer records first and moves the file second, so a crash in
//! between leaves the file where it was found, and the next look at it finds this record.
//!
//! The shapes only; `record::import` writes them, `removal` reads which uploads they own.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::{ItemKind, Source};

/// A local file to import.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// Names the file for dedup: the same key is the same file (e.g. device, inode, size,
    /// mtime), seen again.
    pub key: String,
    /// What the file is: it decides where the item's file goes and how it is processed.
    pub kind: ItemKind,
    pub source: Source,
    pub owner: Option<String>,
    /// The item's title until processing knows better (the file name).
    pub title: String,
    pub file: ImportPayload,
    pub max_attempts: u32,
}

/// Where the job finds its file: at `file`, or, if the importer stopped before moving it
/// there, still at `found_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportPayload {
    pub file: PathBuf,
    pub found_at: PathBuf,
    /// The file belongs to the service (a download under `<media_root>/temp/uploads/`): it
    /// may be hard-linked instead of copied, and it is deleted once the job is finished for
    /// good. False for a user's file (the watch folder's), which is never touched.
    #[serde(default)]
    pub owned: bool,
}

impl ImportPayload {
    pub fn parse(payload: Option<&str>) -> Option<Self> {
        serde_json::from_str(payload?).ok()
    }
}

/// The owned files that stored import payloads name.
pub(crate) fn owned_files_in(payloads: &[Option<String>]) -> Vec<PathBuf> {
    payloads
        .iter()
        .filter_map(|p| ImportPayload::parse(p.as_deref()))
        .flat_map(|p| p.owned_files())
        .collect()
}

impl ImportPayload {
    /// The paths this payload lets the service delete: none unless the file is owned.
    pub fn owned_files(&self) -> Vec<PathBuf> {
        if !self.owned {
            return Vec::new();
        }
        let mut files = vec![self.file.clone()];
        if self.found_at != self.file {
            files.push(self.found_at.clone());
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_written_before_ownership_existed_are_not_owned() {
        let old = r#"{"file":"/in/processed/a.mp4","found_at":"/in/a.mp4"}"#;
        let parsed = ImportPayload::parse(Some(old)).unwrap();
        assert!(!parsed.owned);
        assert!(parsed.owned_files().is_empty());
    }

    #[test]
    fn an_owned_payload_names_both_of_its_places_once() {
        let mut payload = ImportPayload {
            file: "/m/temp/uploads/p.jpg".into(),
            found_at: "/m/temp/uploads/p.jpg".into(),
            owned: true,
        };
        let json = serde_json::to_string(&payload).unwrap();
        assert_eq!(ImportPayload::parse(Some(&json)), Some(payload.clone()));
        assert_eq!(
            payload.owned_files(),
            vec![PathBuf::from("/m/temp/uploads/p.jpg")]
        );
        payload.found_at = "/m/temp/uploads/q.jpg".into();
        assert_eq!(payload.owned_files().len(), 2);
    }
}
