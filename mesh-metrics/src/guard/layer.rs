//! The guard in front of `metrics-exporter-prometheus`, for `metrics` facade
//! calls: a `metrics_util::layers::Layer`.
//!
//! It sees every registration (`counter!` registers on each call; a held
//! handle registered once), admits label sets per metric name under the
//! policy, and hands the recorder the overflow key
//! `name{otel_metric_overflow="true"}` for the rest. Its memory is the admitted
//! keys: at most the limit per name, however many distinct values arrive.
//!
//! With an idle timeout, each handle it returns also notes when it was last
//! used, and a key idle for the timeout plus two upkeep ticks frees its slot:
//! by then the exporter (which the upkeep renders, pruning what is idle) has
//! dropped the series too, so the exporter never holds more than the limit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Label, Metadata, Recorder, SharedString,
    Unit,
};
use metrics_util::layers::Layer;

use super::{CardinalityPolicy, Folds, Limit, OVERFLOW_LABEL, warn_first_fold};

/// The facade guard's state, shared by the layer and the exporter (which
/// publishes its counts and drives its expiry).
#[derive(Debug)]
pub(crate) struct FacadeGuard {
    policy: Arc<CardinalityPolicy>,
    /// Idle ticks before a key's slot is freed; 0 when nothing expires.
    idle_ticks: u64,
    tick: AtomicU64,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every admitted key (of every name) and the tick of its last use. Keyed
    /// by the hash `metrics` already computed for the key: a lookup hashes nothing.
    admitted: HashMap<Key, Arc<AtomicU64>, BuildHasherDefault<KeyHashHasher>>,
    /// Per metric name: admitted keys and folds.
    names: HashMap<KeyName, NameState>,
}

#[derive(Debug, Default)]
struct NameState {
    admitted: usize,
    folds: Arc<Folds>,
}

/// What the guard did to one facade metric, for the published self-metrics.
#[derive(Debug)]
pub(crate) struct NameStats {
    pub(crate) name: String,
    pub(crate) admitted: usize,
    pub(crate) folds: Arc<Folds>,
}

