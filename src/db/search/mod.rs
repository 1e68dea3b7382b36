//! Full-text search over the items, on both databases: the index kept in step with every
//! write (`index`), the search itself (`find`), and the catch-up that indexes what a restore,
//! a database copy or an upgrade left unindexed (`catch_up`).

mod bulk;
mod catch_up;
mod derived;
mod find;
mod find_sql;
mod index;

pub use catch_up::catch_up;
pub(crate) use derived::empty;
pub use derived::{DERIVED_TABLES, is_shadow_table};
pub use find::{CueHit, Find, Found, Sort, find, find_with_window};
pub use index::key;
pub(crate) use index::{index_cues, index_item, remove_cues, remove_item};
