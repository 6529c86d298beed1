//! Where a manifest entry's fields go: a JSON map (`Map<String, Value>`,
//! for the `graph` context variable and the docs) or straight into the
//! manifest's bytes ([`JsonObject`]). Both see the same calls in the same
//! order, so the bytes are those of serializing the map; writing them
//! directly skips building a hashed map per node (inserting its keys was a
//! quarter of a 10,000-model project's manifest CPU).

use serde::Serialize;
use serde_json::{Map, Value};

/// An object's fields, in order. Keys are plain identifiers (no escaping),
/// each given once.
pub trait Fields {
    /// A field from a value serialized as it is.
    fn put<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T);
    /// A field from a JSON value already built (moved, not copied, into a map).
    fn put_value(&mut self, key: &'static str, value: Value);
}

impl Fields for Map<String, Value> {
    fn put<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) {
        // serializing plain data to a JSON value cannot fail (no maps with
        // non-string keys here)
        self.insert(key.into(), serde_json::to_value(value).unwrap_or(Value::Null));
    }

    fn put_value(&mut self, key: &'static str, value: Value) {
        self.insert(key.into(), value);
    }
}

/// A JSON object written field by field into a buffer; [`finish`](Self::finish)
/// closes it and reports the first serialization error, if any.
pub struct JsonObject<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
    error: Option<serde_json::Error>,
}

impl<'a> JsonObject<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        JsonObject { buf, first: true, error: None }
    }

    fn key(&mut self, key: &str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "field name needs escaping: {key}");
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    pub fn finish(self) -> Result<(), serde_json::Error> {
        self.buf.push(b'}');
        self.error.map_or(Ok(()), Err)
    }
}

impl Fields for JsonObject<'_> {
    fn put<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) {
        self.key(key);
        if let Err(e) = serde_json::to_writer(&mut *self.buf, value) {
            self.error.get_or_insert(e);
        }
    }

    fn put_value(&mut self, key: &'static str, value: Value) {
        self.put(key, &value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill(o: &mut impl Fields) {
        o.put("name", "a \"quoted\" name\n");
        o.put("n", &0.0);
        o.put("none", &None::<String>);
        o.put("list", &vec!["x", "y"]);
        o.put_value("nested", json!({"b": 1, "a": [true, null]}));
    }

    #[test]
    fn the_bytes_are_those_of_the_map_serialized() {
        let mut map = Map::new();
        fill(&mut map);
        let mut buf = b"prefix".to_vec();
        let mut o = JsonObject::new(&mut buf);
        fill(&mut o);
        o.finish().unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), format!("prefix{}", serde_json::to_string(&Value::Object(map)).unwrap()));
    }

    #[test]
    fn an_empty_object_is_braces() {
        let mut buf = vec![];
        JsonObject::new(&mut buf).finish().unwrap();
        assert_eq!(buf, b"{}");
    }
}
