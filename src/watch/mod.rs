//! The watch folder: `door::WatchDoor` runs `folder::WatchFolder` (the loop: settle, take,
//! rescan) with `watcher` (notify) feeding it; `take` handles one settled file.
//!
//! - `names`: which entries are ignored, and which are link files (by extension) rather than
//!   media (recognised by content);
//! - `links`: reading `.txt`, `.url` and `.webloc` link files;
//! - `settle`: when a file is complete enough to take;
//! - `inbox`: the folder itself — opening entries without following links or blocking on
//!   FIFOs, their identity (the import key), and moving taken files to `processed/` or
//!   `failed/` with a note.

pub mod door;
pub mod folder;
pub mod inbox;
pub mod links;
pub mod names;
pub mod settle;
mod take;
pub mod watcher;
