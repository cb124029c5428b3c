//! Number formatting as Prometheus' parsers read it: integers without a
//! fraction, `+Inf`, `-Inf`, `NaN`, and the shortest round-trip form otherwise.

/// Appends `value`.
pub(crate) fn float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        integer(out, value as i64);
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

/// The OpenMetrics "canonical number" form of `value`, which `le` and
/// `quantile` label values must have: Go's `strconv.FormatFloat(v, 'g', -1,
/// 64)` with `.0` appended when it has neither `.` nor `e` (`1.0`, `0.005`,
/// `1e+06`, `+Inf`), as client_golang writes them.
pub(crate) fn canonical(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return "0.0".to_owned();
    }
    // The shortest round-trip digits and the decimal exponent, from Rust's
    // shortest `{:e}` form ("1.2345e-3").
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    // Go's %g with the shortest precision switches to an exponent below 1e-4
    // and from 1e21 ... but with precision "shortest" it uses 6 as the limit.
    if !(-4..6).contains(&exponent) {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        out.push_str(&magnitude.to_string());
        return out;
    }
    if exponent < 0 {
        out.push_str("0.");
        for _ in 0..(-exponent - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let whole = usize::try_from(exponent).unwrap_or(0) + 1;
        if digits.len() <= whole {
            out.push_str(&digits);
            for _ in digits.len()..whole {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            let (integer, fraction) = digits.split_at(whole);
            out.push_str(integer);
            out.push('.');
            out.push_str(fraction);
        }
    }
    out
}

/// Appends a whole number.
pub(crate) fn integer(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

#[cfg(test)]
mod tests {
    fn show(value: f64) -> String {
        let mut out = String::new();
        super::float(&mut out, value);
        out
    }

    #[test]
    fn formats_like_prometheus_expects() {
        assert_eq!(show(1.0), "1");
        assert_eq!(show(0.005), "0.005");
        assert_eq!(show(-3.0), "-3");
        assert_eq!(show(f64::INFINITY), "+Inf");
        assert_eq!(show(f64::NEG_INFINITY), "-Inf");
        assert_eq!(show(f64::NAN), "NaN");
        assert_eq!(show(1e300), "1e300");
        assert_eq!(show(-0.0), "0");
    }

    #[test]
    fn canonical_numbers_are_go_g_with_a_point() {
        use super::canonical;
        // What client_golang writes for `le` in OpenMetrics.
        for (value, expected) in [
            (1.0, "1.0"),
            (5.0, "5.0"),
            (0.005, "0.005"),
            (0.25, "0.25"),
            (2.5, "2.5"),
            (100_000.0, "100000.0"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.0, "-2.0"),
            (0.0, "0.0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(canonical(value), expected, "{value}");
        }
    }
}
