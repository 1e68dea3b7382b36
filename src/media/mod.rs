//! External media tools: the only code that spawns processes (BRIEF §6).
//!
//! `process` is the wrapper every tool runs through; the other modules build fixed argument
//! lists and interpret what the tools say.

pub mod compression;
pub mod cookies;
pub mod direct;
pub mod ffmpeg;
pub mod ffprobe;
pub mod image;
pub mod mp4;
pub mod process;
pub mod processing;
pub mod similarity;
pub mod subtitles;
pub mod tools;
pub mod ytdlp;
