//! Times on the wire: RFC 3339 in UTC, written to the second (`2026-12-06T02:15:00Z`), read
//! with any precision and offset. For `#[serde(with = "…")]`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// A time as the API writes it: RFC 3339 in UTC, to the second.
pub fn format(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Writes a time to the second.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(at))
}

/// Reads an RFC 3339 time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    DateTime::<Utc>::deserialize(deserializer)
}

/// The same for an optional time (`null` when absent).
pub mod option {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a time to the second, or `null`.
    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an RFC 3339 time or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    #[test]
    fn times_are_written_to_the_second_in_utc() {
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 2, 15, 0).unwrap()
            + chrono::TimeDelta::milliseconds(999);
        assert_eq!(super::format(&at), "2026-12-06T02:15:00Z");
        let mut json = Vec::new();
        super::serialize(&at, &mut serde_json::Serializer::new(&mut json)).unwrap();
        assert_eq!(json, br#""2026-12-06T02:15:00Z""#);
        let read: DateTime<Utc> = super::deserialize(&mut serde_json::Deserializer::from_str(
            r#""2026-12-06T03:15:00.5+01:00""#,
        ))
        .unwrap();
        assert_eq!(
            read,
            Utc.with_ymd_and_hms(2026, 12, 6, 2, 15, 0).unwrap()
                + chrono::TimeDelta::milliseconds(500)
        );
    }
}
