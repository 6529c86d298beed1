//! A node's resolved config and its other fields kept for the manifest
//! (`Node::config`, `Node::extra`), as a [`SharedMap`]: a JSON map that
//! nodes holding the same one share, copied only when one of them changes
//! it.
//!
//! Of the 10,000-model synthetic project's 40,000 nodes, the 30,000 tests
//! hold a handful of distinct configs (17 keys each) and of `extra` maps.
//! Held once per node, decoding them from the partial-parse cache was a
//! large part of a warm command's CPU. Now:
//! - reading the map is plain `Deref`; changing it (`DerefMut`) copies it
//!   first when it is shared (`Arc::make_mut`), so no node sees another's
//!   change;
//! - in JSON (the manifest, the Jinja context) it is the map, as before;
//! - in the binary caches ([`crate::util::frames`]) it is the map's
//!   encoding as one byte string, and inside [`interning`] a byte string
//!   already decoded gives back the same shared map without decoding it
//!   again;
//! - [`Interner`] shares the maps of nodes a load builds in bulk: the
//!   configs of the project's nodes once rendered (a folder's models
//!   usually end with the same one), and the configs and `extra` maps of
//!   generic tests.

use serde::de::{Error as _, Visitor};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::util::{FastMap, binval};

#[derive(Clone, Default, PartialEq)]
pub struct SharedMap(Arc<Map<String, Value>>);

impl SharedMap {
    pub fn new() -> SharedMap {
        SharedMap::default()
    }

    /// The map itself, copied only when shared.
    pub fn into_map(self) -> Map<String, Value> {
        Arc::unwrap_or_clone(self.0)
    }

    /// Whether both are the same shared map (not just equal).
    #[cfg(test)]
    pub fn shares(&self, other: &SharedMap) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SharedMap {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl DerefMut for SharedMap {
    fn deref_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(&mut self.0)
    }
}

impl From<Map<String, Value>> for SharedMap {
    fn from(m: Map<String, Value>) -> SharedMap {
        SharedMap(Arc::new(m))
    }
}

impl fmt::Debug for SharedMap {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for SharedMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return self.0.serialize(s);
        }
        s.serialize_bytes(&binval::encode_map(&self.0).map_err(S::Error::custom)?)
    }
}

thread_local! {
    /// The maps decoded so far inside [`interning`] on this thread, by their encoding.
    static DECODED: RefCell<Option<FastMap<Box<[u8]>, SharedMap>>> = const { RefCell::new(None) };
}

/// Runs `f` (a decode) with the maps it decodes on this thread shared by
/// their encoding; the shared set is dropped when `f` returns.
pub fn interning<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            if !self.0 {
                DECODED.with(|d| *d.borrow_mut() = None);
            }
        }
    }
    let nested = DECODED.with(|d| {
        let mut d = d.borrow_mut();
        let nested = d.is_some();
        d.get_or_insert_with(Default::default);
        nested
    });
    let _reset = Reset(nested);
    f()
}

fn from_encoding(bytes: &[u8]) -> Result<SharedMap, postcard::Error> {
    let known = DECODED.with(|d| d.borrow().as_ref().map(|d| d.get(bytes).cloned()));
    match known {
        Some(Some(c)) => Ok(c),
        Some(None) => {
            let c = SharedMap::from(binval::decode_map(bytes)?);
            DECODED.with(|d| d.borrow_mut().as_mut().map(|d| d.insert(bytes.into(), c.clone())));
            Ok(c)
        }
        None => Ok(SharedMap::from(binval::decode_map(bytes)?)),
    }
}

struct Encoded;

impl Visitor<'_> for Encoded {
    type Value = SharedMap;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an encoded JSON map")
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SharedMap, E> {
        from_encoding(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for SharedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedMap, D::Error> {
        if d.is_human_readable() {
            return Map::deserialize(d).map(SharedMap::from);
        }
        d.deserialize_bytes(Encoded).map_err(|e: D::Error| D::Error::custom(format!("shared map: {e}")))
    }
}

/// Shares maps among the nodes one task builds: the first node with a map
/// keeps it, later ones with the same map (the same keys in the same
/// order, the same values) get the same one. Maps are found by a hash of
/// their contents, so a project of distinct maps costs one hash per node.
#[derive(Default)]
pub struct Interner {
    /// The last few maps handed out, most recent first: nodes built in
    /// order mostly repeat one of them, found without hashing.
    recent: Vec<SharedMap>,
    seen: FastMap<u64, Vec<SharedMap>>,
    /// One seed for all of this interner's hashes.
    state: crate::util::FastHash,
}

impl Interner {
    pub fn share(&mut self, m: Map<String, Value>) -> SharedMap {
        use std::hash::{BuildHasher, Hasher};
        if let Some(i) = self.recent.iter().position(|c| same_map(c, &m)) {
            self.recent[..=i].rotate_right(1);
            return self.recent[0].clone();
        }
        let mut h = self.state.build_hasher();
        hash_map(&m, &mut h);
        let same = self.seen.entry(h.finish()).or_default();
        let c = match same.iter().find(|c| same_map(c, &m)) {
            Some(c) => c.clone(),
            None => {
                let c = SharedMap::from(m);
                same.push(c.clone());
                c
            }
        };
        self.recent.insert(0, c.clone());
        self.recent.truncate(4);
        c
    }
}

fn hash_map(m: &Map<String, Value>, h: &mut impl std::hash::Hasher) {
    h.write_usize(m.len());
    for (k, v) in m {
        h.write(k.as_bytes());
        hash_value(v, h);
    }
}

fn hash_value(v: &Value, h: &mut impl std::hash::Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => h.write_u8(1 + *b as u8),
        Value::Number(n) => {
            h.write_u8(3);
            h.write(n.to_string().as_bytes());
        }
        Value::String(s) => {
            h.write_u8(4);
            h.write(s.as_bytes());
        }
        Value::Array(a) => {
            h.write_u8(5);
            h.write_usize(a.len());
            a.iter().for_each(|v| hash_value(v, h));
        }
        Value::Object(m) => {
            h.write_u8(6);
            hash_map(m, h);
        }
    }
}