/// `Key`'s `Hash` writes its precomputed hash as one `u64`: use it as is.
#[derive(Debug, Default)]
struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key` (see above); hash anything else byte by byte.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

impl FacadeGuard {
    pub(crate) fn new(policy: Arc<CardinalityPolicy>, idle_ticks: u64) -> Self {
        Self { policy, idle_ticks, tick: AtomicU64::new(1), state: RwLock::new(State::default()) }
    }

    /// The key to register: `key` itself (values truncated if too long) when
    /// admitted, else the metric's overflow key. Also the last-use cell to
    /// refresh when it is an admitted key and keys expire.
    fn admit<'k>(&self, key: &'k Key) -> (Cow<'k, Key>, Option<Arc<AtomicU64>>) {
        let key = self.truncated(key);
        let limit = match self.policy.limit(key.name()) {
            Limit::Series(limit) => limit,
            Limit::Unlimited if self.idle_ticks == 0 => return (key, None),
            Limit::Unlimited => usize::MAX,
        };
        let now = self.tick.load(Ordering::Relaxed);
        {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(last_used) = state.admitted.get(&*key) {
                last_used.store(now, Ordering::Relaxed);
                return (key, self.expiring(last_used));
            }
            if let Some(name) = state.names.get(key.name())
                && name.admitted >= limit
            {
                return (Cow::Owned(self.fold(&key, &name.folds, limit)), None);
            }
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(last_used) = state.admitted.get(&*key) {
            last_used.store(now, Ordering::Relaxed);
            return (key, self.expiring(last_used));
        }
        let name = state.names.entry(KeyName::from(key.name().to_owned())).or_default();
        if name.admitted >= limit {
            let folds = name.folds.clone();
            drop(state);
            return (Cow::Owned(self.fold(&key, &folds, limit)), None);
        }
        name.admitted += 1;
        let last_used = Arc::new(AtomicU64::new(now));
        state.admitted.insert(key.clone().into_owned(), last_used.clone());
        let expiring = self.expiring(&last_used);
        (key, expiring)
    }

    fn expiring(&self, last_used: &Arc<AtomicU64>) -> Option<Arc<AtomicU64>> {
        (self.idle_ticks > 0).then(|| last_used.clone())
    }

    fn fold(&self, key: &Key, folds: &Folds, limit: usize) -> Key {
        if folds.fold() {
            warn_first_fold(key.name(), limit);
        }
        Key::from_parts(key.name().to_owned(), vec![Label::new(OVERFLOW_LABEL.0, OVERFLOW_LABEL.1)])
    }

    fn truncated<'k>(&self, key: &'k Key) -> Cow<'k, Key> {
        let max = self.policy.label_value_bytes_for(key.name());
        if key.labels().all(|label| label.value().len() <= max) {
            return Cow::Borrowed(key);
        }
        let labels: Vec<Label> = key
            .labels()
            .map(|label| Label::new(label.key().to_owned(), super::truncate(label.value(), max).to_owned()))
            .collect();
        Cow::Owned(Key::from_parts(key.name().to_owned(), labels))
    }

    /// Advances the guard's clock and frees the slots of keys idle for the
    /// timeout plus two ticks (so the exporter has pruned them first).
    pub(crate) fn upkeep(&self) -> usize {
        let now = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        if self.idle_ticks == 0 {
            return 0;
        }
        let oldest = now.saturating_sub(self.idle_ticks + 2);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let State { admitted, names } = &mut *state;
        let before = admitted.len();
        admitted.retain(|key, last_used| {
            let keep = last_used.load(Ordering::Relaxed) >= oldest;
            if !keep && let Some(name) = names.get_mut(key.name()) {
                name.admitted = name.admitted.saturating_sub(1);
            }
            keep
        });
        before - admitted.len()
    }

    /// Per metric name: admitted label sets and folds.
    pub(crate) fn stats(&self) -> Vec<NameStats> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .names
            .iter()
            .map(|(name, state)| NameStats {
                name: name.as_str().to_owned(),
                admitted: state.admitted,
                folds: state.folds.clone(),
            })
            .collect()
    }
}

/// The cardinality guard as a `metrics_util` layer, for a recorder you
/// compose yourself (the exporter puts one in front of its own).
///
/// ```
/// use metrics_util::layers::Layer as _;
/// use mesh_metrics::guard::{CardinalityLayer, CardinalityPolicy, Limit};
///
/// let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
/// let prometheus = recorder.handle();
/// let policy = CardinalityPolicy::default().limit_for("logins_total", Limit::Series(2));
/// let guarded = CardinalityLayer::new(policy).layer(recorder);
/// metrics::with_local_recorder(&guarded, || {
///     for user in ["ada", "grace", "edsger"] {
///         metrics::counter!("logins_total", "user" => user).increment(1);
///     }
/// });
/// assert!(prometheus.render().contains("logins_total{otel_metric_overflow=\"true\"} 1"));
/// ```
#[derive(Debug, Clone)]
pub struct CardinalityLayer(pub(crate) Arc<FacadeGuard>);

impl CardinalityLayer {
    /// A layer enforcing `policy` (without idle expiry, which needs the
    /// exporter's upkeep).
    pub fn new(policy: CardinalityPolicy) -> Self {
        Self(Arc::new(FacadeGuard::new(Arc::new(policy), 0)))
    }
}

impl<R: Recorder> Layer<R> for CardinalityLayer {
    type Output = Guarded<R>;

    fn layer(&self, inner: R) -> Guarded<R> {
        Guarded { inner, guard: self.0.clone() }
    }
}

/// A recorder behind the cardinality guard: see [`CardinalityLayer`].
#[derive(Debug)]
pub struct Guarded<R> {
    inner: R,
    guard: Arc<FacadeGuard>,
}

