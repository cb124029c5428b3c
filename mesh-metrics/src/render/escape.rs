//! Escaping for the text formats.
//!
//! Label values escape `\`, `"` and line feed; HELP text escapes `\` and line
//! feed (classic format) — the same rules in OpenMetrics, which additionally
//! escapes `"` in HELP. Any other byte, NUL and multi-byte UTF-8 included, is
//! written as is: both formats are UTF-8.

/// Appends `value` escaped as a label value.
pub(crate) fn label_value(out: &mut String, value: &str) {
    escape(out, value, true);
}

/// Appends `text` escaped as HELP text; `quotes` for OpenMetrics.
pub(crate) fn help(out: &mut String, text: &str, quotes: bool) {
    escape(out, text, quotes);
}

fn escape(out: &mut String, value: &str, quotes: bool) {
    let needs = |b: u8| b == b'\\' || b == b'\n' || (quotes && b == b'"');
    if !value.bytes().any(needs) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_what_the_formats_require() {
        let mut out = String::new();
        super::label_value(&mut out, "a\"b\\c\nd}é");
        assert_eq!(out, "a\\\"b\\\\c\\nd}é");
        let mut help = String::new();
        super::help(&mut help, "say \"hi\"\\\n", false);
        assert_eq!(help, "say \"hi\"\\\\\\n");
    }
}
