//! What a person adds to an item: their own title, tags and a note. The source's values stay
//! as they were, beside these.
//!
//! A change arrives as a JSON object (`PATCH /api/items/{id}`) where each key is optional: a
//! missing key leaves that field alone, `null` clears it. Text is cleaned like the source's
//! (no control or bidi characters, capped): people paste from anywhere.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::source_meta::multiline;
use super::text;

pub const TITLE_MAX: usize = 300;
pub const TAG_MAX: usize = 100;
pub const TAGS_MAX: usize = 50;
pub const NOTE_MAX: usize = 10_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFields {
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub note: Option<String>,
}

/// A requested change: `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldsPatch {
    pub title: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub note: Option<Option<String>>,
}

impl FieldsPatch {
    /// Reads and checks a change; the error says what is wrong in words a person can act on.
    pub fn from_json(body: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("the body must be a JSON object: {e}"))?;
        let Value::Object(map) = value else {
            return Err("the body must be a JSON object like {\"title\": \"…\", \"tags\": [\"…\"], \"note\": \"…\"}".into());
        };
        let mut patch = Self::default();
        for (key, value) in map {
            match key.as_str() {
                "title" => {
                    patch.title = Some(optional_text("title", &value, |t| {
                        text::clean(t, TITLE_MAX)
                    })?)
                }
                "note" => {
                    patch.note = Some(optional_text("note", &value, |t| multiline(t, NOTE_MAX))?)
                }
                "tags" => patch.tags = Some(tags(&value)?),
                other => {
                    return Err(format!(
                        "unknown field '{}': only title, tags and note can be set",
                        text::clean(other, 40)
                    ));
                }
            }
        }
        if patch == Self::default() {
            return Err("nothing to change: give title, tags or note".into());
        }
        Ok(patch)
    }

    pub fn apply(&self, current: &UserFields) -> UserFields {
        UserFields {
            title: self.title.clone().unwrap_or_else(|| current.title.clone()),
            tags: self.tags.clone().unwrap_or_else(|| current.tags.clone()),
            note: self.note.clone().unwrap_or_else(|| current.note.clone()),
        }
    }
}

/// A string (cleaned; empty means cleared) or null.
fn optional_text(
    key: &str,
    value: &Value,
    clean: impl Fn(&str) -> String,
) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(clean(s)).filter(|s| !s.is_empty())),
        _ => Err(format!("{key} must be a string or null")),
    }
}

/// A list of strings, each cleaned, empty ones dropped, the same tag (ignoring case) once.
fn tags(value: &Value) -> Result<Vec<String>, String> {
    let list = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(list) => list,
        _ => return Err("tags must be a list of strings".into()),
    };
    let mut tags: Vec<String> = Vec::new();
    for tag in list {
        let Value::String(tag) = tag else {
            return Err("tags must be a list of strings".into());
        };
        let tag = text::clean(tag, TAG_MAX);
        if !tag.is_empty() && !tags.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            tags.push(tag);
        }
    }
    if tags.len() > TAGS_MAX {
        return Err(format!("at most {TAGS_MAX} tags; {} given", tags.len()));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> Result<FieldsPatch, String> {
        FieldsPatch::from_json(json.as_bytes())
    }

    #[test]
    fn a_patch_sets_clears_or_leaves_each_field() {
        let current = UserFields {
            title: Some("Old".into()),
            tags: vec!["a".into()],
            note: Some("kept".into()),
        };
        let p = patch(
            r#"{"title": "  New\u0007 title\u202e ", "tags": ["Rust", "rust", " ", "Talks"]}"#,
        )
        .unwrap();
        let next = p.apply(&current);
        assert_eq!(next.title.as_deref(), Some("New title"));
        assert_eq!(next.tags, ["Rust", "Talks"]);
        assert_eq!(next.note.as_deref(), Some("kept"));
        let cleared = patch(r#"{"title": null, "note": "", "tags": []}"#)
            .unwrap()
            .apply(&current);
        assert_eq!(cleared, UserFields::default());
        let note = patch(r#"{"note": "line one\n\n\n\nline two"}"#)
            .unwrap()
            .apply(&current);
        assert_eq!(note.note.as_deref(), Some("line one\n\nline two"));
    }

    #[test]
    fn bad_patches_say_what_is_wrong() {
        for (body, says) in [
            ("[]", "JSON object"),
            ("nope", "JSON object"),
            ("{}", "nothing to change"),
            (r#"{"owner": "x"}"#, "unknown field 'owner'"),
            (r#"{"title": 5}"#, "title must be"),
            (r#"{"tags": "a,b"}"#, "list of strings"),
            (r#"{"tags": [1]}"#, "list of strings"),
        ] {
            let err = patch(body).unwrap_err();
            assert!(err.contains(says), "{body}: {err}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        let body = serde_json::json!({ "tags": many }).to_string();
        assert!(patch(&body).unwrap_err().contains("at most 50"));
        let long = "x".repeat(20_000);
        let capped =
            patch(&serde_json::json!({ "title": long, "note": long }).to_string()).unwrap();
        assert_eq!(
            capped.title.unwrap().unwrap().chars().count(),
            TITLE_MAX + 1
        );
        assert!(capped.note.unwrap().unwrap().chars().count() <= NOTE_MAX);
    }
}
