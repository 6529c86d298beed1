//! `serde_json` values inside the binary caches (`crate::util::frames`).
//!
//! A JSON `Value` serializes itself untagged and reads itself back with
//! `deserialize_any`, which a format without type information (postcard)
//! cannot do. Fields holding values name this module
//! (`#[serde(with = "crate::util::binval")]`, or `binval::map` for a
//! `Map`): in a human-readable format (JSON: the manifest, the Jinja
//! context) they are written exactly as before; in a binary one each value
//! is written as a tagged enum ([`Bin`]) and read back through it.

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// A JSON value as the binary form stores it. The variants' order is the
/// format: [`Tagged`] writes the same indices.
#[derive(Deserialize)]
enum Bin {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    S(String),
    A(Vec<Bin>),
    O(Vec<(String, Bin)>),
}

impl From<Bin> for Value {
    fn from(b: Bin) -> Value {
        match b {
            Bin::Null => Value::Null,
            Bin::Bool(b) => Value::Bool(b),
            Bin::U(u) => Value::Number(u.into()),
            Bin::I(i) => Value::Number(i.into()),
            Bin::F(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Bin::S(s) => Value::String(s),
            Bin::A(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            Bin::O(o) => Value::Object(to_map(o)),
        }
    }
}

fn to_map(o: Vec<(String, Bin)>) -> Map<String, Value> {
    let mut m = Map::with_capacity(o.len());
    for (k, v) in o {
        m.insert(k, v.into());
    }
    m
}

/// A borrowed value written as [`Bin`].
struct Tagged<'a>(&'a Value);

/// A borrowed map written as [`Bin::O`]'s list of pairs.
struct Pairs<'a>(&'a Map<String, Value>);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const NAME: &str = "Bin";
        match self.0 {
            Value::Null => s.serialize_unit_variant(NAME, 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant(NAME, 1, "Bool", b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => s.serialize_newtype_variant(NAME, 2, "U", &u),
                (_, Some(i), _) => s.serialize_newtype_variant(NAME, 3, "I", &i),
                (_, _, Some(f)) => s.serialize_newtype_variant(NAME, 4, "F", &f),
                _ => Err(S::Error::custom(format!("number {n} has no binary form"))),
            },
            Value::String(t) => s.serialize_newtype_variant(NAME, 5, "S", t),
            Value::Array(a) => s.serialize_newtype_variant(NAME, 6, "A", &a.iter().map(Tagged).collect::<Vec<_>>()),
            Value::Object(m) => s.serialize_newtype_variant(NAME, 7, "O", &Pairs(m)),
        }
    }
}

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(k, v)| (k, Tagged(v))))
    }
}

/// Any field that serde_json can turn into a `Value` (`Option<Value>`,
/// `Vec<Value>`, tuples of them): in binary, through a `Value`.
pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        return v.serialize(s);
    }
    let v = serde_json::to_value(v).map_err(S::Error::custom)?;
    Tagged(&v).serialize(s)
}

pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    if d.is_human_readable() {
        return T::deserialize(d);
    }
    serde_json::from_value(Bin::deserialize(d)?.into()).map_err(D::Error::custom)
}

/// A map's binary form on its own (postcard of its pairs).
pub fn encode_map(m: &Map<String, Value>) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(&Pairs(m))
}

/// Reads [`encode_map`]'s bytes back; every byte must be used.
pub fn decode_map(bytes: &[u8]) -> Result<Map<String, Value>, postcard::Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let pairs = Vec::<(String, Bin)>::deserialize(&mut de)?;
    if !de.finalize()?.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(to_map(pairs))
}

/// A `Map<String, Value>` field, written in binary as its pairs (no copy
/// through a `Value`).
pub mod map {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { m.serialize(s) } else { Pairs(m).serialize(s) }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
        if d.is_human_readable() { Map::deserialize(d) } else { Ok(to_map(Vec::deserialize(d)?)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(with = "super::map")]
        config: Map<String, Value>,
        #[serde(with = "super")]
        freshness: Option<Value>,
        #[serde(with = "super")]
        constraints: Vec<Value>,
        name: String,
    }

    fn holder() -> Holder {
        let Value::Object(config) = json!({"z": 1, "a": [true, null, -3, 2.5, {"k": "v\n\"x\""}], "m": {}, "big": u64::MAX}) else { unreachable!() };
        Holder { config, freshness: Some(json!({"warn_after": {"count": 1}})), constraints: vec![json!("x"), json!(-0.0)], name: "n".into() }
    }

    #[test]
    fn values_round_trip_through_postcard_in_order() {
        let h = holder();
        let bytes = postcard::to_stdvec(&h).unwrap();
        let back: Holder = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.config.keys().collect::<Vec<_>>(), ["z", "a", "m", "big"]);
    }

    #[test]
    fn a_tag_past_the_last_variant_is_an_error() {
        let mut bytes = postcard::to_stdvec(&holder()).unwrap();
        // the config's length (4), its first key ("z") and then the value's tag
        assert_eq!(&bytes[..4], [4, 1, b'z', 2]);
        bytes[3] = 8;
        let err = postcard::from_bytes::<Holder>(&bytes).unwrap_err();
        assert_eq!(err, postcard::Error::SerdeDeCustom);
    }

    #[test]
    fn json_is_unchanged() {
        let h = holder();
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(
            text,
            r#"{"config":{"z":1,"a":[true,null,-3,2.5,{"k":"v\n\"x\""}],"m":{},"big":18446744073709551615},"freshness":{"warn_after":{"count":1}},"constraints":["x",-0.0],"name":"n"}"#
        );
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), h);
    }
}
