//! Exposition of the registry's families as text.
//!
//! One pass per scrape, straight into a `String`: no intermediate structures.
//! The classic format and OpenMetrics share the label and number writers.

mod classic;
pub(crate) mod escape;
mod from_classic;
pub(crate) mod number;
mod openmetrics;

pub(crate) use classic::render as classic;
pub(crate) use from_classic::append as classic_as_openmetrics;
pub(crate) use openmetrics::{Claimed, render as openmetrics};

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
