//! Exposition of the registry's families as text.
//!
//! One pass per scrape, straight into a `String`: no intermediate structures.
//! The classic format and OpenMetrics share the label and number writers.

pub(crate) mod classic;
pub(crate) mod escape;
pub(crate) mod from_classic;
pub(crate) mod number;
mod openmetrics;
pub(crate) mod protobuf;

use std::sync::Arc;

use crate::registry::{Family, Registry};

/// A whole classic document: `families`, then the families of `facade` (a
/// classic exposition), each only if `wanted` names it. Returns it with the
/// names of the families left out because their sample names clashed.
pub(crate) fn classic_document(
    families: &[Arc<Family>],
    global: &GlobalLabels,
    facade: Option<&str>,
    wanted: &dyn Fn(&str) -> bool,
) -> (String, Vec<String>) {
    let mut out = String::with_capacity(16 * 1024);
    let mut claimed = openmetrics::Claimed::default();
    let mut skipped = classic::render(&mut out, families, global, &mut claimed, wanted);
    if let Some(facade) = facade {
        skipped.extend(classic::append(&mut out, facade, &mut claimed, wanted));
    }
    (out, skipped)
}

/// A whole OpenMetrics document: `families`, then `facade` (a classic
/// exposition, re-expressed), then `# EOF`, each family only if `wanted`
/// names it. Returns it with the names of the families left out because their
/// sample names clashed.
pub(crate) fn openmetrics_document(
    families: &[Arc<Family>],
    global: &GlobalLabels,
    facade: Option<&str>,
    wanted: &dyn Fn(&str) -> bool,
) -> (String, Vec<String>) {
    let mut out = String::with_capacity(16 * 1024);
    let mut claimed = openmetrics::Claimed::default();
    let clock = crate::exemplar::scrape_clock();
    let mut skipped = openmetrics::render(&mut out, families, global, &mut claimed, clock, wanted);
    if let Some(facade) = facade {
        skipped.extend(from_classic::append(&mut out, facade, &mut claimed, wanted));
    }
    out.push_str("# EOF\n");
    (out, skipped)
}

/// The Prometheus protobuf exposition (length-delimited `MetricFamily`
/// messages, the format that carries native histograms) of one registry alone.
pub fn render_protobuf(registry: &Registry) -> Vec<u8> {
    protobuf::document(&registry.families(), &GlobalLabels::default(), None, &|_| true).0
}

/// The classic text exposition (`text/plain; version=0.0.4`) of one registry
/// alone: to serve it from your own HTTP server, or to test against. (The
/// exporter's `/metrics` adds its global labels and the `metrics` facade.)
pub fn render_classic(registry: &Registry) -> String {
    classic_document(&registry.families(), &GlobalLabels::default(), None, &|_| true).0
}

/// The OpenMetrics 1.0.0 exposition of one registry alone, with exemplars.
pub fn render_openmetrics(registry: &Registry) -> String {
    openmetrics_document(&registry.families(), &GlobalLabels::default(), None, &|_| true).0
}

/// Labels added to every series (the builder's `global_label`).
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalLabels {
    pairs: Vec<(String, String)>,
}

impl GlobalLabels {
    pub(crate) fn new(pairs: &[(String, String)]) -> Self {
        Self { pairs: pairs.to_vec() }
    }

    /// The global labels of a family's series, rendered once per family:
    /// `a="x",b="y"`, leaving out any name the family uses itself (the
    /// series' own value wins, and a name never appears twice in a series).
    /// The global labels of a family's series as pairs, leaving out any
    /// name the family uses itself.
    pub(crate) fn pairs_for(&self, names: &[&str]) -> Vec<(&str, &str)> {
        self.pairs
            .iter()
            .filter(|(name, _)| !names.contains(&name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }

    pub(crate) fn for_family(&self, names: &[&str]) -> String {
        let mut out = String::new();
        for (name, value) in self.pairs.iter().filter(|(name, _)| !names.contains(&name.as_str())) {
            if !out.is_empty() {
                out.push(',');
            }
            pair(&mut out, name, value);
        }
        out
    }
}

fn pair(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape::label_value(out, value);
    out.push('"');
}

/// Writes a series' labels without braces: its own (`a="x",b="y"`), then
/// `global` (from [`GlobalLabels::for_family`]). Rendered once per series and
/// reused for every sample line of it.
pub(crate) fn series_labels<'a>(out: &mut String, names: &[&str], values: impl Iterator<Item = &'a str>, global: &str) {
    for (name, value) in names.iter().zip(values) {
        if !out.is_empty() {
            out.push(',');
        }
        pair(out, name, value);
    }
    if !global.is_empty() {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(global);
    }
}

/// Writes `{labels}`, `{labels,extra}`, `{extra}` or nothing.
pub(crate) fn braces(out: &mut String, labels: &str, extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    out.push_str(labels);
    if let Some((name, value)) = extra {
        if !labels.is_empty() {
            out.push(',');
        }
        pair(out, name, value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::{GlobalLabels, braces, series_labels};

    fn show(names: &[&str], values: &[&str], global: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
        let global: Vec<(String, String)> = global.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        let mut labels = String::new();
        series_labels(&mut labels, names, values.iter().copied(), &GlobalLabels::new(&global).for_family(names));
        let mut out = String::from("m");
        braces(&mut out, &labels, extra);
        out
    }

    #[test]
    fn series_labels_then_global_then_extra() {
        assert_eq!(show(&[], &[], &[], None), "m");
        assert_eq!(show(&["a"], &["x\"y"], &[], None), "m{a=\"x\\\"y\"}");
        assert_eq!(show(&[], &[], &[("cluster", "c")], Some(("le", "1"))), "m{cluster=\"c\",le=\"1\"}");
        assert_eq!(show(&["a"], &["x"], &[("cluster", "c")], Some(("le", "1"))), "m{a=\"x\",cluster=\"c\",le=\"1\"}");
        assert_eq!(show(&[], &[], &[], Some(("le", "+Inf"))), "m{le=\"+Inf\"}");
    }

    #[test]
    fn a_global_label_never_duplicates_a_series_label() {
        assert_eq!(
            show(&["agent", "method"], &["weather", "get"], &[("agent", "global"), ("cluster", "c")], None),
            "m{agent=\"weather\",method=\"get\",cluster=\"c\"}"
        );
    }
}
