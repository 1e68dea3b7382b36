//! `GET /api/items` and `GET /api/items/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use super::dto::ItemJson;
use super::error::{ApiError, respond};
use crate::context::AppContext;
use crate::db::items::{self, Item, ListFilter};
use crate::domain::people::{Principal, UserId};
use crate::domain::{ErrorCode, ItemId, ItemStatus, Platform};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Parses an id from the path (400 `invalid_id`) and loads the item (404 `not_found`, also
/// when it is someone else's: a member never learns that another's item exists).
pub async fn load(ctx: &AppContext, principal: &Principal, id: &str) -> Result<Item, ApiError> {
    let id = ItemId::parse(id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidId, e.to_string()))?;
    items::get(&ctx.db, id)
        .await
        .map_err(ApiError::internal)?
        .filter(|item| principal.may_see(item.owner.as_deref()))
        .ok_or_else(|| ApiError::not_found(format!("no item {id}")))
}

pub async fn get(id: String, principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            let item = load(&ctx, &principal, &id).await?;
            let renditions = crate::db::renditions::for_item(&ctx.db, item.id)
                .await
                .map_err(ApiError::internal)?;
            Ok(warp::reply::json(&ItemJson::of(
                &ctx,
                &item,
                Some(&renditions),
                principal.is_admin(),
            ))
            .into_response())
        }
        .await,
    )
}

#[derive(Serialize)]
struct Page {
    items: Vec<ItemJson>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    next_cursor: Option<String>,
}

pub async fn list(
    query: HashMap<String, String>,
    principal: Principal,
    ctx: Arc<AppContext>,
) -> Response {
    respond(list_page(&query, &principal, &ctx).await)
}

/// Whose items a listing shows: a member's own; an admin's choice (`?owner=` a user id or
/// name), everyone's by default.
async fn owner_filter(
    query: &HashMap<String, String>,
    principal: &Principal,
    ctx: &AppContext,
) -> Result<Option<String>, ApiError> {
    let Some(owner) = query.get("owner") else {
        return Ok((!principal.is_admin()).then(|| principal.user.to_string()));
    };
    let user = match UserId::parse(owner) {
        Ok(id) => crate::db::users::by_id(&ctx.db, id).await,
        Err(_) => crate::db::users::by_name(&ctx.db, owner).await,
    }
    .map_err(ApiError::internal)?;
    match user {
        Some(user) if principal.is_admin() || user.id == principal.user => {
            Ok(Some(user.id.to_string()))
        }
        // A member asking for someone else's library gets what they would get for a user
        // that does not exist: nothing about whether it does.
        _ => Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            "unknown owner: give a user id or name",
        )),
    }
}

async fn list_page(
    query: &HashMap<String, String>,
    principal: &Principal,
    ctx: &AppContext,
) -> Result<Response, ApiError> {
    let bad = |msg: String| ApiError::bad_request(ErrorCode::BadRequest, msg);
    if let Some(unknown) = query
        .keys()
        .find(|k| !["status", "platform", "limit", "cursor", "owner"].contains(&k.as_str()))
    {
        return Err(bad(format!("unknown query parameter '{unknown}'")));
    }
    let status = query
        .get("status")
        .map(|s| ItemStatus::parse(s).ok_or_else(|| bad(format!("unknown status '{s}'"))))
        .transpose()?;
    let platform = query
        .get("platform")
        .map(|p| Platform::parse(p).ok_or_else(|| bad(format!("unknown platform '{p}'"))))
        .transpose()?;
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| bad(format!("limit must be a number from 1 to {MAX_LIMIT}")))?,
    };
    let before = query
        .get("cursor")
        .map(|c| decode_cursor(c).ok_or_else(|| bad("invalid cursor".into())))
        .transpose()?;
    // One extra row tells whether another page follows.
    let filter = ListFilter {
        status,
        platform,
        before,
        owner: owner_filter(query, principal, ctx).await?,
        limit: limit + 1,
    };
    let mut rows = items::list(&ctx.db, &filter)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|item| encode_cursor(item.id))
    } else {
        None
    };
    let page = Page {
        items: rows
            .iter()
            .map(|item| ItemJson::of(ctx, item, None, principal.is_admin()))
            .collect(),
        next_cursor,
    };
    Ok(warp::reply::json(&page).into_response())
}

/// Cursors are opaque to clients; inside, the last id of the page.
fn encode_cursor(id: ItemId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_string())
}

fn decode_cursor(cursor: &str) -> Option<ItemId> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    ItemId::parse(std::str::from_utf8(&bytes).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = ItemId::new();
        assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
