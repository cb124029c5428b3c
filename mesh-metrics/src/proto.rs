//! The protobuf wire format, as much of it as OTLP and the Prometheus
//! protobuf exposition need: varints (plain and zigzag), fixed 64-bit values,
//! length-delimited strings, bytes, packed arrays, nested and delimited
//! messages. Written by hand: a generated crate would pull a second `syn` and
//! a build step into the tree for a few dozen lines of encoding.

/// Appends protobuf fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LENGTH_DELIMITED: u32 = 2;

impl Writer {
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from((field << 3) | wire_type));
    }

    /// A `uint32`/`uint64`/`int64`/`bool`/enum field (left out when zero, as
    /// proto3 does).
    pub(crate) fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    /// A `uint32`/`uint64` field, always written (proto2 `optional` fields
    /// whose presence a reader may look at).
    pub(crate) fn uint_present(&mut self, field: u32, value: u64) {
        self.key(field, VARINT);
        self.varint(value);
    }

    /// A `sint32`/`sint64` field (zigzag), always written.
    pub(crate) fn sint(&mut self, field: u32, value: i64) {
        self.key(field, VARINT);
        self.varint(zigzag(value));
    }

    /// A packed `repeated sint64` field.
    pub(crate) fn packed_sint(&mut self, field: u32, values: &[i64]) {
        if !values.is_empty() {
            let mut packed = Writer::default();
            for value in values {
                packed.varint(zigzag(*value));
            }
            self.bytes(field, &packed.buf);
        }
    }

    /// A whole message preceded by its length as a varint: one element of a
    /// length-delimited stream (`encoding=delimited`).
    pub(crate) fn delimited(&mut self, write: impl FnOnce(&mut Writer)) {
        self.length_prefixed(write);
    }

    /// Writes what `write` writes, preceded by its length as a varint, in
    /// place: one byte is set aside for the length (enough below 128 bytes,
    /// the common case for a label pair or a sample) and the content moved
    /// along when the length needs more, so nesting allocates nothing.
    fn length_prefixed(&mut self, write: impl FnOnce(&mut Writer)) {
        let at = self.buf.len();
        self.buf.push(0);
        write(self);
        let length = self.buf.len() - at - 1;
        let mut prefix = Writer::default();
        prefix.varint(length as u64);
        match prefix.buf.as_slice() {
            [byte] => {
                if let Some(slot) = self.buf.get_mut(at) {
                    *slot = *byte;
                }
            }
            bytes => {
                self.buf.splice(at..at + 1, bytes.iter().copied());
            }
        }
    }

    /// A `fixed64` field, always written.
    pub(crate) fn fixed64(&mut self, field: u32, value: u64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A `double` field, always written (for `oneof` and `optional` fields,
    /// whose presence matters even at zero).
    pub(crate) fn double(&mut self, field: u32, value: f64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A `string` field (left out when empty).
    pub(crate) fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A `bytes` field (left out when empty).
    pub(crate) fn bytes(&mut self, field: u32, value: &[u8]) {
        if !value.is_empty() {
            self.key(field, LENGTH_DELIMITED);
            self.varint(value.len() as u64);
            self.buf.extend_from_slice(value);
        }
    }

    /// A packed `repeated uint64` field (varints).
    pub(crate) fn packed_uint(&mut self, field: u32, values: &[u64]) {
        if !values.is_empty() {
            let mut packed = Writer::default();
            for value in values {
                packed.varint(*value);
            }
            self.bytes(field, &packed.buf);
        }
    }

    /// A packed `repeated fixed64` field.
    pub(crate) fn packed_fixed64(&mut self, field: u32, values: &[u64]) {
        if !values.is_empty() {
            self.key(field, LENGTH_DELIMITED);
            self.varint(8 * values.len() as u64);
            for value in values {
                self.buf.extend_from_slice(&value.to_le_bytes());
            }
        }
    }

    /// A packed `repeated double` field.
    pub(crate) fn packed_double(&mut self, field: u32, values: &[f64]) {
        if !values.is_empty() {
            self.key(field, LENGTH_DELIMITED);
            self.varint(8 * values.len() as u64);
            for value in values {
                self.buf.extend_from_slice(&value.to_le_bytes());
            }
        }
    }

    /// A nested message field, written by `write` (always present, even
    /// empty: a `oneof` member such as `Metric.sum` must be seen).
    pub(crate) fn message(&mut self, field: u32, write: impl FnOnce(&mut Writer)) {
        self.key(field, LENGTH_DELIMITED);
        self.length_prefixed(write);
    }
}

/// Protobuf's zigzag encoding of a signed integer.
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Reads the fields of one message: `(field, value)` where a varint or fixed
/// value is given as a number and a length-delimited one as its bytes.
/// `None` if the bytes are not protobuf.
pub(crate) fn fields(mut bytes: &[u8]) -> Option<Vec<(u32, Value<'_>)>> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = bytes.split_first()?;
            *bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let field = u32::try_from(key >> 3).ok()?;
        let value = match key & 7 {
            0 => Value::Number(varint(&mut bytes)?),
            1 => {
                let (fixed, rest) = bytes.split_first_chunk::<8>()?;
                bytes = rest;
                Value::Number(u64::from_le_bytes(*fixed))
            }
            2 => {
                let length = usize::try_from(varint(&mut bytes)?).ok()?;
                let (value, rest) = bytes.split_at_checked(length)?;
                bytes = rest;
                Value::Bytes(value)
            }
            5 => {
                let (fixed, rest) = bytes.split_first_chunk::<4>()?;
                bytes = rest;
                Value::Number(u64::from(u32::from_le_bytes(*fixed)))
            }
            _ => return None,
        };
        out.push((field, value));
    }
    Some(out)
}

/// One field's value, as [`fields`] reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Number(u64),
    Bytes(&'a [u8]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_it_reads_back() {
        let mut writer = Writer::default();
        writer.uint(1, 300);
        writer.string(2, "hi");
        writer.fixed64(3, 7);
        writer.message(4, |nested| nested.double(1, 1.5));
        writer.uint(5, 0); // left out
        let bytes = writer.into_bytes();
        // 300 is the varint 0xAC 0x02; the key of field 1 varint is 0x08.
        assert_eq!(&bytes[..3], &[0x08, 0xAC, 0x02]);
        let fields = fields(&bytes).expect("valid protobuf");
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[0], (1, Value::Number(300)));
        assert_eq!(fields[1], (2, Value::Bytes(b"hi")));
        assert_eq!(fields[2], (3, Value::Number(7)));
        let Value::Bytes(nested) = fields[3].1 else { panic!("a message") };
        assert_eq!(super::fields(nested), Some(vec![(1, Value::Number(1.5f64.to_bits()))]));
        assert_eq!(super::fields(&[0x0A, 0x05, b'a']), None, "a length past the end");
    }

    #[test]
    fn long_nested_messages_get_a_longer_length_in_place() {
        for length in [0usize, 1, 127, 128, 300, 20_000] {
            let text = "x".repeat(length);
            let mut writer = Writer::default();
            writer.uint(1, 7);
            writer.message(2, |nested| nested.string(1, &text));
            writer.delimited(|nested| nested.string(3, &text));
            let bytes = writer.into_bytes();
            let (head, tail) = bytes.split_at(bytes.len() - delimited_len(&text));
            // The delimited part: a varint length, then exactly that many bytes.
            let mut rest = tail;
            let mut declared = 0usize;
            for shift in (0..).step_by(7) {
                let (&byte, after) = rest.split_first().expect("a length");
                rest = after;
                declared |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            assert_eq!(declared, rest.len(), "length {length}: the prefix is the content's length");
            let parsed = super::fields(head).expect("valid");
            let Value::Bytes(nested) = parsed[1].1 else { panic!("a message") };
            let inner = super::fields(nested).expect("valid nested");
            if length == 0 {
                assert!(inner.is_empty(), "an empty string is left out");
            } else {
                assert_eq!(inner, vec![(1, Value::Bytes(text.as_bytes()))]);
            }
        }
    }

    /// How many bytes `delimited(|w| w.string(3, text))` takes.
    fn delimited_len(text: &str) -> usize {
        let mut writer = Writer::default();
        writer.string(3, text);
        let content = writer.into_bytes().len();
        let mut prefix = Writer::default();
        prefix.varint(content as u64);
        prefix.into_bytes().len() + content
    }
}
