//! Plain data and pure decisions: no I/O, no tokio, sqlx, warp or teloxide (BRIEF §6).
//!
//! Everything here is driven by table tests next to the code.

pub mod breaker;
pub mod capture_url;
pub mod encoding;
pub mod error_code;
pub mod export_name;
pub mod http_date;
pub mod ids;
pub mod item;
pub mod job;
pub mod layout;
pub mod people;
pub mod platform;
pub mod quality;
pub mod quota;
pub mod range;
pub mod retention;
pub mod search;
pub mod source_meta;
pub mod ssrf;
pub mod subtitle_track;
pub mod subtitles;
pub mod text;
pub mod time;
pub mod user_fields;
pub mod webhook;

pub use capture_url::CaptureUrl;
pub use error_code::{ErrorCode, JobError};
pub use ids::{ItemId, JobId};
pub use item::{ItemKind, ItemStatus, MediaInfo, Progress, Source, Stage, ThumbSize};
pub use job::{JobKind, JobState};
pub use platform::Platform;
pub use quality::Quality;
pub use time::Timestamp;
