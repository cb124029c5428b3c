//! A strict reader of both exposition formats, in Rust, so the core claims
//! (exact totals, exemplar placement, escaping round-trips) are asserted
//! whatever is installed. It refuses what Prometheus' own parsers refuse and
//! a little more: names outside the grammar, unknown escapes, a repeated
//! label, a repeated series, a family split in two, `# TYPE` after samples,
//! an exemplar anywhere but on a bucket or a counter total (or over 128
//! characters), a histogram whose buckets go down or whose `+Inf` is not its
//! `_count`, and an OpenMetrics text that does not end in `# EOF`.

use std::collections::{HashMap, HashSet};

use crate::tools::{Format, ParsedExemplar, ParsedSample};

/// Parses `text`; `Err` says which line is wrong and why.
pub fn parse(format: Format, text: &str) -> Result<Vec<ParsedSample>, String> {
    let body = match format {
        Format::Classic => text,
        Format::OpenMetrics => {
            let body = text.strip_suffix("# EOF\n").or_else(|| text.strip_suffix("# EOF"));
            body.ok_or("an OpenMetrics text ends with `# EOF`")?
        }
    };
    let mut reader = Reader { format, ..Reader::default() };
    for (number, line) in body.split_terminator('\n').enumerate() {
        reader.line(line).map_err(|error| format!("line {}: {error}: {line:?}", number + 1))?;
    }
    reader.check_histograms()?;
    Ok(reader.samples)
}

#[derive(Default)]
struct Reader {
    format: Format,
    samples: Vec<ParsedSample>,
    /// Family name -> type, in the order seen.
    types: HashMap<String, String>,
    /// Families whose samples have ended (another family started).
    closed: HashSet<String>,
    current: Option<String>,
    series: HashSet<(String, String)>,
}

impl Reader {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.is_empty() {
            return if self.format == Format::OpenMetrics { Err("empty line".into()) } else { Ok(()) };
        }
        if let Some(comment) = line.strip_prefix('#') {
            return self.comment(comment);
        }
        self.sample(line)
    }

    fn comment(&mut self, comment: &str) -> Result<(), String> {
        let mut parts = comment.strip_prefix(' ').unwrap_or(comment).splitn(3, ' ');
        let keyword = parts.next().unwrap_or_default();
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
            return if self.format == Format::OpenMetrics { Err("unknown comment".into()) } else { Ok(()) };
        }
        let name = parts.next().ok_or("a metadata line names its family")?;
        check_metric_name(name)?;
        let rest = parts.next().unwrap_or_default();
        self.enter(name)?;
        match keyword {
            "TYPE" => {
                let known: &[&str] = match self.format {
                    Format::Classic => &["counter", "gauge", "histogram", "summary", "untyped"],
                    Format::OpenMetrics => {
                        &["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"]
                    }
                };
                if !known.contains(&rest) {
                    return Err(format!("unknown type {rest}"));
                }
                let mut types = self.types.clone();
                types.insert(name.to_owned(), rest.to_owned());
                if self.samples.iter().any(|s| family_of(&s.name, &types) == name) {
                    return Err("# TYPE after the family's samples".into());
                }
                if self.types.insert(name.to_owned(), rest.to_owned()).is_some() {
                    return Err("a second # TYPE for one family".into());
                }
            }
            "HELP" => {
                unescape(rest, self.format == Format::OpenMetrics)?;
            }
            _ => {
                if self.format == Format::OpenMetrics && !rest.is_empty() && !name.ends_with(&format!("_{rest}")) {
                    return Err("a unit is a suffix of the family name".into());
                }
            }
        }
        Ok(())
    }

    /// Moves to family `name`: a family whose lines ended may not come back.
    fn enter(&mut self, name: &str) -> Result<(), String> {
        if self.current.as_deref() == Some(name) {
            return Ok(());
        }
        if self.closed.contains(name) {
            return Err(format!("the family {name} appears in two places"));
        }
        if let Some(previous) = self.current.replace(name.to_owned()) {
            self.closed.insert(previous);
        }
        Ok(())
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let name_end = line.find(['{', ' ']).ok_or("a sample has a value")?;
        let name = &line[..name_end];
        check_metric_name(name)?;
        let (labels, rest) = if line[name_end..].starts_with('{') {
            let (labels, rest) = parse_labels(&line[name_end + 1..], self.format == Format::OpenMetrics)?;
            (labels, rest)
        } else {
            (Vec::new(), &line[name_end..])
        };
        // After the labels, no quoted text remains but an exemplar's own.
        let (rest, exemplar) = match rest.split_once(" # ") {
            Some((sample, exemplar)) if self.format == Format::OpenMetrics => (sample, Some(exemplar)),
            _ => (rest, None),
        };
        let mut fields = rest.strip_prefix(' ').ok_or("a space before the value")?.split(' ');
        let value = parse_value(fields.next().ok_or("a value")?)?;
        if let Some(timestamp) = fields.next() {
            parse_timestamp(timestamp)?;
        }
        if fields.next().is_some() {
            return Err("text after the timestamp".into());
        }
        let family = family_of(name, &self.types).to_owned();
        self.enter(&family)?;
        let kind = self.types.get(&family).map(String::as_str).unwrap_or("untyped");
        if self.format == Format::OpenMetrics {
            check_openmetrics_suffix(name, &family, kind)?;
        }
        let exemplar = exemplar.map(|text| parse_exemplar(text, name, kind)).transpose()?;
        let mut sorted = labels.clone();
        sorted.sort();
        let key = (name.to_owned(), format!("{sorted:?}"));
        if !self.series.insert(key) {
            return Err("the same series twice".into());
        }
        let text = sorted.iter().map(|(k, v)| format!("{k}={}", clean(v))).collect::<Vec<_>>().join(",");
        self.samples.push(ParsedSample { name: name.to_owned(), labels: text, value, label_pairs: sorted, exemplar });
        Ok(())
    }

    /// In every histogram family: cumulative buckets that never go down and
    /// end at `+Inf == _count`. The classic format has a `_count` and a
    /// `_sum` for each series; OpenMetrics has both or neither (it leaves
    /// them out of a histogram with negative observations).
    fn check_histograms(&self) -> Result<(), String> {
        let mut buckets: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
        let mut counts: HashMap<String, f64> = HashMap::new();
        let mut sums: HashSet<String> = HashSet::new();
        let others = |pairs: &[(String, String)]| pairs.iter().filter(|(k, _)| k != "le").cloned().collect::<Vec<_>>();
        for sample in &self.samples {
            let family = family_of(&sample.name, &self.types);
            if self.types.get(family).is_none_or(|kind| kind != "histogram") {
                continue;
            }
            let series = format!("{family}{:?}", others(&sample.label_pairs));
            match &sample.name[family.len()..] {
                "_bucket" => {
                    let le = sample.label_pairs.iter().find(|(k, _)| k == "le").ok_or("a bucket without le")?;
                    buckets.entry(series).or_default().push((parse_value(&le.1)?, sample.value));
                }
                "_count" => {
                    counts.insert(series, sample.value);
                }
                "_sum" => {
                    sums.insert(series);
                }
                _ => {}
            }
        }
        for (series, mut list) in buckets {
            list.sort_by(|a, b| a.0.total_cmp(&b.0));
            if list.windows(2).any(|pair| pair[1].1 < pair[0].1) {
                return Err(format!("{series}: buckets go down"));
            }
            let inf = list.last().filter(|(le, _)| *le == f64::INFINITY).ok_or(format!("{series}: no +Inf bucket"))?;
            let count = counts.get(&series);
            if let Some(count) = count
                && *count != inf.1
            {
                return Err(format!("{series}: +Inf {} is not _count {count}", inf.1));
            }
            let optional = self.format == Format::OpenMetrics && count.is_none() && !sums.contains(&series);
            if !optional && count.is_none() {
                return Err(format!("{series}: no _count"));
            }
            if !optional && !sums.contains(&series) {
                return Err(format!("{series}: no _sum"));
            }
        }
        Ok(())
    }
}

