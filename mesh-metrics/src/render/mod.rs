//! Exposition of the registry's families as text.
//!
//! One pass per scrape, straight into a `String`: no intermediate structures.

mod classic;
pub(crate) mod escape;
pub(crate) mod number;

pub(crate) use classic::render as classic;

/// Labels added to every series (the builder's `global_label`).
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalLabels {
    pairs: Vec<(String, String)>,
    /// `name="value"` pairs joined by commas, escaped; empty when none.
    rendered: String,
}

impl GlobalLabels {
    pub(crate) fn new(pairs: &[(String, String)]) -> Self {
        let mut rendered = String::new();
        for (name, value) in pairs {
            push_pair(&mut rendered, name, value);
        }
        Self { pairs: pairs.to_vec(), rendered }
    }
}

fn push_pair(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() && !out.ends_with('{') {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    escape::label_value(out, value);
    out.push('"');
}

/// Writes `{a="x",b="y",extra}` for a series (nothing when there are no labels).
///
/// A global label whose name the series already has is left out: the series'
/// own value wins, and a label name never appears twice in one series.
pub(crate) fn labels(
    out: &mut String,
    names: &[&str],
    values: &[Box<str>],
    global: &GlobalLabels,
    extra: Option<(&str, &str)>,
) {
    let has_global = !global.pairs.is_empty();
    if names.is_empty() && !has_global && extra.is_none() {
        return;
    }
    out.push('{');
    for (name, value) in names.iter().zip(values) {
        push_pair(out, name, value);
    }
    if has_global {
        if global.pairs.iter().any(|(name, _)| names.contains(&name.as_str())) {
            for (name, value) in global.pairs.iter().filter(|(name, _)| !names.contains(&name.as_str())) {
                push_pair(out, name, value);
            }
        } else {
            if !out.ends_with('{') {
                out.push(',');
            }
            out.push_str(&global.rendered);
        }
    }
    if let Some((name, value)) = extra {
        push_pair(out, name, value);
    }
    if out.ends_with('{') {
        out.pop();
    } else {
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
        labels(&mut out, names, &values, &GlobalLabels::new(&global), extra);
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
