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
}
