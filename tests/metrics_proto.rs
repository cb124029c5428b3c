//! A decoder of `prometheus/client_model`'s `metrics.proto`
//! (io.prometheus.client), written from the definitions and independent of
//! the crate's encoder: the messages a Prometheus reads from a protobuf
//! scrape, with the fields it reads.

use std::collections::BTreeMap;

/// `MetricFamily`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricFamily {
    pub name: String,
    pub help: String,
    /// `MetricType`: 0 counter, 1 gauge, 2 summary, 3 untyped, 4 histogram.
    pub kind: u64,
    pub metric: Vec<Metric>,
    pub unit: String,
}

/// `Metric`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metric {
    pub label: Vec<(String, String)>,
    pub gauge: Option<f64>,
    pub counter: Option<Counter>,
    pub summary: Option<Summary>,
    pub untyped: Option<f64>,
    pub histogram: Option<Histogram>,
}

/// `Counter`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counter {
    pub value: f64,
    pub exemplar: Option<Exemplar>,
}

/// `Summary`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub sample_count: u64,
    pub sample_sum: f64,
    pub quantile: Vec<(f64, f64)>,
}

/// `Histogram`, classic and native fields.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Histogram {
    pub sample_count: u64,
    pub sample_sum: f64,
    pub bucket: Vec<Bucket>,
    pub schema: Option<i32>,
    pub zero_threshold: Option<f64>,
    pub zero_count: Option<u64>,
    pub negative_span: Vec<(i32, u32)>,
    pub negative_delta: Vec<i64>,
    pub positive_span: Vec<(i32, u32)>,
    pub positive_delta: Vec<i64>,
    pub exemplars: Vec<Exemplar>,
}

/// `Bucket`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Bucket {
    pub cumulative_count: u64,
    pub upper_bound: f64,
    pub exemplar: Option<Exemplar>,
}

/// `Exemplar` (with `google.protobuf.Timestamp` as seconds and nanos).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Exemplar {
    pub label: Vec<(String, String)>,
    pub value: f64,
    pub timestamp: Option<(i64, i32)>,
}

impl Histogram {
    /// Whether Prometheus 2.42 reads it as native (its `isNativeHistogram`
    /// then: a zero threshold, a zero count or bucket deltas; later versions
    /// also take a span).
    pub fn is_native(&self) -> bool {
        self.zero_threshold.unwrap_or(0.0) > 0.0
            || self.zero_count.unwrap_or(0) > 0
            || !self.positive_delta.is_empty()
            || !self.negative_delta.is_empty()
    }

    /// The native buckets as `index -> count`, from spans and deltas, as
    /// Prometheus expands them.
    pub fn native_buckets(spans: &[(i32, u32)], deltas: &[i64]) -> Result<BTreeMap<i32, u64>, String> {
        let mut buckets = BTreeMap::new();
        let mut deltas = deltas.iter();
        let mut index = 0i32;
        let mut count = 0i64;
        for (i, (offset, length)) in spans.iter().enumerate() {
            index = if i == 0 { *offset } else { index + offset };
            for _ in 0..*length {
                count += deltas.next().ok_or("fewer deltas than the spans' lengths")?;
                if count < 0 {
                    return Err(format!("bucket {index} has a negative count {count}"));
                }
                if count > 0 {
                    buckets.insert(index, count as u64);
                }
                index += 1;
            }
        }
        if deltas.next().is_some() {
            return Err("more deltas than the spans' lengths".into());
        }
        Ok(buckets)
    }
}

/// Reads a stream of length-delimited `MetricFamily` messages.
pub fn decode_delimited(mut bytes: &[u8]) -> Result<Vec<MetricFamily>, String> {
    let mut families = Vec::new();
    while !bytes.is_empty() {
        let length = varint(&mut bytes)? as usize;
        if length > bytes.len() {
            return Err(format!("a message of {length} bytes with {} left", bytes.len()));
        }
        let (message, rest) = bytes.split_at(length);
        families.push(family(message)?);
        bytes = rest;
    }
    Ok(families)
}

enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or("a varint past the end")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint longer than 10 bytes".into())
}

fn fields(mut bytes: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut bytes)?),
            1 => {
                let (value, rest) = bytes.split_first_chunk::<8>().ok_or("a fixed64 past the end")?;
                bytes = rest;
                Field::Fixed64(u64::from_le_bytes(*value))
            }
            2 => {
                let length = varint(&mut bytes)? as usize;
                if length > bytes.len() {
                    return Err("a length-delimited field past the end".into());
                }
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                Field::Bytes(value)
            }
            wire => return Err(format!("wire type {wire} is not in metrics.proto")),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn string(value: &Field<'_>) -> Result<String, String> {
    match value {
        Field::Bytes(bytes) => String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string()),
        _ => Err("a string field with another wire type".into()),
    }
}

fn double(value: &Field<'_>) -> Result<f64, String> {
    match value {
        Field::Fixed64(bits) => Ok(f64::from_bits(*bits)),
        _ => Err("a double field with another wire type".into()),
    }
}

fn number(value: &Field<'_>) -> Result<u64, String> {
    match value {
        Field::Varint(n) => Ok(*n),
        _ => Err("a varint field with another wire type".into()),
    }
}

fn bytes<'a>(value: &Field<'a>) -> Result<&'a [u8], String> {
    match value {
        Field::Bytes(bytes) => Ok(bytes),
        _ => Err("a message field with another wire type".into()),
    }
}

