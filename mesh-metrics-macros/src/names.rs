//! Prometheus' grammar and naming conventions, shared by every compile-time check.

/// `mesh_metrics::names::REQUESTS_TOTAL` (a proc-macro crate cannot depend on
/// the runtime crate; a test there checks the two agree).
pub(crate) const REQUESTS_TOTAL: &str = "mcp_mesh_requests_total";
/// `mesh_metrics::names::REQUEST_DURATION_SECONDS` (see above).
pub(crate) const REQUEST_DURATION_SECONDS: &str = "mcp_mesh_request_duration_seconds";

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub(crate) fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `name` cannot be a user label, if it cannot.
pub(crate) fn reserved_label(name: &str) -> Option<&'static str> {
    if name.starts_with("__") {
        Some("label names starting with `__` are reserved for Prometheus' internal use")
    } else if name == "le" {
        Some("`le` is the bucket label of every histogram")
    } else if name == "quantile" {
        Some("`quantile` is the label of summary quantiles")
    } else if name == "otel_metric_overflow" {
        Some("`otel_metric_overflow` marks the cardinality guard's overflow series")
    } else {
        None
    }
}

/// Label names that usually carry one value per user, request or address.
const UNBOUNDED_NAMES: &[&str] = &[
    "id",
    "user_id",
    "userid",
    "user",
    "username",
    "request_id",
    "session_id",
    "trace_id",
    "span_id",
    "transaction_id",
    "order_id",
    "customer_id",
    "email",
    "ip",
    "ip_address",
    "client_ip",
    "remote_addr",
    "url",
    "uri",
    "uuid",
    "token",
    "phone",
];

/// Whether a label named `name` is probably unbounded.
pub(crate) fn looks_unbounded(name: &str) -> bool {
    UNBOUNDED_NAMES.contains(&name)
}

/// Name suffixes of times not in seconds, with the unit they mean.
const NON_SECONDS: &[(&str, &str)] = &[
    ("_ms", "milliseconds"),
    ("_millis", "milliseconds"),
    ("_milliseconds", "milliseconds"),
    ("_us", "microseconds"),
    ("_micros", "microseconds"),
    ("_microseconds", "microseconds"),
    ("_ns", "nanoseconds"),
    ("_nanos", "nanoseconds"),
    ("_nanoseconds", "nanoseconds"),
    ("_minutes", "minutes"),
    ("_hours", "hours"),
];

/// The unit of a time that is not in seconds, from the name's suffix
/// (`_total` aside).
pub(crate) fn time_not_in_seconds(name: &str) -> Option<(&'static str, &'static str)> {
    let base = name.strip_suffix("_total").unwrap_or(name);
    NON_SECONDS.iter().find(|(suffix, _)| base.ends_with(suffix)).copied()
}

/// Collects errors so that every mistake is reported in one compile.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn add(&mut self, span: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(span, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The doc comment of an item, lines trimmed and joined with spaces.
pub(crate) fn doc_comment(attrs: &[syn::Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. }) => Some(text.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join(" ").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// A field or variant name as written, without `r#`.
pub(crate) fn unraw(ident: &syn::Ident) -> String {
    let name = ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(is_metric_name("mcp_mesh:requests_total"));
        assert!(!is_metric_name("9lives"));
        assert!(!is_metric_name("a-b"));
        assert!(is_label_name("_private"));
        assert!(!is_label_name("a:b"));
        assert!(reserved_label("__name__").is_some());
        assert_eq!(time_not_in_seconds("latency_ms"), Some(("_ms", "milliseconds")));
        assert_eq!(time_not_in_seconds("latency_seconds"), None);
        assert_eq!(time_not_in_seconds("wait_millis_total"), Some(("_millis", "milliseconds")));
    }
}
