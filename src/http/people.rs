//! `GET /api/me`, and the admins' routes for people: `GET|POST /api/admin/users`,
//! `PATCH|DELETE /api/admin/users/{id}`, `POST /api/admin/users/{id}/tokens`,
//! `DELETE /api/admin/tokens/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::admin;
use super::error::{ApiError, respond};
use crate::actors::PipelineHandle;
use crate::clock;
use crate::context::AppContext;
use crate::db::people::RemovalRefused;
use crate::db::users::{self, NewUser, User};
use crate::db::{self, items};
use crate::domain::ErrorCode;
use crate::domain::people::{self as rules, Principal, Role, UserId};
use crate::people;

#[derive(Serialize)]
struct UserJson {
    id: String,
    name: String,
    role: &'static str,
    has_password: bool,
    quota_bytes: Option<u64>,
    usage_bytes: u64,
    items: u64,
    telegram_id: Option<i64>,
    created_at: String,
}

async fn user_json(ctx: &AppContext, user: &User) -> Result<UserJson, ApiError> {
    let usage_bytes = db::quota::usage_of(&ctx.db, user.id)
        .await
        .map_err(ApiError::internal)?;
    let items = db::people::items_of(&ctx.db, user.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(UserJson {
        id: user.id.to_string(),
        name: user.name.clone(),
        role: user.role.as_str(),
        has_password: user.has_password,
        quota_bytes: user.quota_bytes,
        usage_bytes,
        items,
        telegram_id: user.telegram_id,
        created_at: clock::rfc3339(user.created_at),
    })
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::BadRequest, message)
}

/// `GET /api/me`: who am I, my role, usage and quota.
pub async fn me(principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            let user = users::by_id(&ctx.db, principal.user)
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::not_found("the user is gone"))?;
            Ok(warp::reply::json(&user_json(&ctx, &user).await?).into_response())
        }
        .await,
    )
}

pub async fn list(principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            let mut shown = Vec::new();
            for user in users::list(&ctx.db).await.map_err(ApiError::internal)? {
                shown.push(user_json(&ctx, &user).await?);
            }
            Ok(warp::reply::json(&serde_json::json!({ "users": shown })).into_response())
        }
        .await,
    )
}

/// The JSON object of a request body.
fn object(body: &[u8], example: &str) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad(format!(
            "the body must be a JSON object like {example}"
        ))),
        Err(e) => Err(bad(format!("the body must be JSON like {example}: {e}"))),
    }
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(bad(format!(
            "unknown field '{}' (known: {})",
            unknown.chars().take(40).collect::<String>(),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("'{key}' must be a string"))),
    }
}

fn role(map: &Map<String, Value>) -> Result<Option<Role>, ApiError> {
    text(map, "role")?
        .map(|r| Role::parse(r).ok_or_else(|| bad("'role' is 'admin' or 'member'")))
        .transpose()
}

/// `quota`: absent (no change), `null` (no quota), bytes, or a size like "20GiB".
fn quota(map: &Map<String, Value>) -> Result<Option<Option<u64>>, ApiError> {
    match map.get("quota") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|q| Some(Some(q)))
            .ok_or_else(|| bad("'quota' must be a whole number of bytes")),
        Some(Value::String(s)) => rules::parse_size(s).map(|q| Some(Some(q))).map_err(bad),
        Some(_) => Err(bad("'quota' is bytes, a size like \"20GiB\", or null")),
    }
}

fn password(map: &Map<String, Value>) -> Result<Option<&str>, ApiError> {
    let password = text(map, "password")?;
    if let Some(p) = password {
        rules::check_password(p).map_err(|e| bad(e.to_string()))?;
    }
    Ok(password)
}

/// `POST /api/admin/users {"name", "role"?, "password"?, "quota"?}`: 201 and the user.
pub async fn create(principal: Principal, body: Bytes, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            let map = object(&body, r#"{"name": "alice", "password": "…"}"#)?;
            only_keys(&map, &["name", "role", "password", "quota"])?;
            let name = text(&map, "name")?.ok_or_else(|| bad("'name' is required"))?;
            rules::check_name(name).map_err(|e| bad(e.to_string()))?;
            let new = NewUser {
                name,
                role: role(&map)?.unwrap_or(Role::Member),
                password_hash: None,
                quota_bytes: quota(&map)?.flatten(),
            };
            let password = password(&map)?;
            let user = users::insert(&ctx.db, &new, clock::now())
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        ErrorCode::NameTaken,
                        format!("a user named {name} exists already"),
                    )
                })?;
            if let Some(password) = password {
                people::set_password(&ctx.db, user.id, password)
                    .await
                    .map_err(ApiError::internal)?;
            }
            let user = fresh(&ctx, user.id).await?;
            let json = warp::reply::json(&user_json(&ctx, &user).await?);
            Ok(warp::reply::with_status(json, StatusCode::CREATED).into_response())
        }
        .await,
    )
}

