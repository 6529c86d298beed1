//! What rendering records about `ref()` calls.

use serde::{Deserialize, Serialize};

/// A `ref(...)` call found while rendering.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RefCall {
    pub name: String,
    pub package: Option<String>,
    pub version: Option<String>,
}
