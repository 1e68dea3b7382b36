//! PostgreSQL's index writer: a statement per table for any number of items, used for one
//! item by `index::index_item` and for a batch by the catch-up after an upgrade or a restore
//! (100,000 items took over ten minutes one by one). SQLite runs in-process, where round
//! trips cost nothing, and writes item by item in `index_item`.

use sqlx::PgConnection;

use super::super::DbError;
use super::super::items::{Item, ItemRow};
use super::index::{Document, tag_keys, uploader_key};

/// (Re)writes the index rows of the items with these ids, as `index_item` does for one; ids
/// without an item are skipped (the orphan sweep removes their rows). Returns how many items
/// were indexed.
pub(crate) async fn index_items(conn: &mut PgConnection, ids: &[String]) -> Result<u64, DbError> {
    let rows: Vec<ItemRow> = sqlx::query_as("SELECT * FROM items WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut items: Vec<Item> = Vec::with_capacity(rows.len());
    for row in rows {
        match Item::try_from(row) {
            Ok(item) => items.push(item),
            // One row that cannot be read stays unindexed (and said); the rest go on.
            Err(e) => {
                tracing::warn!(error = %e, "an item that cannot be read; left out of the index")
            }
        }
    }
    write_items(conn, &items).await?;
    Ok(items.len() as u64)
}

/// (Re)writes the index rows of `items`: their search document, tags and uploader key.
pub(crate) async fn write_items(conn: &mut PgConnection, items: &[Item]) -> Result<(), DbError> {
    let mut columns: [Vec<String>; 5] = Default::default();
    let (mut tag_items, mut tags) = (Vec::new(), Vec::new());
    let mut uploaders: Vec<Option<String>> = Vec::with_capacity(items.len());
    for item in items {
        let id = item.id.to_string();
        let doc = Document::of(item);
        for (column, value) in
            columns
                .iter_mut()
                .zip([id.clone(), doc.title, doc.tags, doc.uploader, doc.body])
        {
            column.push(value);
        }
        for tag in tag_keys(item) {
            tag_items.push(id.clone());
            tags.push(tag);
        }
        uploaders.push(uploader_key(item));
    }
    let [item_ids, titles, tag_texts, uploader_texts, bodies] = &columns;
    sqlx::query(
        "INSERT INTO item_search (item_id, title, tags, uploader, body) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
         ON CONFLICT (item_id) DO UPDATE SET title = EXCLUDED.title, tags = EXCLUDED.tags, \
         uploader = EXCLUDED.uploader, body = EXCLUDED.body",
    )
    .bind(item_ids)
    .bind(titles)
    .bind(tag_texts)
    .bind(uploader_texts)
    .bind(bodies)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM item_tags WHERE item_id = ANY($1)")
        .bind(item_ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO item_tags (item_id, tag) SELECT * FROM UNNEST($1::text[], $2::text[])",
    )
    .bind(&tag_items)
    .bind(&tags)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE items SET uploader_key = u.key \
         FROM UNNEST($1::text[], $2::text[]) AS u(id, key) WHERE items.id = u.id",
    )
    .bind(item_ids)
    .bind(&uploaders)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
