//! The value encoding: one format byte, then postcard.
//!
//! postcard is compact (varints, no field names), which matters at a million file records;
//! it is not self-describing, so the format byte lets a later build tell an old layout from
//! a new one during a migration. JSON documents we store (analysis reports, audit details)
//! are kept as JSON text inside the record, never re-serialised, so what was hashed or
//! written is exactly what is read back.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// The current encoding: postcard, layout 1.
pub(crate) const FORMAT_V1: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    // Serialising our own plain structs into a Vec cannot fail.
    let body = postcard::to_stdvec(value).expect("postcard encodes plain structs");
    out.extend_from_slice(&body);
    out
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_V1, body)) => postcard::from_bytes(body).map_err(|e| StoreError::Corrupt {
            table,
            reason: e.to_string(),
        }),
        Some((v, _)) => Err(StoreError::Corrupt {
            table,
            reason: format!("unknown record format {v}"),
        }),
        None => Err(StoreError::Corrupt {
            table,
            reason: "empty record".into(),
        }),
    }
}

/// Timestamps are stored as milliseconds since the Unix epoch (UTC).
/// A typed value kept as JSON text inside a postcard record: the host's policy types
/// (grants, subscriptions, remediation) use serde attributes postcard cannot carry
/// (`skip_serializing_if`, defaults for missing fields), and as JSON they can gain a field
/// without a store migration.
pub(crate) mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(S::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

pub(crate) mod ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn to_ms(t: OffsetDateTime) -> i64 {
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    pub fn from_ms(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(to_ms(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        Ok(from_ms(i64::deserialize(d)?))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_some(&to_ms(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Ok(Option::<i64>::deserialize(d)?.map(from_ms))
        }
    }
}