/// The family a sample belongs to: its name, or its name less a suffix that
/// its declared type gives it.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    const SUFFIXES: &[(&str, &[&str])] = &[
        ("_bucket", &["histogram", "gaugehistogram"]),
        ("_count", &["histogram", "summary", "gaugehistogram"]),
        ("_sum", &["histogram", "summary", "gaugehistogram"]),
        ("_created", &["histogram", "summary", "counter"]),
        ("_total", &["counter"]),
        ("_info", &["info"]),
        ("_gcount", &["gaugehistogram"]),
        ("_gsum", &["gaugehistogram"]),
    ];
    for (suffix, kinds) in SUFFIXES {
        if let Some(family) = name.strip_suffix(suffix)
            && types.get(family).is_some_and(|kind| kinds.contains(&kind.as_str()))
        {
            return family;
        }
    }
    name
}

fn check_openmetrics_suffix(name: &str, family: &str, kind: &str) -> Result<(), String> {
    let suffix = &name[family.len()..];
    let allowed: &[&str] = match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_count", "_sum", "_created"],
        "summary" => &["_count", "_sum", "_created", ""],
        "info" => &["_info"],
        _ => &[""],
    };
    if allowed.contains(&suffix) { Ok(()) } else { Err(format!("{name} is not a sample of a {kind}")) }
}

fn parse_exemplar(text: &str, name: &str, kind: &str) -> Result<ParsedExemplar, String> {
    let on_bucket = name.ends_with("_bucket") && kind == "histogram";
    let on_total = name.ends_with("_total") && kind == "counter";
    if !(on_bucket || on_total) {
        return Err("an exemplar only on a bucket or a counter's _total".into());
    }
    let rest = text.strip_prefix('{').ok_or("an exemplar starts with its labels")?;
    let (labels, rest) = parse_labels(rest, true)?;
    let length: usize = labels.iter().map(|(k, v)| k.chars().count() + v.chars().count()).sum();
    if length > 128 {
        return Err(format!("exemplar labels of {length} characters; at most 128"));
    }
    let mut fields = rest.strip_prefix(' ').ok_or("a space before the exemplar value")?.split(' ');
    let value = parse_value(fields.next().ok_or("an exemplar value")?)?;
    let timestamp = match fields.next() {
        Some(t) => parse_timestamp(t)?,
        None => f64::NAN,
    };
    if fields.next().is_some() {
        return Err("text after the exemplar's timestamp".into());
    }
    let trace_id = labels.iter().find(|(k, _)| k == "trace_id").map(|(_, v)| v.clone()).unwrap_or_default();
    Ok(ParsedExemplar { trace_id, value, timestamp })
}

