//! `GET /api/items` (the listing and search), `GET /api/items/{id}` and
//! `PATCH /api/items/{id}` (the owner's own title, tags and note).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use super::dto::ItemJson;
use super::error::{ApiError, respond};
use super::item_query::{self, Cursor, encode_cursor};
use super::search_match::MatchJson;
use crate::clock;
use crate::context::AppContext;
use crate::db::items::{self, Item};
use crate::db::search::{self, Sort};
use crate::domain::people::{Principal, UserId};
use crate::domain::user_fields::FieldsPatch;
use crate::domain::{ErrorCode, ItemId};

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

/// A listed item, and where it matched a search.
#[derive(Serialize)]
struct Listed {
    #[serde(flatten)]
    item: ItemJson,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    matched: Option<MatchJson>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Listed>,
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
    let (mut find, limit) = item_query::parse(query)?;
    find.owner = owner_filter(query, principal, ctx).await?;
    // One extra row tells whether another page follows.
    let mut rows = search::find(&ctx.db, &find)
        .await
        .map_err(ApiError::internal)?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        // Newest first pages below its last item, stably while new items arrive; every
        // other order pages by position.
        let keyset = find.query.is_none() && find.sort == Sort::Captured && !find.ascending;
        match (keyset, rows.last()) {
            (true, Some(last)) => Some(encode_cursor(Cursor::Before(last.item.id))),
            _ => Some(encode_cursor(Cursor::Offset(
                find.offset + u64::from(limit),
                item_query::listing_key(query),
            ))),
        }
    } else {
        None
    };
    let page = Page {
        items: rows
            .iter()
            .map(|found| Listed {
                matched: find
                    .query
                    .as_ref()
                    .and_then(|q| MatchJson::of(&found.item, found.cue.as_ref(), q)),
                item: ItemJson::of(ctx, &found.item, None, principal.is_admin()),
            })
            .collect(),
        next_cursor,
    };
    Ok(warp::reply::json(&page).into_response())
}

/// `PATCH /api/items/{id}`: the owner's (or an admin's) title, tags and note.
pub async fn edit(
    id: String,
    principal: Principal,
    content_type: Option<String>,
    body: Bytes,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            let item = load(&ctx, &principal, &id).await?;
            super::json_type::require_json(content_type.as_deref())?;
            let patch = FieldsPatch::from_json(&body)
                .map_err(|e| ApiError::bad_request(ErrorCode::BadRequest, e))?;
            let edited = crate::db::user_fields::edit(&ctx.db, item.id, &patch, clock::now())
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::not_found(format!("no item {}", item.id)))?;
            Ok(
                warp::reply::json(&ItemJson::of(&ctx, &edited, None, principal.is_admin()))
                    .into_response(),
            )
        }
        .await,
    )
}
