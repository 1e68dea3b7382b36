//! The JSON shapes of the API. Only this module knows them (BRIEF §6).

use serde::Serialize;

use crate::clock;
use crate::context::AppContext;
use crate::db::items::Item;
use crate::db::renditions::Rendition;
use crate::domain::encoding::Encoding;
use crate::domain::layout::subtitle_path;
use crate::domain::source_meta::{Chapter, SourceMeta};
use crate::domain::user_fields::UserFields;
use crate::domain::{ItemKind, ItemStatus, JobError, Progress, ThumbSize};

#[derive(Debug, Serialize)]
pub struct ItemJson {
    pub id: String,
    /// `video` or `image`.
    pub kind: &'static str,
    pub status: &'static str,
    pub source: &'static str,
    pub platform: &'static str,
    pub source_url: Option<String>,
    pub canonical_url: Option<String>,
    pub platform_media_id: Option<String>,
    /// The title to show: the person's own when they set one, else the source's.
    pub title: Option<String>,
    /// The title the source gave.
    pub source_title: Option<String>,
    /// What the owner added: `title`, `tags` and `note` (`PATCH /api/items/{id}`).
    pub user: UserFields,
    pub progress: Option<ProgressJson>,
    pub error: Option<ErrorJson>,
    /// Things to know about a completed item, such as a throttled download.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    /// Present once the item is completed.
    pub metadata: Option<MetadataJson>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ProgressJson {
    pub stage: &'static str,
    pub percent: Option<f64>,
    pub downloaded_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ErrorJson {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct MetadataJson {
    pub id: String,
    pub kind: &'static str,
    pub title: Option<String>,
    /// `null` for an image, like the audio codec, bitrate and frame rate.
    pub duration_seconds: Option<f64>,
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub bitrate_bps: Option<u64>,
    pub fps: Option<f64>,
    pub container: String,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    /// How the stored file was made from the source (`null` for an image, and for videos
    /// stored before this was recorded).
    pub encoding: Option<EncodingJson>,
    pub platform: &'static str,
    pub source_url: Option<String>,
    /// Where the file sits under media_root (also its path on a CDN mirroring the tree);
    /// absent when the item shares another item's file (that path names the other item,
    /// someone else's business).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_path: Option<String>,
    /// A video's stream (absent for an image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    /// An image's JPEG (absent for a video).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub thumbnails: ThumbnailsJson,
    /// Renditions made on request; left out of listings (one query per item would be waste).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renditions: Option<Vec<RenditionJson>>,
    /// Subtitle tracks (WebVTT), for a player's `<track>` elements.
    pub subtitles: Vec<SubtitleJson>,
    /// What the source said (or, for files, their own tags).
    #[serde(flatten)]
    pub from_source: SourceJson,
    pub created_at: String,
    pub completed_at: Option<String>,
}

/// The source's own metadata, beside the item's facts.
#[derive(Debug, Serialize)]
pub struct SourceJson {
    pub uploader: Option<String>,
    pub uploader_id: Option<String>,
    pub uploader_url: Option<String>,
    /// `YYYY-MM-DD`.
    pub upload_date: Option<String>,
    /// Left out of listings (it may be long); present, possibly `null`, on one item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    pub tags: Vec<String>,
    pub chapters: Vec<Chapter>,
    pub language: Option<String>,
    pub source_thumbnail_url: Option<String>,
}

impl SourceJson {
    fn of(meta: &SourceMeta, with_description: bool) -> Self {
        Self {
            uploader: meta.uploader.clone(),
            uploader_id: meta.uploader_id.clone(),
            uploader_url: meta.uploader_url.clone(),
            upload_date: meta.upload_date.clone(),
            // A listing does not copy what it leaves out.
            description: with_description.then(|| meta.description.clone()),
            tags: meta.tags.clone(),
            chapters: meta.chapters.clone(),
            language: meta.language.clone(),
            source_thumbnail_url: meta.thumbnail_url.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SubtitleJson {
    pub lang: String,
    /// Captions a machine made (speech recognition), not the author's.
    pub auto: bool,
    pub cues: u64,
    pub size_bytes: u64,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct RenditionJson {
    pub quality: &'static str,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
    pub url: String,
}

impl RenditionJson {
    pub fn of(ctx: &AppContext, item: &Item, r: &Rendition) -> Self {
        Self {
            quality: r.quality.as_str(),
            width: r.width,
            height: r.height,
            size_bytes: r.size_bytes,
            url: link(
                ctx,
                &r.path,
                format!("/api/videos/{}/stream?quality={}", item.id, r.quality),
            ),
        }
    }
}

/// The item's `Encoding`, with the one answer most people want first: whether the stored
/// picture was re-encoded (by conversion or by a kept compression) or is the source's own.
#[derive(Debug, Serialize)]
pub struct EncodingJson {
    pub reencoded: bool,
    #[serde(flatten)]
    pub detail: Encoding,
}

#[derive(Debug, Serialize)]
pub struct ThumbnailsJson {
    pub small: String,
    pub medium: String,
    pub large: String,
}

impl From<&Progress> for ProgressJson {
    fn from(p: &Progress) -> Self {
        Self {
            stage: p.stage.as_str(),
            percent: p.percent.map(|v| (v * 10.0).round() / 10.0),
            downloaded_bytes: p.downloaded_bytes,
            total_bytes: p.total_bytes,
        }
    }
}

impl From<&JobError> for ErrorJson {
    fn from(e: &JobError) -> Self {
        Self {
            code: e.code.as_str(),
            message: e.message.clone(),
        }
    }
}

fn link(ctx: &AppContext, relative: &str, api_path: String) -> String {
    let base = ctx.settings.server.public_base_url.as_ref();
    crate::domain::layout::public_link(base.map_or("", url::Url::as_str), relative, api_path)
}

impl MetadataJson {
    /// `None` unless the item is completed. `admin`: see `ItemJson::of`.
    pub fn of(
        ctx: &AppContext,
        item: &Item,
        renditions: Option<&[Rendition]>,
        admin: bool,
    ) -> Option<Self> {
        if item.status != ItemStatus::Completed {
            return None;
        }
        let media = item.media.as_ref()?;
        let id = item.id.to_string();
        let thumb = |size: ThumbSize| {
            link(
                ctx,
                item.paths.thumbnail(size),
                format!("/api/videos/{id}/thumbnail/{}", size.as_str()),
            )
        };
        Some(Self {
            kind: item.kind.as_str(),
            title: item.user.title.clone().or_else(|| item.title.clone()),
            duration_seconds: media.duration_seconds,
            width: media.width,
            height: media.height,
            video_codec: media.video_codec.clone(),
            audio_codec: media.audio_codec.clone(),
            bitrate_bps: media.bitrate_bps,
            fps: media.fps,
            container: media.container.clone(),
            size_bytes: item.size_bytes,
            sha256: item.sha256.clone(),
            encoding: item.encoding.clone().map(|detail| EncodingJson {
                reencoded: detail.reencoded(),
                detail,
            }),
            platform: item.platform.as_str(),
            source_url: item.source_url.clone(),
            storage_path: item
                .paths
                .file
                .contains(&id)
                .then(|| item.paths.file.clone())
                .or_else(|| admin.then(|| item.paths.file.clone())),
            stream_url: (item.kind == ItemKind::Video)
                .then(|| link(ctx, &item.paths.file, format!("/api/videos/{id}/stream"))),
            image_url: (item.kind == ItemKind::Image)
                .then(|| link(ctx, &item.paths.file, format!("/api/images/{id}"))),
            thumbnails: ThumbnailsJson {
                small: thumb(ThumbSize::Small),
                medium: thumb(ThumbSize::Medium),
                large: thumb(ThumbSize::Large),
            },
            renditions: renditions.map(|list| {
                list.iter()
                    .map(|r| RenditionJson::of(ctx, item, r))
                    .collect()
            }),
            subtitles: item
                .subtitles
                .iter()
                .map(|t| SubtitleJson {
                    lang: t.lang.to_string(),
                    auto: t.auto,
                    cues: t.cues,
                    size_bytes: t.bytes,
                    url: link(
                        ctx,
                        &subtitle_path(&item.paths.file, t.lang.as_str()),
                        format!("/api/videos/{id}/subtitles/{}", t.lang),
                    ),
                })
                .collect(),
            from_source: SourceJson::of(&item.source_meta, renditions.is_some()),
            created_at: clock::rfc3339(item.created_at),
            completed_at: item.completed_at.map(clock::rfc3339),
            id,
        })
    }
}

impl ItemJson {
    /// The item; its metadata lists `renditions` when they are given.
    /// `admin`: whether the viewer may see a path that names another item (a member is not
    /// shown where the file they share with someone else sits).
    pub fn of(
        ctx: &AppContext,
        item: &Item,
        renditions: Option<&[Rendition]>,
        admin: bool,
    ) -> Self {
        Self {
            id: item.id.to_string(),
            kind: item.kind.as_str(),
            status: item.status.as_str(),
            source: item.source.as_str(),
            platform: item.platform.as_str(),
            source_url: item.source_url.clone(),
            canonical_url: item.canonical_url.clone(),
            platform_media_id: item.platform_media_id.clone(),
            title: item.user.title.clone().or_else(|| item.title.clone()),
            source_title: item.title.clone(),
            user: item.user.clone(),
            progress: item.progress.as_ref().map(ProgressJson::from),
            error: item.error.as_ref().map(ErrorJson::from),
            warnings: item.warnings.clone(),
            created_at: clock::rfc3339(item.created_at),
            updated_at: clock::rfc3339(item.updated_at),
            completed_at: item.completed_at.map(clock::rfc3339),
            metadata: MetadataJson::of(ctx, item, renditions, admin),
        }
    }
}
