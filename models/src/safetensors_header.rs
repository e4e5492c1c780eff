//! The JSON header of a safetensors file, checked and written in one
//! canonical form.
//!
//! A safetensors file opens with an 8-byte little-endian length `n`, then
//! `n` bytes of JSON: one entry per tensor (`"encoder.weight": {"dtype":
//! "F32", "shape": [64, 784], "data_offsets": [0, 200704]}`) and an optional
//! `"__metadata__"` object of strings. The `safetensors` crate reads that
//! JSON into hash maps, which has two consequences this module mends:
//!
//! - **A name given twice is accepted**, the last one winning, so a file
//!   can hold a tensor that nothing reads. [`check_unique_names`] walks the
//!   JSON once, keeping every key, and refuses a repeated tensor or
//!   metadata name before the crate sees the file.
//! - **The metadata is written in hash order**, which changes from run to
//!   run, so two identical trainings give files with other bytes.
//!   [`canonical`] rewrites a serialized file's header with every key in
//!   sorted order (same length, same data), so the same tensors and
//!   metadata always give the same bytes and a hash can check a
//!   reproduction.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// The length prefix of a safetensors file.
const N_LEN: usize = 8;

/// The largest header the `safetensors` crate accepts (100 MB).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The header's JSON text, after checking the length prefix against the
/// file.
fn header_text(bytes: &[u8]) -> Result<&[u8], String> {
    let prefix: [u8; N_LEN] = bytes
        .get(..N_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("the file has {} bytes, fewer than the 8-byte header length", bytes.len()))?;
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER_BYTES {
        return Err(format!("the header length {n} is over the {MAX_HEADER_BYTES}-byte limit"));
    }
    let end = N_LEN as u64 + n;
    if end > bytes.len() as u64 {
        return Err(format!("the header length {n} runs past the end of the file ({} bytes)", bytes.len()));
    }
    Ok(&bytes[N_LEN..end as usize])
}

/// Refuses a header in which a tensor name, or a metadata key, appears
/// twice. Other problems (bad JSON, bad offsets) are left to the
/// `safetensors` crate, which names them.
pub fn check_unique_names(bytes: &[u8]) -> Result<(), String> {
    let text = header_text(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(text);
    match de.deserialize_map(UniqueKeys { top_level: true }) {
        Ok(()) => Ok(()),
        // Only our own complaint is reported here; a malformed header is
        // the crate's to describe.
        Err(e) if e.to_string().contains(DUPLICATE) => {
            let s = e.to_string();
            Err(s[..s.find(" at line").unwrap_or(s.len())].to_string())
        }
        Err(_) => Ok(()),
    }
}

const DUPLICATE: &str = "appears twice in the header";

/// A JSON object whose keys must be distinct; at the top level, the
/// `__metadata__` object's keys are checked too.
struct UniqueKeys {
    top_level: bool,
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                let what = if self.top_level { "tensor name" } else { "metadata key" };
                return Err(de::Error::custom(format!("the {what} `{key}` {DUPLICATE}")));
            }
            if self.top_level && key == "__metadata__" {
                map.next_value_seed(UniqueKeysSeed)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Deserializes the `__metadata__` value with [`UniqueKeys`].
struct UniqueKeysSeed;

impl<'de> de::DeserializeSeed<'de> for UniqueKeysSeed {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(UniqueKeys { top_level: false })
    }
}

/// The serialized file `bytes` with its header rewritten in sorted key
/// order (tensor entries, then the metadata's keys), padded with spaces to
/// a multiple of 8 bytes as the format asks. The data bytes are unchanged.
pub fn canonical(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text = header_text(bytes)?;
    let data = &bytes[N_LEN + text.len()..];
    // Each tensor's entry is kept as the text the crate wrote (its fields
    // in their usual order); only the order of the entries and of the
    // metadata's keys changes.
    let entries: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(text).map_err(|e| format!("reading back the header: {e}"))?;
    let mut header = String::from("{");
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&serde_json::to_string(key).map_err(|e| e.to_string())?);
        header.push(':');
        if key == "__metadata__" {
            let sorted: BTreeMap<String, String> =
                serde_json::from_str(value.get()).map_err(|e| format!("reading back the metadata: {e}"))?;
            header.push_str(&serde_json::to_string(&sorted).map_err(|e| e.to_string())?);
        } else {
            header.push_str(value.get());
        }
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(N_LEN), b' ');
    let mut out = Vec::with_capacity(N_LEN + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    Ok(out)
}
