//! `GET /api/admin/storage/metrics`: the admin's storage report. Totals by kind (what the
//! database says is stored), by platform and by user (with quotas), and the usage per day for
//! the last 90 days as the storage side recorded it (storage trends).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use warp::Reply;
use warp::reply::Response;

use super::auth::admin;
use super::error::{ApiError, respond};
use crate::clock;
use crate::context::AppContext;
use crate::db::items::{Tally, stored_usage};
use crate::db::{storage_report, usage_history};
use crate::domain::people::Principal;
use crate::domain::quota::USAGE_HISTORY_DAYS;

#[derive(Serialize)]
struct KindJson {
    files: u64,
    bytes: u64,
}

impl From<Tally> for KindJson {
    fn from(t: Tally) -> Self {
        Self {
            files: t.files,
            bytes: t.bytes,
        }
    }
}

#[derive(Serialize)]
struct PlatformJson {
    platform: String,
    items: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct UserJson {
    id: String,
    name: String,
    role: &'static str,
    items: u64,
    usage_bytes: u64,
    quota_bytes: Option<u64>,
}

/// One recorded day: the whole vault, and each user's usage by id.
#[derive(Serialize, Default)]
struct DayJson {
    date: String,
    stored_bytes: u64,
    items: u64,
    users: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct ReportJson {
    generated_at: String,
    stored_bytes: u64,
    by_kind: BTreeMap<&'static str, KindJson>,
    by_platform: Vec<PlatformJson>,
    by_user: Vec<UserJson>,
    /// Oldest first; a day the service did not run is absent.
    history: Vec<DayJson>,
}

pub async fn report(principal: Principal, ctx: Arc<AppContext>) -> Response {
    respond(
        async {
            admin(&principal)?;
            let db = &ctx.db;
            let now = clock::now();
            let stored = stored_usage(db).await.map_err(ApiError::internal)?;
            let platforms = storage_report::by_platform(db)
                .await
                .map_err(ApiError::internal)?;
            let users = storage_report::by_user(db)
                .await
                .map_err(ApiError::internal)?;
            // Today and the 89 days before it.
            let first_day = now
                .minus(std::time::Duration::from_secs(
                    (USAGE_HISTORY_DAYS - 1) * 86_400,
                ))
                .day()
                .unwrap_or_default();
            let rows = usage_history::since(db, &first_day)
                .await
                .map_err(ApiError::internal)?;
            let mut days: BTreeMap<String, DayJson> = BTreeMap::new();
            for row in rows {
                let day = days.entry(row.day.clone()).or_insert_with(|| DayJson {
                    date: row.day.clone(),
                    ..DayJson::default()
                });
                match row.user_id {
                    Some(user) => {
                        day.users.insert(user, row.bytes);
                    }
                    None => {
                        day.stored_bytes = row.bytes;
                        day.items = row.items;
                    }
                }
            }
            let body = ReportJson {
                generated_at: clock::rfc3339(now),
                stored_bytes: stored.stored_bytes(),
                by_kind: BTreeMap::from([
                    ("videos", stored.videos.into()),
                    ("images", stored.images.into()),
                    ("thumbnails", stored.thumbnails.into()),
                    ("renditions", stored.renditions.into()),
                    ("subtitles", stored.subtitles.into()),
                ]),
                by_platform: platforms
                    .into_iter()
                    .map(|p| PlatformJson {
                        platform: p.platform,
                        items: p.items,
                        bytes: p.bytes,
                    })
                    .collect(),
                by_user: users
                    .into_iter()
                    .map(|u| UserJson {
                        id: u.user.id.to_string(),
                        name: u.user.name,
                        role: u.user.role.as_str(),
                        items: u.items,
                        usage_bytes: u.usage_bytes,
                        quota_bytes: u.user.quota_bytes,
                    })
                    .collect(),
                history: days.into_values().collect(),
            };
            Ok(warp::reply::json(&body).into_response())
        }
        .await,
    )
}
