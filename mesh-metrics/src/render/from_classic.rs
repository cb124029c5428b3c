//! Re-expresses a classic exposition (the `metrics` facade's, as
//! `metrics-exporter-prometheus` renders it) as OpenMetrics families.
//!
//! The samples are kept byte for byte; what changes is the metadata (a
//! counter's family name loses `_total`, HELP escapes `"`) and whatever the
//! classic format allows but OpenMetrics does not: a counter without `_total`
//! becomes `unknown`, a histogram whose `_sum` is negative loses `_sum` and
//! `_count`, and a family whose sample names another family already claimed is
//! left out rather than breaking the document.

use std::collections::HashMap;

use super::openmetrics::{COUNTER_SUFFIXES, Claimed, HISTOGRAM_SUFFIXES, SUMMARY_SUFFIXES, header};

/// One family of the classic text: its metadata lines and sample lines.
#[derive(Debug)]
pub(crate) struct Block<'a> {
    pub(crate) name: &'a str,
    pub(crate) help: Option<&'a str>,
    pub(crate) kind: &'a str,
    pub(crate) samples: Vec<&'a str>,
}

/// Appends the families of `text` that `wanted` names as OpenMetrics,
/// returning the names of those left out because their sample names were
/// already claimed.
pub(crate) fn append(
    out: &mut String,
    text: &str,
    claimed: &mut Claimed,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut skipped = Vec::new();
    // Every family claims its sample names, asked for or not: which family
    // owns a name must not depend on the filter.
    for block in blocks(text) {
        let wanted = wanted(block.name);
        if !emit(out, &block, claimed, wanted) && wanted {
            skipped.push(block.name.to_owned());
        }
    }
    skipped
}

pub(crate) fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut blocks: Vec<Block<'_>> = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            match blocks.last_mut() {
                Some(block) if block.name == name && block.help.is_none() && block.samples.is_empty() => {
                    block.help = Some(help);
                }
                _ => blocks.push(Block { name, help: Some(help), kind: "untyped", samples: Vec::new() }),
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            match blocks.last_mut() {
                Some(block) if block.name == name && block.samples.is_empty() => block.kind = kind.trim(),
                _ => blocks.push(Block { name, help: None, kind: kind.trim(), samples: Vec::new() }),
            }
        } else if line.starts_with('#') {
            continue;
        } else {
            let name = sample_name(line);
            match blocks.last_mut() {
                Some(block) if name.starts_with(block.name) => block.samples.push(line),
                _ => blocks.push(Block { name, help: None, kind: "untyped", samples: vec![line] }),
            }
        }
    }
    blocks
}

fn sample_name(line: &str) -> &str {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    line.get(..end).unwrap_or(line)
}

