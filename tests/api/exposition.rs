//! Reading a Prometheus text exposition in tests: series by name and label subset.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
    /// Family name → type, from the `# TYPE` lines.
    pub families: BTreeMap<String, String>,
}

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        let mut families = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                families.insert(
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                );
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => (name.to_string(), parse_labels(rest.trim_end_matches('}'))),
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Self {
            text: text.to_string(),
            samples,
            families,
        }
    }

    /// The sum of the series of `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The family a sample belongs to (`x_bucket` → `x` for histograms).
    pub fn family_of(&self, sample: &str) -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix)
                && self.families.get(base).map(String::as_str) == Some("histogram")
            {
                return base.to_string();
            }
        }
        sample.to_string()
    }

    /// Distinct series per family.
    pub fn series_per_family(&self) -> BTreeMap<String, usize> {
        let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in &self.samples {
            series
                .entry(self.family_of(&s.name))
                .or_default()
                .insert(format!("{}{:?}", s.name, s.labels));
        }
        series.into_iter().map(|(k, v)| (k, v.len())).collect()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end..];
    }
    labels
}

#[test]
fn parses_samples_and_labels() {
    let scrape = Scrape::parse(
        "# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"uote\"} 3\na_total{x=\"2\",y=\"\"} 4\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\nplain 7\n",
    );
    assert_eq!(scrape.value("a_total", &[]), 7.0);
    assert_eq!(scrape.value("a_total", &[("y", "q\"uote")]), 3.0);
    assert_eq!(scrape.value("plain", &[]), 7.0);
    assert_eq!(scrape.family_of("h_bucket"), "h");
    assert_eq!(scrape.series_per_family()["h"], 2);
}