/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

/// Reads `name="value",...}` and returns the pairs and what follows `}`.
fn parse_labels(mut text: &str, openmetrics: bool) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (name, rest) = text.split_once("=\"").ok_or("a label is name=\"value\"")?;
        check_label_name(name)?;
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("unknown escape {other:?} in a label value")),
                },
                Some((_, '\n')) => return Err("a raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        text = &rest[end + 1..];
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
            if openmetrics && text.starts_with('}') {
                return Err("a trailing comma in OpenMetrics labels".into());
            }
        } else if !text.starts_with('}') {
            return Err("labels are separated by commas".into());
        }
    }
}

fn unescape(text: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            other => return Err(format!("unknown escape {other:?}")),
        }
    }
    Ok(out)
}

/// A sample value, as Go's `strconv.ParseFloat` (which Prometheus uses)
/// reads it: `Inf`, `NaN` in any case, with an optional sign on `Inf`.
fn parse_value(text: &str) -> Result<f64, String> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Ok(f64::INFINITY),
        "-inf" | "-infinity" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        _ if lower.contains(|c: char| c.is_ascii_alphabetic() && c != 'e') => Err(format!("bad value {text}")),
        _ => text.parse::<f64>().map_err(|_| format!("bad value {text}")),
    }
}

/// A timestamp: a finite number.
fn parse_timestamp(text: &str) -> Result<f64, String> {
    text.parse::<f64>().ok().filter(|t| t.is_finite()).ok_or_else(|| format!("bad timestamp {text}"))
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("bad label name {name:?}"))
    }
}

/// As the Python script writes label values: `\`, newline and tab escaped.
fn clean(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_is_valid_and_refuses_what_is_not() {
        let good = "# HELP x_total A \"quoted\" help\\n.\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\"} 3\n";
        let samples = parse(Format::Classic, good).expect("valid classic");
        assert_eq!(samples[0].label_pairs, vec![("a".to_owned(), "q\"\\\n".to_owned())]);
        let om = "# TYPE x counter\nx_total 3 # {trace_id=\"ab\"} 1.0 1.5\n# TYPE h histogram\n\
                  h_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 2\nh_sum 3.0\n# EOF\n";
        let samples = parse(Format::OpenMetrics, om).expect("valid openmetrics");
        assert_eq!(samples[0].exemplar.as_ref().map(|e| e.trace_id.as_str()), Some("ab"));
        let refused = [
            (Format::OpenMetrics, "# TYPE x counter\nx_total 3\n", "ends with `# EOF`"),
            (Format::Classic, "x{a=\"\\t\"} 1\n", "unknown escape"),
            (Format::Classic, "x{a=\"1\",a=\"2\"} 1\n", "label a twice"),
            (Format::Classic, "x 1\nx 2\n", "the same series twice"),
            (Format::Classic, "x 1\ny 1\nx{a=\"b\"} 1\n", "appears in two places"),
            (Format::Classic, "x 1\n# TYPE x gauge\n", "TYPE after the family's samples"),
            (Format::OpenMetrics, "x_total 1\n# TYPE x counter\n# EOF\n", "TYPE after the family's samples"),
            (Format::Classic, "1x 1\n", "bad metric name"),
            (Format::Classic, "x 1 NaN\n", "bad timestamp"),
            (Format::OpenMetrics, "# TYPE g gauge\ng 1 # {trace_id=\"a\"} 1\n# EOF\n", "only on a bucket"),
            (
                Format::OpenMetrics,
                "# TYPE c counter\nc_total 1 # {trace_id=\"a\"} 1 2 3\n# EOF\n",
                "after the exemplar",
            ),
            (
                Format::OpenMetrics,
                "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n# EOF\n",
                "buckets go down",
            ),
            (
                Format::OpenMetrics,
                "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\nh_sum 0\n# EOF\n",
                "is not _count",
            ),
            (Format::OpenMetrics, "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\n# EOF\n", "no _count"),
            (Format::Classic, "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\n", "no _count"),
            (Format::Classic, "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "no _sum"),
        ];
        for (format, text, reason) in refused {
            match parse(format, text) {
                Ok(_) => panic!("accepted {text:?}"),
                Err(error) => assert!(error.contains(reason), "{text:?} refused for {error:?}, not {reason:?}"),
            }
        }
        // Valid text that a looser reading would refuse.
        let accepted =
            [(Format::Classic, "# TYPE s3_bucket gauge\ns3_bucket 1\n"), (Format::Classic, "x inf\ny -Inf\nz nan\n")];
        for (format, text) in accepted {
            parse(format, text).unwrap_or_else(|e| panic!("refused {text:?}: {e}"));
        }
    }
}
