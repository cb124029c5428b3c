//! Exposition of the registry's families as text.
//!
//! One pass per scrape, straight into a `String`: no intermediate structures.

mod classic;
pub(crate) mod escape;
pub(crate) mod number;

pub(crate) use classic::render as classic;

/// Labels added to every series (the builder's `global_label`), pre-escaped.
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobalLabels {
    /// `name="value"` pairs joined by commas, escaped; empty when none.
    rendered: String,
}

impl GlobalLabels {
    pub(crate) fn new(pairs: &[(String, String)]) -> Self {
        let mut rendered = String::new();
        for (name, value) in pairs {
            if !rendered.is_empty() {
                rendered.push(',');
            }
            rendered.push_str(name);
            rendered.push_str("=\"");
            escape::label_value(&mut rendered, value);
            rendered.push('"');
        }
        Self { rendered }
    }
}

/// Writes `{a="x",b="y",extra}` for a series (nothing when there are no labels).
pub(crate) fn labels(
    out: &mut String,
    names: &[&str],
    values: &[Box<str>],
    global: &GlobalLabels,
    extra: Option<(&str, &str)>,
) {
    let mut first = true;
    let mut open = |out: &mut String| {
        out.push(if first { '{' } else { ',' });
        first = false;
    };
    for (name, value) in names.iter().zip(values) {
        open(out);
        out.push_str(name);
        out.push_str("=\"");
        escape::label_value(out, value);
        out.push('"');
    }
    if !global.rendered.is_empty() {
        open(out);
        out.push_str(&global.rendered);
    }
    if let Some((name, value)) = extra {
        open(out);
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}