/// Writes one block; `false` if it cannot be expressed without clashing.
/// Claims the block's sample names and, when `write`, writes it. `false` if
/// its names were taken.
fn emit(out: &mut String, block: &Block<'_>, claimed: &mut Claimed, write: bool) -> bool {
    let (family, kind, suffixes): (&str, &str, &[&str]) = match block.kind {
        "counter" => match block.name.strip_suffix("_total") {
            Some(base) if !base.is_empty() => (base, "counter", COUNTER_SUFFIXES),
            _ => (block.name, "unknown", &[]),
        },
        "gauge" => (block.name, "gauge", &[]),
        "histogram" => (block.name, "histogram", HISTOGRAM_SUFFIXES),
        "summary" => (block.name, "summary", SUMMARY_SUFFIXES),
        _ => (block.name, "unknown", &[]),
    };
    let owns = |line: &&str| {
        let name = sample_name(line);
        name.strip_prefix(family).is_some_and(|suffix| suffix.is_empty() || suffixes.contains(&suffix))
    };
    if !block.samples.iter().all(owns) || !claimed.claim(family, suffixes) {
        return false;
    }
    if !write {
        return true;
    }
    header(out, family, &unescape_help(block.help.unwrap_or_default()), kind);
    let drop_sum = kind == "histogram" && block.samples.iter().any(|line| negative_sum_or_bound(family, line));
    for line in &block.samples {
        let name = sample_name(line);
        if drop_sum && (name.ends_with("_sum") || name.ends_with("_count")) {
            continue;
        }
        // OpenMetrics writes `le` and `quantile` as canonical numbers.
        let label = match kind {
            "histogram" => Some("le"),
            "summary" => Some("quantile"),
            _ => None,
        };
        match label.and_then(|label| canonical_label(line, label)) {
            Some(rewritten) => out.push_str(&rewritten),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    true
}

/// `line` with the value of its `label` label as a canonical number, if it
/// has that label and its value is a number.
fn canonical_label(line: &str, label: &str) -> Option<String> {
    let marker = format!("{label}=\"");
    let start =
        line.find(&format!("{{{marker}")).map(|i| i + 1).or_else(|| line.find(&format!(",{marker}")).map(|i| i + 1))?;
    let value_start = start + marker.len();
    let value_end = value_start + line.get(value_start..)?.find('"')?;
    let value = line.get(value_start..value_end)?;
    let number: f64 = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(format!("{}{}{}", line.get(..value_start)?, super::number::canonical(number), line.get(value_end..)?))
}

/// A `_sum` below zero (or NaN), or a bucket with a negative bound: either
/// forbids `_sum` in OpenMetrics.
fn negative_sum_or_bound(family: &str, line: &str) -> bool {
    let name = sample_name(line);
    if name.strip_prefix(family) == Some("_sum") {
        let value = line.rsplit(' ').next().unwrap_or_default();
        return value.parse::<f64>().map_or(true, |v| v.is_nan() || v < 0.0);
    }
    name.strip_prefix(family) == Some("_bucket") && line.contains("le=\"-")
}

/// The classic format escapes `\` and line feed in HELP; undo that so the
/// OpenMetrics writer can escape by its own rules.
pub(crate) fn unescape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('\\')) => {
                out.push('\\');
                chars.next();
            }
            ('\\', Some('n')) => {
                out.push('\n');
                chars.next();
            }
            (c, _) => out.push(c),
        }
    }
    out
}

/// One sample line of a classic text.
#[derive(Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// Reads `name{k="v",...} value` as metrics-exporter-prometheus writes it
/// (label values escape `\\`, `"` and newlines). `None` for anything else.
pub(crate) fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line.get(..name_end)?.to_owned();
    let mut rest = line.get(name_end..)?;
    let mut labels = Vec::new();
    if let Some(mut inside) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inside.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inside.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.to_owned(), value));
            inside = after.get(end + 1..)?;
            inside = inside.strip_prefix(',').unwrap_or(inside);
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// The samples of one histogram or summary series.
pub(crate) struct Grouped<'a> {
    pub(crate) labels: &'a [(String, String)],
    /// `(le, cumulative count)`; `None` for an `le` that is not a number.
    pub(crate) buckets: Vec<Option<(f64, f64)>>,
    pub(crate) quantiles: Vec<(f64, f64)>,
    pub(crate) count: Option<f64>,
    pub(crate) sum: Option<f64>,
}

/// A histogram series read whole (see [`Grouped::whole_histogram`]).
pub(crate) struct WholeHistogram {
    /// `_count`, equal to the `+Inf` bucket's.
    pub(crate) count: f64,
    pub(crate) sum: Option<f64>,
    /// `(le, cumulative count)` by bound, the last `+Inf`.
    pub(crate) buckets: Vec<(f64, f64)>,
}

impl Grouped<'_> {
    /// The series as a whole histogram, or `None` if a bucket's `le` is not
    /// a number, the `+Inf` bucket or `_count` is missing, they disagree, or
    /// the cumulative counts go down or are not finite: a reader would get a
    /// count missing or wrong.
    pub(crate) fn whole_histogram(&self) -> Option<WholeHistogram> {
        let mut buckets: Vec<(f64, f64)> = self.buckets.iter().copied().collect::<Option<_>>()?;
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let count = self.count?;
        if buckets.last().map(|(le, total)| (*le, *total)) != Some((f64::INFINITY, count)) {
            return None;
        }
        let mut below = 0.0;
        for (_, total) in &buckets {
            if !total.is_finite() || *total < below {
                return None;
            }
            below = *total;
        }
        Some(WholeHistogram { count, sum: self.sum, buckets })
    }

    /// A summary series' `_count`, or `None` if it is missing or not a whole
    /// number at or above zero (a summary's count has no `_float` form in
    /// protobuf).
    pub(crate) fn whole_summary_count(&self) -> Option<u64> {
        self.count.filter(|count| count.fract() == 0.0 && (0.0..u64::MAX as f64).contains(count)).map(|c| c as u64)
    }
}

