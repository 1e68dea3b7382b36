//! A person's own title, tags and note: changed together with the item's entry in the search
//! index, in one transaction, so a search finds the new words as soon as the change answers.

use super::items::{self, Item};
use super::{Db, DbError, search};
use crate::domain::user_fields::FieldsPatch;
use crate::domain::{ItemId, Timestamp};

/// Applies `patch` to the item's fields; `None` when the item is gone.
pub async fn edit(
    db: &Db,
    id: ItemId,
    patch: &FieldsPatch,
    now: Timestamp,
) -> Result<Option<Item>, DbError> {
    let mut tx = db.begin_write().await?;
    let Some(item) = items::get_in(&mut tx, id).await? else {
        return Ok(None);
    };
    items::set_user_fields(&mut tx, id, &patch.apply(&item.user), now).await?;
    search::index_item(&mut tx, id).await?;
    let item = items::get_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(item)
}
