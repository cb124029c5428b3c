//! Histogram bucket layouts: validated once, then shared by every series of a
//! family (`sum by (le)` across series is only meaningful with one layout). A
//! layout may also make the family's histograms native (sparse, exponential),
//! with or without classic buckets alongside.

use super::native::NativeConfig;

/// The guide's latency buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A validated bucket layout: finite, strictly increasing, non-empty upper
/// bounds (`+Inf` is implied and must not be given).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    bounds: Box<[f64]>,
    /// The bounds in whole nanoseconds, for duration observations:
    /// `nanos <= floor(bound * 1e9)` exactly when `nanos / 1e9 <= bound`.
    nanos: Box<[u64]>,
    /// How many bounds are negative: no duration is at or below them.
    negative: usize,
    /// Native buckets too (or only, when there are no bounds).
    native: Option<NativeConfig>,
}

impl Layout {
    /// Validates `bounds`; the error says what is wrong with them.
    pub fn new(bounds: &[f64]) -> Result<Self, String> {
        if bounds.is_empty() {
            return Err("no buckets given; pass at least one upper bound, e.g. [0.1, 0.5, 1.0]".into());
        }
        if let Some(bad) = bounds.iter().find(|b| !b.is_finite()) {
            return Err(format!("bucket bound {bad} is not finite; +Inf is always added for you"));
        }
        if let Some((before, after)) = bounds.iter().zip(bounds.iter().skip(1)).find(|(a, b)| a >= b) {
            return Err(format!("bucket bounds must be strictly increasing, but {before} is followed by {after}"));
        }
        Ok(Self::from_checked(bounds))
    }

    fn from_checked(bounds: &[f64]) -> Self {
        let nanos = bounds.iter().map(|b| (b * 1e9).floor().clamp(0.0, u64::MAX as f64) as u64).collect();
        let negative = bounds.iter().take_while(|b| **b < 0.0).count();
        Self { bounds: bounds.into(), nanos, negative, native: None }
    }

    /// The same classic buckets, and native ones kept as `config` says.
    pub fn with_native(self, config: NativeConfig) -> Self {
        Self { native: Some(config), ..self }
    }

    /// Native buckets only: the text formats show such a histogram's
    /// `_count`, `_sum` and `+Inf` bucket; the protobuf format carries its
    /// native buckets.
    pub fn native_only(config: NativeConfig) -> Self {
        Self { native: Some(config), ..Self::from_checked(&[]) }
    }

    /// How its histograms keep native buckets, if they do.
    pub fn native(&self) -> Option<&NativeConfig> {
        self.native.as_ref()
    }

    /// Whether its histograms keep classic buckets: all but native-only ones.
    pub fn keeps_classic_buckets(&self) -> bool {
        self.native.is_none() || !self.bounds.is_empty()
    }

    /// No bounds, no native buckets: how a native-only histogram reads in
    /// the text formats (just the `+Inf` bucket).
    pub(crate) fn no_bounds() -> &'static Layout {
        static NONE: std::sync::LazyLock<Layout> = std::sync::LazyLock::new(|| Layout::from_checked(&[]));
        &NONE
    }

    /// The guide's default latency layout.
    pub fn default_latency() -> Self {
        Self::from_checked(&DEFAULT_BUCKETS)
    }

    /// The upper bounds, without `+Inf`.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The bucket of a duration: the first bound at or above it, skipping
    /// negative bounds (a clamped `0` there would claim zero durations).
    #[inline]
    pub(crate) fn nanos_bucket(&self, nanos: u64) -> usize {
        let searched = self.nanos.get(self.negative..).unwrap_or_default();
        self.negative + searched.iter().position(|bound| nanos <= *bound).unwrap_or(searched.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_layouts_with_a_reason() {
        assert!(Layout::new(&[]).unwrap_err().contains("no buckets"));
        assert!(Layout::new(&[0.1, f64::INFINITY]).unwrap_err().contains("not finite"));
        assert!(Layout::new(&[0.1, f64::NAN]).unwrap_err().contains("not finite"));
        assert!(Layout::new(&[0.5, 0.5]).unwrap_err().contains("strictly increasing"));
        assert!(Layout::new(&[1.0, 0.5]).unwrap_err().contains("strictly increasing"));
        assert_eq!(Layout::default_latency().bounds().len(), 10);
    }
}
