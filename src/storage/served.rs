//! Completed files as the stream handler serves them, kept in memory.
//!
//! Completed media never changes, so once a file's facts (its mapping, length, version tag,
//! completion time) are loaded, a stream or range request needs no database query and no
//! open(2). Entries expire after a while (another instance sharing the database may have
//! deleted the item) and are dropped at once when this process deletes the item.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::domain::http_date::http_date;
use crate::domain::{ItemId, Quality, ThumbSize, Timestamp};
use crate::sys::MappedFile;

/// Which file of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Video,
    /// An image item's picture (its own file, like `Video` for a video).
    Image,
    Rendition(Quality),
    Thumbnail(ThumbSize),
}

/// What serving one file needs. Everything a response says about the file is worked out
/// here, once, not per request: a stream is served as many range requests.
pub struct ServedFile {
    /// `None` for an empty file (which cannot be mapped).
    pub data: Option<Arc<MappedFile>>,
    pub len: u64,
    /// A strong validator: changes whenever the bytes could.
    pub version: String,
    /// When the file was completed (Unix ms).
    pub completed_at: Option<Timestamp>,
    /// `version` as an ETag (quoted), ready for a header.
    pub etag: HeaderValue,
    /// `completed_at` as an IMF-fixdate, ready for `Last-Modified`.
    pub last_modified: Option<HeaderValue>,
    /// The item's owner (a user id): a cached file is served only to whoever may see it.
    pub owner: Option<String>,
}

impl ServedFile {
    /// Opens and maps a stored file.
    pub fn open(
        path: &std::path::Path,
        version: String,
        completed_at: Option<Timestamp>,
    ) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let data = if len == 0 {
            None
        } else {
            Some(Arc::new(MappedFile::map(&file)?))
        };
        let etag = HeaderValue::from_str(&format!("\"{version}\"")).map_err(|_| {
            std::io::Error::other(format!("version tag {version:?} is not a header value"))
        })?;
        let last_modified = completed_at
            .and_then(http_date)
            .and_then(|date| HeaderValue::from_str(&date).ok());
        Ok(Self {
            data,
            len,
            version,
            completed_at,
            etag,
            last_modified,
            owner: None,
        })
    }
}

struct Entry {
    file: Arc<ServedFile>,
    loaded: Instant,
}

pub struct ServedFiles {
    table: Mutex<Table>,
    capacity: usize,
    ttl: Duration,
}

#[derive(Default)]
struct Table {
    files: HashMap<(ItemId, Variant), Entry>,
    /// Items deleted by this process: a request that loaded one just before the delete must
    /// not put it back (bounded; the oldest are forgotten first).
    deleted: VecDeque<ItemId>,
}

/// How many deleted ids are remembered; far more than can race with one delete.
const DELETED_MEMORY: usize = 4096;

impl ServedFiles {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            capacity,
            ttl,
        }
    }

    pub fn get(&self, item: ItemId, variant: Variant) -> Option<Arc<ServedFile>> {
        let table = self.table.lock().expect("served files lock");
        table
            .files
            .get(&(item, variant))
            .filter(|e| e.loaded.elapsed() < self.ttl)
            .map(|e| Arc::clone(&e.file))
    }

    pub fn insert(&self, item: ItemId, variant: Variant, file: Arc<ServedFile>) {
        let mut table = self.table.lock().expect("served files lock");
        if table.deleted.contains(&item) {
            return;
        }
        if table.files.len() >= self.capacity && !table.files.contains_key(&(item, variant)) {
            // Evict the oldest entry; the table is small, so a scan is cheap.
            if let Some(oldest) = table
                .files
                .iter()
                .min_by_key(|(_, e)| e.loaded)
                .map(|(k, _)| *k)
            {
                table.files.remove(&oldest);
            }
        }
        table.files.insert(
            (item, variant),
            Entry {
                file,
                loaded: Instant::now(),
            },
        );
    }

    /// Drops every file of `item` (it was deleted), and keeps it from coming back.
    pub fn forget_item(&self, item: ItemId) {
        let mut table = self.table.lock().expect("served files lock");
        table.files.retain(|(id, _), _| *id != item);
        if table.deleted.len() == DELETED_MEMORY {
            table.deleted.pop_front();
        }
        table.deleted.push_back(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> Arc<ServedFile> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        Arc::new(ServedFile::open(&path, name.into(), None).unwrap())
    }

    #[test]
    fn maps_files_and_handles_empty_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "a", b"hello");
        assert_eq!(f.data.as_ref().unwrap().bytes(), b"hello");
        let empty = file(dir.path(), "e", b"");
        assert_eq!((empty.len, empty.data.is_none()), (0, true));
    }

    #[test]
    fn evicts_the_oldest_and_forgets_deleted_items() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ServedFiles::new(2, Duration::from_secs(60));
        let (a, b, c) = (ItemId::new(), ItemId::new(), ItemId::new());
        cache.insert(a, Variant::Video, file(dir.path(), "a", b"1"));
        cache.insert(b, Variant::Video, file(dir.path(), "b", b"2"));
        cache.insert(
            b,
            Variant::Thumbnail(ThumbSize::Small),
            file(dir.path(), "bt", b"3"),
        );
        assert!(cache.get(a, Variant::Video).is_none(), "oldest evicted");
        cache.insert(c, Variant::Video, file(dir.path(), "c", b"4"));
        cache.forget_item(b);
        assert!(cache.get(b, Variant::Video).is_none());
        // A request that loaded the file just before the delete cannot put it back.
        cache.insert(b, Variant::Video, file(dir.path(), "b2", b"5"));
        assert!(cache.get(b, Variant::Video).is_none());
        assert!(cache.get(c, Variant::Video).is_some());
    }

    #[test]
    fn entries_expire() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ServedFiles::new(8, Duration::ZERO);
        let id = ItemId::new();
        cache.insert(id, Variant::Video, file(dir.path(), "a", b"1"));
        assert!(cache.get(id, Variant::Video).is_none());
    }
}
