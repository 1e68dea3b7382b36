//! `prsnl tools update`: upgrade the configured yt-dlp with the pip of the Python that runs it.

use std::process::ExitCode;

use crate::media::ytdlp::install;
use crate::settings::Settings;

pub async fn update(settings: &Settings) -> ExitCode {
    let configured = &settings.download.ytdlp_path;
    let found = match install::find(configured).await {
        Ok(found) => found,
        Err(refusal) => {
            eprintln!("prsnl tools update: {refusal}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "prsnl tools update: upgrading yt-dlp {} in {} with its pip",
        found.version,
        found.python.display()
    );
    match install::upgrade(&found).await {
        Ok(done) if done.from == done.to => {
            println!(
                "yt-dlp {} is already the newest release ({})",
                done.to,
                found.script.display()
            );
            ExitCode::SUCCESS
        }
        Ok(done) => {
            // New downloads start the new version at once; readiness and the metrics show it
            // when their tool probe is next refreshed (at most five minutes).
            println!(
                "yt-dlp updated from {} to {} ({})",
                done.from,
                done.to,
                found.script.display()
            );
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            eprintln!("prsnl tools update: {refusal}");
            ExitCode::FAILURE
        }
    }
}
