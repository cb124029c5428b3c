//! Label values and label sets as types, so that the compiler checks label
//! names, types and counts: see `#[derive(LabelValue)]` and `#[derive(LabelSet)]`.
//!
//! ```
//! use mesh_metrics::{LabelSet, LabelValue};
//!
//! #[derive(Clone, Copy, LabelValue)]
//! enum Currency { Usd, Eur, #[label(rename = "gbp")] PoundSterling }
//!
//! #[derive(LabelSet)]
//! struct RevenueLabels { currency: Currency, refunded: bool }
//!
//! assert_eq!(<Currency as LabelValue>::VALUES, &["usd", "eur", "gbp"]);
//! assert_eq!(<RevenueLabels as LabelSet>::NAMES, &["currency", "refunded"]);
//! assert_eq!(<RevenueLabels as LabelSet>::CARDINALITY, Some(6));
//! ```

use std::borrow::Cow;

/// A label whose values are known at compile time: one per variant of a
/// fieldless enum (`#[derive(LabelValue)]`), or `false`/`true`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a bounded label value",
    label = "not a `LabelValue`",
    note = "derive `mesh_metrics::LabelValue` on a fieldless enum, or mark the field `#[label(unbounded)]` \
            if its values really are open-ended (the cardinality guard then applies)"
)]
pub trait LabelValue {
    /// Every value, in index order.
    const VALUES: &'static [&'static str];
    /// How many values there are.
    const CARDINALITY: usize = Self::VALUES.len();

    /// This value's position in [`VALUES`](Self::VALUES).
    fn index(&self) -> usize;

    /// This value as a label value.
    fn as_str(&self) -> &'static str {
        Self::VALUES.get(self.index()).copied().unwrap_or_default()
    }
}

impl LabelValue for bool {
    const VALUES: &'static [&'static str] = &["false", "true"];

    fn index(&self) -> usize {
        usize::from(*self)
    }
}

/// A label value with no fixed set of values (a `String`, an integer):
/// allowed only on a field marked `#[label(unbounded)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an unbounded label value",
    note = "use a `String`, a string slice or an integer, or a `LabelValue` enum without `#[label(unbounded)]`"
)]
pub trait UnboundedLabel {
    /// The label value.
    fn label_value(&self) -> Cow<'_, str>;
}

impl UnboundedLabel for String {
    fn label_value(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl UnboundedLabel for str {
    fn label_value(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl UnboundedLabel for Box<str> {
    fn label_value(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl UnboundedLabel for Cow<'_, str> {
    fn label_value(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl<T: UnboundedLabel + ?Sized> UnboundedLabel for &T {
    fn label_value(&self) -> Cow<'_, str> {
        (**self).label_value()
    }
}

macro_rules! unbounded_integers {
    ($($int:ty)*) => {$(
        impl UnboundedLabel for $int {
            fn label_value(&self) -> Cow<'_, str> {
                Cow::Owned(itoa::Buffer::new().format(*self).to_owned())
            }
        }
    )*};
}
unbounded_integers!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

/// The most `&'static str` fields a label set may have and still be looked
/// up by index (see [`LabelSet::INDEXED`]).
pub const MAX_STATIC_FIELDS: usize = 4;

/// The `&'static str` label values of a label set, in field order, unused
/// entries empty.
pub type StaticValues = [&'static str; MAX_STATIC_FIELDS];

/// A set of labels: one field per label (`#[derive(LabelSet)]`).
///
/// Fields are [`LabelValue`]s (enumerable), `&'static str`s (written in the
/// program: few, but not enumerable) or `#[label(unbounded)]` values. A set
/// without unbounded fields is looked up by index: its enumerable fields give
/// the position in a table, kept per combination of its static strings.
pub trait LabelSet {
    /// The label names, in field order.
    const NAMES: &'static [&'static str];
    /// The number of distinct label sets when every field is a [`LabelValue`];
    /// `None` when a field is a `&'static str` or unbounded (or the number
    /// does not fit a `usize`).
    const CARDINALITY: Option<usize>;
    /// The number of combinations of the enumerable fields, when the set can
    /// be looked up by index: no unbounded field, at most
    /// [`MAX_STATIC_FIELDS`] static strings.
    const INDEXED: Option<usize>;
    /// Whether a field is `#[label(unbounded)]`: its series may expire when idle.
    const UNBOUNDED: bool;
    /// How many fields are `&'static str`s.
    const STATIC_FIELDS: usize = 0;

    /// The position of this combination of enumerable fields among all
    /// `INDEXED` of them.
    fn index(&self) -> usize;

    /// The `&'static str` fields' values, in field order.
    fn statics(&self) -> StaticValues;

    /// The label values, in name order, of enumerable combination `index`
    /// with these static strings.
    fn values_at(index: usize, statics: &StaticValues) -> Vec<&'static str>;

    /// Calls `f` with the label values, in name order.
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R;
}

/// No labels.
impl LabelSet for () {
    const NAMES: &'static [&'static str] = &[];
    const CARDINALITY: Option<usize> = Some(1);
    const INDEXED: Option<usize> = Some(1);
    const UNBOUNDED: bool = false;

    fn index(&self) -> usize {
        0
    }

    fn statics(&self) -> StaticValues {
        [""; MAX_STATIC_FIELDS]
    }

    fn values_at(_: usize, _: &StaticValues) -> Vec<&'static str> {
        Vec::new()
    }

    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(&[])
    }
}