fn family(message: &[u8]) -> Result<MetricFamily, String> {
    let mut family = MetricFamily::default();
    for (field, value) in fields(message)? {
        match field {
            1 => family.name = string(&value)?,
            2 => family.help = string(&value)?,
            3 => family.kind = number(&value)?,
            4 => family.metric.push(metric(bytes(&value)?)?),
            5 => family.unit = string(&value)?,
            other => return Err(format!("MetricFamily has no field {other}")),
        }
    }
    Ok(family)
}

fn label_pair(message: &[u8]) -> Result<(String, String), String> {
    let mut pair = (String::new(), String::new());
    for (field, value) in fields(message)? {
        match field {
            1 => pair.0 = string(&value)?,
            2 => pair.1 = string(&value)?,
            other => return Err(format!("LabelPair has no field {other}")),
        }
    }
    Ok(pair)
}

fn single_value(message: &[u8], what: &str) -> Result<f64, String> {
    let mut out = 0.0;
    for (field, value) in fields(message)? {
        match field {
            1 => out = double(&value)?,
            other => return Err(format!("{what} has no field {other}")),
        }
    }
    Ok(out)
}

fn metric(message: &[u8]) -> Result<Metric, String> {
    let mut metric = Metric::default();
    for (field, value) in fields(message)? {
        match field {
            1 => metric.label.push(label_pair(bytes(&value)?)?),
            2 => metric.gauge = Some(single_value(bytes(&value)?, "Gauge")?),
            3 => {
                let mut counter = Counter::default();
                for (field, value) in fields(bytes(&value)?)? {
                    match field {
                        1 => counter.value = double(&value)?,
                        2 => counter.exemplar = Some(exemplar(bytes(&value)?)?),
                        3 => {}
                        other => return Err(format!("Counter has no field {other}")),
                    }
                }
                metric.counter = Some(counter);
            }
            4 => {
                let mut summary = Summary::default();
                for (field, value) in fields(bytes(&value)?)? {
                    match field {
                        1 => summary.sample_count = number(&value)?,
                        2 => summary.sample_sum = double(&value)?,
                        3 => {
                            let mut quantile = (0.0, 0.0);
                            for (field, value) in fields(bytes(&value)?)? {
                                match field {
                                    1 => quantile.0 = double(&value)?,
                                    2 => quantile.1 = double(&value)?,
                                    other => return Err(format!("Quantile has no field {other}")),
                                }
                            }
                            summary.quantile.push(quantile);
                        }
                        4 => {}
                        other => return Err(format!("Summary has no field {other}")),
                    }
                }
                metric.summary = Some(summary);
            }
            5 => metric.untyped = Some(single_value(bytes(&value)?, "Untyped")?),
            6 => {}
            7 => metric.histogram = Some(histogram(bytes(&value)?)?),
            other => return Err(format!("Metric has no field {other}")),
        }
    }
    Ok(metric)
}

fn span(message: &[u8]) -> Result<(i32, u32), String> {
    let mut span = (0, 0);
    for (field, value) in fields(message)? {
        match field {
            1 => span.0 = unzigzag(number(&value)?) as i32,
            2 => span.1 = number(&value)? as u32,
            other => return Err(format!("BucketSpan has no field {other}")),
        }
    }
    Ok(span)
}

fn packed_sint(value: &Field<'_>) -> Result<Vec<i64>, String> {
    let mut packed = bytes(value)?;
    let mut out = Vec::new();
    while !packed.is_empty() {
        out.push(unzigzag(varint(&mut packed)?));
    }
    Ok(out)
}

fn histogram(message: &[u8]) -> Result<Histogram, String> {
    let mut histogram = Histogram::default();
    for (field, value) in fields(message)? {
        match field {
            1 => histogram.sample_count = number(&value)?,
            2 => histogram.sample_sum = double(&value)?,
            3 => {
                let mut bucket = Bucket::default();
                for (field, value) in fields(bytes(&value)?)? {
                    match field {
                        1 => bucket.cumulative_count = number(&value)?,
                        2 => bucket.upper_bound = double(&value)?,
                        3 => bucket.exemplar = Some(exemplar(bytes(&value)?)?),
                        other => return Err(format!("Bucket has no field {other}")),
                    }
                }
                histogram.bucket.push(bucket);
            }
            5 => histogram.schema = Some(unzigzag(number(&value)?) as i32),
            6 => histogram.zero_threshold = Some(double(&value)?),
            7 => histogram.zero_count = Some(number(&value)?),
            9 => histogram.negative_span.push(span(bytes(&value)?)?),
            10 => histogram.negative_delta.extend(packed_sint(&value)?),
            12 => histogram.positive_span.push(span(bytes(&value)?)?),
            13 => histogram.positive_delta.extend(packed_sint(&value)?),
            16 => histogram.exemplars.push(exemplar(bytes(&value)?)?),
            other => return Err(format!("Histogram field {other} is not expected here")),
        }
    }
    Ok(histogram)
}

fn exemplar(message: &[u8]) -> Result<Exemplar, String> {
    let mut exemplar = Exemplar::default();
    for (field, value) in fields(message)? {
        match field {
            1 => exemplar.label.push(label_pair(bytes(&value)?)?),
            2 => exemplar.value = double(&value)?,
            3 => {
                let mut timestamp = (0i64, 0i32);
                for (field, value) in fields(bytes(&value)?)? {
                    match field {
                        1 => timestamp.0 = number(&value)? as i64,
                        2 => timestamp.1 = number(&value)? as i32,
                        other => return Err(format!("Timestamp has no field {other}")),
                    }
                }
                exemplar.timestamp = Some(timestamp);
            }
            other => return Err(format!("Exemplar has no field {other}")),
        }
    }
    Ok(exemplar)
}
