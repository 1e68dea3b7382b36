//! The baseline of `bench/search`: each search query run directly through the library's own
//! search (`db::search::find`, sqlx, one pool), with no HTTP, authentication or JSON in the
//! way. Prints one JSON line per query with its latencies in milliseconds.
//!
//! Usage: PRSNL_DATABASE__URL=… search_direct QUERIES_FILE ROUNDS

use std::time::Instant;

use prsnl::db::Db;
use prsnl::db::search::{Find, Sort, find};
use prsnl::domain::search::Query;
use prsnl::settings::Settings;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (file, rounds) = match args.as_slice() {
        [_, file, rounds] => (file, rounds.parse::<usize>().expect("ROUNDS is a number")),
        _ => panic!("usage: search_direct QUERIES_FILE ROUNDS"),
    };
    let settings = Settings::load(None).expect("configuration");
    let db = Db::connect(&settings.database).await.expect("database");
    let queries = std::fs::read_to_string(file).expect("queries file");
    for text in queries.lines().filter(|l| !l.is_empty()) {
        let query = Query::parse(text).expect("a query that parses");
        let request = Find {
            query: Some(query),
            sort: Sort::Relevance,
            limit: 51,
            ..Find::default()
        };
        let mut times = Vec::with_capacity(rounds);
        let mut found = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            found = find(&db, &request).await.expect("search").len();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "{}",
            serde_json::json!({"query": text, "found": found, "p50_ms": at(0.5), "p99_ms": at(0.99)})
        );
    }
}