/// Groups a histogram's or summary's samples by their labels (less `le` and
/// `quantile`), in the order they first appear.
pub(crate) fn grouped<'a>(family: &str, samples: &'a [Sample]) -> Vec<Grouped<'a>> {
    let mut groups: Vec<Grouped<'a>> = Vec::new();
    let mut index: HashMap<Vec<&'a (String, String)>, usize> = HashMap::new();
    for sample in samples {
        let key: Vec<&(String, String)> =
            sample.labels.iter().filter(|(name, _)| name != "le" && name != "quantile").collect();
        let position = *index.entry(key).or_insert_with(|| {
            groups.push(Grouped {
                labels: &sample.labels,
                buckets: Vec::new(),
                quantiles: Vec::new(),
                count: None,
                sum: None,
            });
            groups.len() - 1
        });
        let Some(group) = groups.get_mut(position) else { continue };
        let label = |name: &str| sample.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        match sample.name.strip_prefix(family) {
            Some("_bucket") => {
                let le = label("le").and_then(|le| match le {
                    "+Inf" => Some(f64::INFINITY),
                    other => other.parse::<f64>().ok().filter(|le| le.is_finite()),
                });
                group.buckets.push(le.map(|le| (le, sample.value)));
            }
            Some("_count") => group.count = Some(sample.value),
            Some("_sum") => group.sum = Some(sample.value),
            Some("") => {
                if let Some(quantile) = label("quantile").and_then(|q| q.parse::<f64>().ok()) {
                    group.quantiles.push((quantile, sample.value));
                }
            }
            _ => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(text: &str) -> (String, Vec<String>) {
        let mut out = String::new();
        let skipped = append(&mut out, text, &mut Claimed::default(), &|_| true);
        (out, skipped)
    }

    #[test]
    fn reads_classic_sample_lines_with_escapes() {
        let parsed = sample(r#"latency_bucket{room="a\"b\\c\nd",le="0.5"} 3"#).expect("a sample");
        assert_eq!(parsed.name, "latency_bucket");
        assert_eq!(parsed.labels, vec![("room".into(), "a\"b\\c\nd".into()), ("le".into(), "0.5".into())]);
        assert_eq!(parsed.value, 3.0);
        assert_eq!(sample("up 1").map(|s| (s.labels.len(), s.value)), Some((0, 1.0)));
        assert!(sample("x{a=\"unterminated} 1").is_none());
        let timestamped = sample(r#"jobs_total{queue="a",le="+Inf"} 3 1700000000"#).expect("a sample");
        assert_eq!((timestamped.labels.len(), timestamped.value), (2, 3.0));
    }

    #[test]
    fn counters_lose_total_in_metadata_and_help_escapes_quotes() {
        let (out, skipped) = translate(
            "# HELP jobs_total Jobs \"done\" \\\\ today\n# TYPE jobs_total counter\njobs_total{queue=\"a\"} 3\n\n",
        );
        assert!(skipped.is_empty());
        assert_eq!(out, "# HELP jobs Jobs \\\"done\\\" \\\\ today\n# TYPE jobs counter\njobs_total{queue=\"a\"} 3\n");
    }

    #[test]
    fn what_openmetrics_forbids_is_reexpressed_or_left_out() {
        let (out, _) = translate("# TYPE hits counter\nhits 2\n");
        assert_eq!(out, "# TYPE hits unknown\nhits 2\n");

        let histogram = "# TYPE delta histogram\ndelta_bucket{le=\"1\"} 1\ndelta_bucket{le=\"+Inf\"} 2\n\
                         delta_sum -4.5\ndelta_count 2\n";
        let (out, _) = translate(histogram);
        assert_eq!(out, "# TYPE delta histogram\ndelta_bucket{le=\"1.0\"} 1\ndelta_bucket{le=\"+Inf\"} 2\n");

        let (out, skipped) = translate("# TYPE a_total counter\na_total 1\n# TYPE a gauge\na 2\n");
        assert_eq!(out, "# TYPE a counter\na_total 1\n");
        assert_eq!(skipped, vec!["a".to_owned()]);
    }
}
