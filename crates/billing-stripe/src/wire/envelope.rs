//! The event envelope: `id`, `type`, `created`, `api_version`, `livemode` and `data.object`.

use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::field::{Decode, EventRef, Field, Lenient, Scope, decode, kind, kind_of, refuse};
use crate::error::WireError;

/// The envelope of a Stripe event: what identifies it, without what it says.
///
/// [`peek_envelope`](crate::peek_envelope) reads only this, so a caller can record an event
/// whose object fails to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    /// Stripe's event id (`evt_…`).
    pub id: String,
    /// Stripe's event type string, e.g. `"invoice.paid"`.
    pub event_type: String,
    /// The API version the event was rendered with, when Stripe says.
    pub api_version: Option<String>,
    /// True for live-mode events, false for test mode (also when the field is absent).
    pub livemode: bool,
    /// When Stripe created the event.
    pub created: DateTime<Utc>,
}

/// An event body as sent; `D` is what `data` is read as (nothing at all when only peeking).
#[derive(Debug, Deserialize)]
pub(super) struct RawEvent<D> {
    id: Field<String>,
    #[serde(rename = "type")]
    event_type: Field<String>,
    api_version: Field<String>,
    livemode: Field<bool>,
    created: Field<i64>,
    data: Option<D>,
}

/// The `data` member of an event with its object kept as its slice of the body (checked to be
/// JSON, not decoded) until the type is known: Stripe sends `type` after `data`.
#[derive(Debug)]
pub(super) struct RawData<'a> {
    object: Option<&'a RawValue>,
}

/// `data` must be an object with `object` at most once; its other members are skipped.
impl<'de> Decode<'de> for RawData<'de> {
    fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error> {
        struct DataVisitor;
        impl<'de> Visitor<'de> for DataVisitor {
            type Value = Lenient<RawData<'de>>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct RawData")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut object = None;
                let mut twice = false;
                while let Some(key) = map.next_key::<ObjectKey>()? {
                    match key {
                        ObjectKey::Object => {
                            twice |= object.is_some();
                            object = Some(map.next_value::<Option<&'de RawValue>>()?);
                        }
                        ObjectKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if twice {
                    return Ok(Lenient::Invalid("duplicate field `object`".to_owned()));
                }
                Ok(Lenient::Valid(RawData {
                    object: object.flatten(),
                }))
            }

            refuse!("struct RawData"; str bool number unit seq);
        }
        deserializer.deserialize_any(DataVisitor)
    }
}

/// A member name of `data`: `object` or another.
enum ObjectKey {
    Object,
    Other,
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectKeyVisitor;
        impl Visitor<'_> for ObjectKeyVisitor {
            type Value = ObjectKey;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<ObjectKey, E> {
                Ok(if key == "object" {
                    ObjectKey::Object
                } else {
                    ObjectKey::Other
                })
            }
        }
        deserializer.deserialize_identifier(ObjectKeyVisitor)
    }
}

/// `data` when peeking: skipped without being built.
pub(super) type Skipped = IgnoredAny;

/// `data` when parsing, borrowing from the body.
pub(super) type Kept<'a> = Lenient<RawData<'a>>;

/// Reads the top level of a body, which must be one JSON object.
pub(super) fn read<'a, D: Deserialize<'a>>(payload: &'a [u8]) -> Result<RawEvent<D>, WireError> {
    // serde would also read a struct from a JSON array of its fields; a webhook body is
    // always an object, so anything else is refused before decoding.
    let first = payload.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        let message = match first {
            None => "the body is empty".to_owned(),
            Some(_) => match serde_json::from_slice::<Value>(payload) {
                Ok(value) => format!("expected a JSON object, found {}", kind(&value)),
                Err(error) => error.to_string(),
            },
        };
        return Err(WireError::NotJson { message });
    }
    serde_json::from_slice(payload).map_err(|error| WireError::NotJson {
        message: error.to_string(),
    })
}

impl<D> RawEvent<D> {
    /// The event's id and type as far as they are readable, for error reports.
    pub(super) fn event_ref(&self) -> EventRef<'_> {
        EventRef {
            id: valid_str(&self.id),
            event_type: valid_str(&self.event_type),
        }
    }

    /// The envelope, or the first missing or invalid envelope field.
    pub(super) fn envelope(&self) -> Result<EventEnvelope, WireError> {
        let root = Scope::root(self.event_ref());
        Ok(EventEnvelope {
            id: root.object_id(&self.id, "id", &["evt_"])?,
            event_type: root.required_string(&self.event_type, "type")?,
            created: root.required_time(&self.created, "created")?,
            api_version: root.string(&self.api_version, "api_version")?,
            livemode: root.flag(&self.livemode, "livemode")?,
        })
    }
}

impl RawEvent<Kept<'_>> {
    /// Decodes `data.object` as the wire struct `T`, returning it with the scope to read it in.
    ///
    /// Takes the object out of the event; a second call reports `data` as missing.
    pub(super) fn object<T: for<'de> Decode<'de>>(&mut self) -> Result<(T, Scope<'_>), WireError> {
        let data = self.data.take();
        let root = Scope::root(self.event_ref());
        // Checked for presence and validity through the scope, then taken apart by value.
        root.required(&data, "data")?;
        let scope = root.child("data");
        let object = match data {
            Some(Lenient::Valid(RawData {
                object: Some(object),
            })) => object,
            _ => return Err(scope.missing("object")),
        };
        let found = kind_of(object);
        if found != "an object" {
            return Err(scope.invalid("object", format!("expected an object, found {found}")));
        }
        let decoded = decode::<T>(object).map_err(|message| scope.invalid("object", message))?;
        Ok((decoded, scope.child("object")))
    }
}

fn valid_str(field: &Field<String>) -> Option<&str> {
    match field {
        Some(Lenient::Valid(value)) => Some(value),
        _ => None,
    }
}
