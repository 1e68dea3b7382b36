//! The watch folder's decisions and file handling, apart from the actor that drives them
//! (`actors/watch_folder.rs`).
//!
//! - `names`: which entries are ignored, and which are link files (by extension) rather than
//!   media (recognised by content);
//! - `links`: reading `.txt`, `.url` and `.webloc` link files;
//! - `settle`: when a file is complete enough to take;
//! - `inbox`: the folder itself — opening entries without following links or blocking on
//!   FIFOs, their identity (the import key), and moving taken files to `processed/` or
//!   `failed/` with a note.

pub mod inbox;
pub mod links;
pub mod names;
pub mod settle;
