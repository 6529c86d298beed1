//! `serde_json` values inside the binary caches (`crate::util::frames`).
//!
//! A JSON `Value` serializes itself untagged and reads itself back with
//! `deserialize_any`, which a format without type information (postcard)
//! cannot do. Fields holding values name this module
//! (`#[serde(with = "crate::util::binval")]`, or `binval::map` for a
//! `Map`): in a human-readable format (JSON: the manifest, the Jinja
//! context) they are written exactly as before; in a binary one each value
//! is written as a tagged enum ([`VARIANTS`]) and read back by [`ValueSeed`].

use serde::de::{DeserializeOwned, DeserializeSeed, EnumAccess, Error as _, SeqAccess, Unexpected, VariantAccess, Visitor};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The variants of a JSON value as the binary form stores it, in the
/// order that is the format: [`Tagged`] writes these indices and
/// [`ValueSeed`] reads them.
const VARIANTS: [&str; 8] = ["Null", "Bool", "U", "I", "F", "S", "A", "O"];

/// Reads a value written by [`Tagged`] straight into a `Value`: arrays and
/// objects are built as their elements arrive, with no copy of the tree in
/// between (decoding the caches' 40,000 nodes is mostly their config maps).
#[derive(Clone, Copy)]
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_enum("Bin", &VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tagged JSON value")
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (index, v): (u32, _) = data.variant()?;
        Ok(match index {
            0 => {
                v.unit_variant()?;
                Value::Null
            }
            1 => Value::Bool(v.newtype_variant()?),
            2 => Value::Number(v.newtype_variant::<u64>()?.into()),
            3 => Value::Number(v.newtype_variant::<i64>()?.into()),
            4 => Number::from_f64(v.newtype_variant()?).map_or(Value::Null, Value::Number),
            5 => Value::String(v.newtype_variant()?),
            6 => Value::Array(v.newtype_variant_seed(Elements)?),
            7 => Value::Object(v.newtype_variant_seed(PairsSeed)?),
            i => return Err(A::Error::invalid_value(Unexpected::Unsigned(i.into()), &"a variant index below 8")),
        })
    }
}

/// An array's elements.
struct Elements;

impl<'de> DeserializeSeed<'de> for Elements {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tagged JSON values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(ValueSeed)? {
            out.push(v);
        }
        Ok(out)
    }
}

/// An object's `(key, value)` pairs, inserted into the map as they are read.
struct PairsSeed;

impl<'de> DeserializeSeed<'de> for PairsSeed {
    type Value = Map<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Map<String, Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of (key, tagged JSON value) pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Map<String, Value>, A::Error> {
        let mut m = Map::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = seq.next_element_seed(Pair)? {
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// One `(key, value)` pair (a 2-tuple).
struct Pair;

impl<'de> DeserializeSeed<'de> for Pair {
    type Value = (String, Value);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(String, Value), D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for Pair {
    type Value = (String, Value);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a (key, tagged JSON value) pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(String, Value), A::Error> {
        let k: String = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
        let v = seq.next_element_seed(ValueSeed)?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
        Ok((k, v))
    }
}

/// A borrowed value written as its variant of [`VARIANTS`].
struct Tagged<'a>(&'a Value);

/// A borrowed map written as variant `O`'s list of pairs.
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
    serde_json::from_value(ValueSeed.deserialize(d)?).map_err(D::Error::custom)
}

/// A map's binary form on its own (postcard of its pairs).
pub fn encode_map(m: &Map<String, Value>) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(&Pairs(m))
}

/// Reads [`encode_map`]'s bytes back; every byte must be used.
pub fn decode_map(bytes: &[u8]) -> Result<Map<String, Value>, postcard::Error> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let m = PairsSeed.deserialize(&mut de)?;
    if !de.finalize()?.is_empty() {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok(m)
}

/// A `Map<String, Value>` field, written in binary as its pairs (no copy
/// through a `Value`).
pub mod map {
    use super::*;

    pub fn serialize<S: Serializer>(m: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { m.serialize(s) } else { Pairs(m).serialize(s) }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
        if d.is_human_readable() { Map::deserialize(d) } else { PairsSeed.deserialize(d) }
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
