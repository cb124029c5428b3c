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

/// Writes `{a="x",b="y",global,extra}` for a series (nothing when there are no
/// labels); `global` comes from [`GlobalLabels::for_family`].
pub(crate) fn labels(out: &mut String, names: &[&str], values: &[Box<str>], global: &str, extra: Option<(&str, &str)>) {
    let mut separator = '{';
    for (name, value) in names.iter().zip(values) {
        out.push(separator);
        separator = ',';
        pair(out, name, value);
    }
    if !global.is_empty() {
        out.push(separator);
        separator = ',';
        out.push_str(global);
    }
    if let Some((name, value)) = extra {
        out.push(separator);
        separator = ',';
        pair(out, name, value);
    }
    if separator == ',' {
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::{GlobalLabels, labels};

    fn show(names: &[&str], values: &[&str], global: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
        let values: Vec<Box<str>> = values.iter().map(|v| Box::<str>::from(*v)).collect();
        let global: Vec<(String, String)> = global.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        let mut out = String::from("m");
        labels(&mut out, names, &values, &GlobalLabels::new(&global).for_family(names), extra);
        out
    }

    #[test]
    fn series_labels_then_global_then_extra() {
        assert_eq!(show(&[], &[], &[], None), "m");
        assert_eq!(show(&["a"], &["x\"y"], &[], None), "m{a=\"x\\\"y\"}");
        assert_eq!(show(&[], &[], &[("cluster", "c")], Some(("le", "1"))), "m{cluster=\"c\",le=\"1\"}");
        assert_eq!(show(&["a"], &["x"], &[("cluster", "c")], Some(("le", "1"))), "m{a=\"x\",cluster=\"c\",le=\"1\"}");
    }

    #[test]
    fn a_global_label_never_duplicates_a_series_label() {
        assert_eq!(
            show(&["agent", "method"], &["weather", "get"], &[("agent", "global"), ("cluster", "c")], None),
            "m{agent=\"weather\",method=\"get\",cluster=\"c\"}"
        );
    }
}