async fn fresh(ctx: &AppContext, id: UserId) -> Result<User, ApiError> {
    users::by_id(&ctx.db, id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))
}

async fn target(ctx: &AppContext, id: &str) -> Result<User, ApiError> {
    let id = UserId::parse(id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidId, e.to_string()))?;
    fresh(ctx, id).await
}

fn refused(e: RemovalRefused) -> ApiError {
    match e {
        RemovalRefused::Db(e) => ApiError::internal(e),
        other => ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::BadRequest,
            other.to_string(),
        ),
    }
}

/// `PATCH /api/admin/users/{id} {"role"?, "password"?, "quota"?}`.
pub async fn update(
    id: String,
    principal: Principal,
    body: Bytes,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            admin(&principal)?;
            let user = target(&ctx, &id).await?;
            let map = object(&body, r#"{"quota": "20GiB"}"#)?;
            only_keys(&map, &["role", "password", "quota"])?;
            let (role, quota, password) = (role(&map)?, quota(&map)?, password(&map)?);
            if let Some(role) = role {
                db::people::set_role(&ctx.db, &user, role)
                    .await
                    .map_err(refused)?;
            }
            if let Some(quota) = quota {
                users::set_quota(&ctx.db, user.id, quota)
                    .await
                    .map_err(ApiError::internal)?;
            }
            if let Some(password) = password {
                people::set_password(&ctx.db, user.id, password)
                    .await
                    .map_err(ApiError::internal)?;
            }
            let user = fresh(&ctx, user.id).await?;
            Ok(warp::reply::json(&user_json(&ctx, &user).await?).into_response())
        }
        .await,
    )
}

/// `DELETE /api/admin/users/{id}[?transfer_to=ID | ?delete_items=true]`: 204; 409 while the
/// user owns items and neither is given, or for the last admin.
pub async fn remove(
    id: String,
    query: HashMap<String, String>,
    principal: Principal,
    ctx: Arc<AppContext>,
    pipeline: PipelineHandle,
) -> Response {
    respond(
        async {
            admin(&principal)?;
            let user = target(&ctx, &id).await?;
            if let Some(unknown) = query
                .keys()
                .find(|k| !["transfer_to", "delete_items"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    "unknown query parameter '{}'",
                    unknown.chars().take(40).collect::<String>()
                )));
            }
            if let Some(to) = query.get("transfer_to") {
                let to = target(&ctx, to).await?;
                if to.id == user.id {
                    return Err(bad("cannot transfer a user's items to themselves"));
                }
                db::people::transfer_items(&ctx.db, user.id, to.id)
                    .await
                    .map_err(ApiError::internal)?;
            }
            if query.get("delete_items").is_some_and(|v| v == "true") {
                for item in items::ids_of_owner(&ctx.db, &user.id.to_string())
                    .await
                    .map_err(ApiError::internal)?
                {
                    pipeline.delete(item).await?;
                }
            }
            db::people::remove_user(&ctx.db, &user)
                .await
                .map_err(refused)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// `POST /api/admin/users/{id}/tokens {"label"?}`: 201 and the token, shown this once.
pub async fn issue_token(
    id: String,
    principal: Principal,
    body: Bytes,
    ctx: Arc<AppContext>,
) -> Response {
    respond(
        async {
            admin(&principal)?;
            let user = target(&ctx, &id).await?;
            let map = if body.is_empty() {
                Map::new()
            } else {
                object(&body, r#"{"label": "laptop"}"#)?
            };
            only_keys(&map, &["label"])?;
            let label = text(&map, "label")?.unwrap_or("api");
            if label.chars().count() > 100 || label.chars().any(char::is_control) {
                return Err(bad(
                    "'label' has at most 100 characters and no control characters",
                ));
            }
            let issued = people::issue_token(&ctx.db, user.id, label)
                .await
                .map_err(ApiError::internal)?;
            let json = serde_json::json!({
                "id": issued.id, "token": issued.token, "label": label,
                "user_id": user.id.to_string(), "user": user.name,
            });
            Ok(
                warp::reply::with_status(warp::reply::json(&json), StatusCode::CREATED)
                    .into_response(),
            )
        }
        .await,
    )
}

/// `DELETE /api/admin/tokens/{id}`: 204; it stops working at once.
pub async fn revoke_token(id: String, principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            if !db::tokens::revoke(&ctx.db, &id, clock::now())
                .await
                .map_err(ApiError::internal)?
            {
                return Err(ApiError::not_found("no such live token"));
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}