/// Equal with keys in the same order at every level (`Map`'s own `==`
/// ignores order, which the manifest shows).
fn same_map(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y)),
        (Value::Object(x), Value::Object(y)) => same_map(x, y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[derive(Serialize, Deserialize)]
    struct Two {
        a: SharedMap,
        b: SharedMap,
        c: SharedMap,
    }

    fn two() -> Two {
        let m = map(json!({"severity": "ERROR", "tags": ["x"], "meta": {}, "limit": null}));
        Two { a: m.clone().into(), b: m.into(), c: map(json!({"severity": "WARN"})).into() }
    }

    #[test]
    fn equal_configs_decoded_together_are_one_map_until_one_changes() {
        let bytes = postcard::to_stdvec(&two()).unwrap();
        let mut t: Two = interning(|| postcard::from_bytes(&bytes).unwrap());
        assert!(t.a.shares(&t.b));
        assert!(!t.a.shares(&t.c));
        assert_eq!(*t.a, map(json!({"severity": "ERROR", "tags": ["x"], "meta": {}, "limit": null})));
        assert_eq!(t.a.keys().collect::<Vec<_>>(), ["severity", "tags", "meta", "limit"]);
        t.b.insert("severity".into(), json!("WARN"));
        assert!(!t.a.shares(&t.b));
        assert_eq!(t.a["severity"], "ERROR");
        assert_eq!(t.b["severity"], "WARN");
        // outside `interning`, nothing is shared and nothing is kept
        let apart: Two = postcard::from_bytes(&bytes).unwrap();
        assert!(!apart.a.shares(&apart.b));
        assert!(DECODED.with(|d| d.borrow().is_none()));
    }

    #[test]
    fn json_is_the_map() {
        let text = serde_json::to_string(&two()).unwrap();
        assert_eq!(
            text,
            r#"{"a":{"severity":"ERROR","tags":["x"],"meta":{},"limit":null},"b":{"severity":"ERROR","tags":["x"],"meta":{},"limit":null},"c":{"severity":"WARN"}}"#
        );
        let back: Two = serde_json::from_str(&text).unwrap();
        assert_eq!(*back.c, map(json!({"severity": "WARN"})));
    }

    #[test]
    fn a_cut_encoding_is_an_error() {
        let mut bytes = postcard::to_stdvec(&two()).unwrap();
        // the first map's encoding: its length, then the map; cut its last byte
        bytes[0] -= 1;
        assert!(postcard::from_bytes::<Two>(&bytes).is_err());
    }

    #[test]
    fn the_interner_shares_configs_with_the_same_keys_in_the_same_order_only() {
        let mut i = Interner::default();
        let a = i.share(map(json!({"x": 1, "m": {"p": 1, "q": [1, "s"]}})));
        let b = i.share(map(json!({"x": 1, "m": {"p": 1, "q": [1, "s"]}})));
        assert!(a.shares(&b));
        for other in [
            json!({"x": 2, "m": {"p": 1, "q": [1, "s"]}}),
            json!({"m": {"p": 1, "q": [1, "s"]}, "x": 1}),
            json!({"x": 1, "m": {"q": [1, "s"], "p": 1}}),
            json!({"x": 1.0, "m": {"p": 1, "q": [1, "s"]}}),
        ] {
            let c = i.share(map(other.clone()));
            assert!(!a.shares(&c), "{other}");
            assert_eq!(serde_json::to_string(&c).unwrap(), other.to_string());
        }
        // many distinct configs: each kept, each found again
        let many: Vec<SharedMap> = (0..100).map(|n| i.share(map(json!({"where": format!("id > {n}")})))).collect();
        for (n, c) in many.iter().enumerate() {
            assert!(i.share(map(json!({"where": format!("id > {n}")}))).shares(c));
        }
    }
}