impl<R: Recorder> Recorder for Guarded<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let (key, last_used) = self.guard.admit(key);
        let counter = self.inner.register_counter(&key, metadata);
        match last_used {
            Some(last_used) => {
                Counter::from_arc(Arc::new(Touching { inner: counter, last_used, guard: self.guard.clone() }))
            }
            None => counter,
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let (key, last_used) = self.guard.admit(key);
        let gauge = self.inner.register_gauge(&key, metadata);
        match last_used {
            Some(last_used) => {
                Gauge::from_arc(Arc::new(Touching { inner: gauge, last_used, guard: self.guard.clone() }))
            }
            None => gauge,
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let (key, last_used) = self.guard.admit(key);
        let histogram = self.inner.register_histogram(&key, metadata);
        match last_used {
            Some(last_used) => {
                Histogram::from_arc(Arc::new(Touching { inner: histogram, last_used, guard: self.guard.clone() }))
            }
            None => histogram,
        }
    }
}

/// A handle that notes when it was last used, so an admitted key in use is
/// never taken for idle. Only handed out when keys expire.
struct Touching<H> {
    inner: H,
    last_used: Arc<AtomicU64>,
    guard: Arc<FacadeGuard>,
}

impl<H> Touching<H> {
    #[inline]
    fn touch(&self) {
        self.last_used.store(self.guard.tick.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl CounterFn for Touching<Counter> {
    fn increment(&self, value: u64) {
        self.touch();
        self.inner.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.touch();
        self.inner.absolute(value);
    }
}

impl GaugeFn for Touching<Gauge> {
    fn increment(&self, value: f64) {
        self.touch();
        self.inner.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.touch();
        self.inner.decrement(value);
    }

    fn set(&self, value: f64) {
        self.touch();
        self.inner.set(value);
    }
}

impl HistogramFn for Touching<Histogram> {
    fn record(&self, value: f64) {
        self.touch();
        self.inner.record(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, value: &str) -> Key {
        Key::from_parts(name.to_owned(), vec![Label::new("user", value.to_owned())])
    }

    #[test]
    fn admits_up_to_the_limit_then_folds_into_the_overflow_key() {
        let policy = CardinalityPolicy::default().limit_for("logins_total", Limit::Series(2));
        let guard = FacadeGuard::new(Arc::new(policy), 0);
        assert_eq!(guard.admit(&key("logins_total", "a")).0.into_owned(), key("logins_total", "a"));
        assert_eq!(guard.admit(&key("logins_total", "b")).0.into_owned(), key("logins_total", "b"));
        assert_eq!(
            guard.admit(&key("logins_total", "a")).0.into_owned(),
            key("logins_total", "a"),
            "admitted keys stay"
        );
        let overflow = guard.admit(&key("logins_total", "c")).0.into_owned();
        assert_eq!(overflow.labels().map(|l| (l.key(), l.value())).collect::<Vec<_>>(), vec![OVERFLOW_LABEL]);
        guard.admit(&key("logins_total", "d"));
        let stats = guard.stats();
        assert_eq!((stats[0].admitted, stats[0].folds.total()), (2, 2));
    }

    #[test]
    fn idle_keys_free_their_slot_after_the_timeout_and_a_margin() {
        let policy = CardinalityPolicy::default().limit_for("logins_total", Limit::Series(1));
        let guard = FacadeGuard::new(Arc::new(policy), 2);
        let (_, last_used) = guard.admit(&key("logins_total", "a"));
        assert!(last_used.is_some());
        for _ in 0..4 {
            assert_eq!(guard.upkeep(), 0, "not idle long enough");
        }
        assert_eq!(guard.upkeep(), 1);
        assert_eq!(
            guard.admit(&key("logins_total", "b")).0.into_owned(),
            key("logins_total", "b"),
            "the slot is free again"
        );
    }
}
