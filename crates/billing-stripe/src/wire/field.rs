//! The lenient building blocks the wire structs are made of, and the typed reads over them.
//!
//! Every field a wire struct declares is a [`Field<T>`]: `None` when Stripe left it out or sent
//! `null`, otherwise a [`Lenient<T>`] that holds either the decoded value or the reason it did
//! not decode. Decoding a wire struct therefore never fails because of one bad field; the
//! failure surfaces only when a conversion actually reads that field, through a [`Scope`],
//! which turns it into a [`WireError`] naming the field's full path and the event.

use std::borrow::Cow;

use billing_domain::ids::check_id;
use billing_domain::{Currency, Money};
use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::WireError;

/// The latest unix timestamp read (9999-12-31T23:59:59Z): both backends store every time
/// from 1970 up to it.
pub(crate) const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// A field as sent: absent or `null` (`None`), or a value that did or did not decode.
pub(crate) type Field<T> = Option<Lenient<T>>;

/// A present field that either decoded as `T` or kept the decoding error for later.
#[derive(Debug, Clone)]
pub(crate) enum Lenient<T> {
    /// The value decoded.
    Valid(T),
    /// The value did not decode; the message says why.
    Invalid(String),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Any syntactically valid JSON value is accepted here; whether it fits `T` is decided
        // separately so that a misfit stays local to this field.
        let value = Value::deserialize(deserializer)?;
        Ok(match decode::<T>(value) {
            Ok(decoded) => Lenient::Valid(decoded),
            Err(error) => Lenient::Invalid(error.to_string()),
        })
    }
}

/// Decodes a JSON value as `T`, refusing to read a struct from a JSON array.
///
/// serde's derived structs also accept a sequence of their fields in declaration order; Stripe
/// never sends that, and accepting it would silently misread a malformed field.
pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(ObjectsOnly(value))
}

/// A JSON value as a deserializer whose structs must be JSON objects.
struct ObjectsOnly(Value);

impl<'de> Deserializer<'de> for ObjectsOnly {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::Error as _;
        match self.0 {
            object @ Value::Object(_) => object.deserialize_any(visitor),
            other => Err(serde_json::Error::invalid_type(
                unexpected(&other),
                &visitor,
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// An expandable reference: Stripe sends either the id string or the expanded object, which
/// carries the same id in its `id` field. Only the id is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expandable(pub(crate) String);

impl<'de> Deserialize<'de> for Expandable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(deserializer)? {
            Value::String(id) => Ok(Expandable(id)),
            Value::Object(mut object) => match object.remove("id") {
                Some(Value::String(id)) => Ok(Expandable(id)),
                _ => Err(D::Error::custom("expanded object has no string `id` field")),
            },
            other => Err(D::Error::custom(format!(
                "expected an id string or an expanded object, found {}",
                kind(&other)
            ))),
        }
    }
}

/// The `metadata` hash, reduced to the keys we read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Metadata {
    /// Our user id, set by our server when it created the object.
    pub(crate) user_id: Field<String>,
}

/// A Stripe list object (`{"object": "list", "data": [...], "has_more": …}`), reduced to `data`.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub(crate) struct List<T> {
    /// The entries sent inline (Stripe sends at most the first page); each one decodes on its
    /// own, so a malformed entry only matters if it is read.
    pub(crate) data: Field<Vec<Lenient<T>>>,
}

/// Which event a field belongs to, for error reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventRef<'a> {
    /// The event id, if known.
    pub(crate) id: Option<&'a str>,
    /// The event type, if known.
    pub(crate) event_type: Option<&'a str>,
}

impl EventRef<'_> {
    fn missing(self, field: String) -> WireError {
        WireError::MissingField {
            event_id: self.id.map(str::to_owned),
            event_type: self.event_type.map(str::to_owned),
            field,
        }
    }

    fn invalid(self, field: String, message: impl Into<String>) -> WireError {
        WireError::InvalidField {
            event_id: self.id.map(str::to_owned),
            event_type: self.event_type.map(str::to_owned),
            field,
            message: message.into(),
        }
    }
}

/// A position in the event body (e.g. `data.object.items.data[0]`) from which fields are read.
#[derive(Debug, Clone)]
pub(crate) struct Scope<'a> {
    event: EventRef<'a>,
    path: Cow<'a, str>,
}

impl<'a> Scope<'a> {
    /// The event root.
    pub(crate) fn root(event: EventRef<'a>) -> Self {
        Scope {
            event,
            path: Cow::Borrowed(""),
        }
    }

    /// The scope of a nested object or list entry, e.g. `child("items.data[0]")`.
    pub(crate) fn child(&self, name: &str) -> Scope<'a> {
        Scope {
            event: self.event,
            path: Cow::Owned(self.path_of(name)),
        }
    }

    /// The full path of a field in this scope.
    pub(crate) fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// An [`WireError::InvalidField`] for a field of this scope.
    pub(crate) fn invalid(&self, name: &str, message: impl Into<String>) -> WireError {
        self.event.invalid(self.path_of(name), message)
    }

    /// A [`WireError::MissingField`] for a field of this scope.
    pub(crate) fn missing(&self, name: &str) -> WireError {
        self.event.missing(self.path_of(name))
    }

    /// The decoded value of an optional field: `None` when absent or `null`.
    pub(crate) fn optional<'f, T>(
        &self,
        field: &'f Field<T>,
        name: &str,
    ) -> Result<Option<&'f T>, WireError> {
        match field {
            None => Ok(None),
            Some(Lenient::Valid(value)) => Ok(Some(value)),
            Some(Lenient::Invalid(message)) => Err(self.invalid(name, message.as_str())),
        }
    }

    /// The decoded value of a required field: absent or `null` is a [`WireError::MissingField`].
    pub(crate) fn required<'f, T>(
        &self,
        field: &'f Field<T>,
        name: &str,
    ) -> Result<&'f T, WireError> {
        self.optional(field, name)?
            .ok_or_else(|| self.missing(name))
    }

    /// The decoded value of a list entry, e.g. `entry(&data[0], "data[0]")`.
    pub(crate) fn entry<'f, T>(
        &self,
        entry: &'f Lenient<T>,
        name: &str,
    ) -> Result<&'f T, WireError> {
        match entry {
            Lenient::Valid(value) => Ok(value),
            Lenient::Invalid(message) => Err(self.invalid(name, message.as_str())),
        }
    }

    /// An optional string; it may not contain NUL, which no database stores in text.
    pub(crate) fn string(
        &self,
        field: &Field<String>,
        name: &str,
    ) -> Result<Option<String>, WireError> {
        self.optional(field, name)?
            .map(|value| self.text(value, name))
            .transpose()
    }

    /// A required, non-empty string without NUL.
    pub(crate) fn required_string(
        &self,
        field: &Field<String>,
        name: &str,
    ) -> Result<String, WireError> {
        let value = self.text(self.required(field, name)?, name)?;
        if value.is_empty() {
            return Err(self.invalid(name, "must not be empty"));
        }
        Ok(value)
    }

    /// The object's own id: required, an [id](Self::checked_id), starting with one of
    /// `prefixes` (Stripe's prefix for the object, e.g. `cus_`).
    pub(crate) fn object_id(
        &self,
        field: &Field<String>,
        name: &str,
        prefixes: &[&str],
    ) -> Result<String, WireError> {
        let id = self.checked_id(self.required(field, name)?, name)?;
        if !prefixes.iter().any(|prefix| id.starts_with(prefix)) {
            return Err(self.invalid(
                name,
                format!("expected an id starting with {}", prefixes.join(" or ")),
            ));
        }
        Ok(id)
    }

    /// The id of an optional expandable reference.
    pub(crate) fn id(
        &self,
        field: &Field<Expandable>,
        name: &str,
    ) -> Result<Option<String>, WireError> {
        self.optional(field, name)?
            .map(|id| self.checked_id(&id.0, name))
            .transpose()
    }

    /// The id of a required expandable reference.
    pub(crate) fn required_id(
        &self,
        field: &Field<Expandable>,
        name: &str,
    ) -> Result<String, WireError> {
        self.checked_id(&self.required(field, name)?.0, name)
    }

    /// `value` unless it contains NUL.
    fn text(&self, value: &str, name: &str) -> Result<String, WireError> {
        if value.contains('\0') {
            return Err(self.invalid(name, "contains a NUL character"));
        }
        Ok(value.to_owned())
    }

    /// `value` if it can be an id ([`billing_domain::ids::check_id`]).
    fn checked_id(&self, value: &str, name: &str) -> Result<String, WireError> {
        check_id(value).map_err(|problem| self.invalid(name, problem.to_string()))?;
        Ok(value.to_owned())
    }

    /// An optional boolean; absent or `null` reads as `false`.
    pub(crate) fn flag(&self, field: &Field<bool>, name: &str) -> Result<bool, WireError> {
        Ok(self.optional(field, name)?.copied().unwrap_or(false))
    }

    /// An optional unix timestamp (seconds) as a UTC time.
    pub(crate) fn time(
        &self,
        field: &Field<i64>,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, WireError> {
        self.optional(field, name)?
            .map(|&seconds| self.seconds_to_time(seconds, name))
            .transpose()
    }

    /// A required unix timestamp (seconds) as a UTC time.
    pub(crate) fn required_time(
        &self,
        field: &Field<i64>,
        name: &str,
    ) -> Result<DateTime<Utc>, WireError> {
        let seconds = *self.required(field, name)?;
        self.seconds_to_time(seconds, name)
    }

    fn seconds_to_time(&self, seconds: i64, name: &str) -> Result<DateTime<Utc>, WireError> {
        if !(0..=MAX_UNIX_SECONDS).contains(&seconds) {
            return Err(self.invalid(
                name,
                format!("unix timestamp {seconds} is outside 1970-01-01 … 9999-12-31"),
            ));
        }
        DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| self.invalid(name, format!("unix timestamp {seconds} is out of range")))
    }

    /// A required, non-negative integer amount in minor units (Stripe never sends a negative
    /// one where this is read). Floats and strings are rejected when decoding.
    pub(crate) fn amount(&self, field: &Field<i64>, name: &str) -> Result<i64, WireError> {
        let amount = *self.required(field, name)?;
        if amount < 0 {
            return Err(self.invalid(name, format!("{amount} is negative")));
        }
        Ok(amount)
    }

    /// A required three-letter currency code.
    pub(crate) fn currency(
        &self,
        field: &Field<String>,
        name: &str,
    ) -> Result<Currency, WireError> {
        let code = self.required(field, name)?;
        Currency::parse(code).map_err(|error| self.invalid(name, error.to_string()))
    }

    /// A required, non-negative amount with the object's required currency.
    pub(crate) fn money(
        &self,
        amount: &Field<i64>,
        amount_name: &str,
        currency: &Field<String>,
        currency_name: &str,
    ) -> Result<Money, WireError> {
        let amount = self.amount(amount, amount_name)?;
        Ok(Money::new(amount, self.currency(currency, currency_name)?))
    }

    /// `metadata.user_id`, if set.
    pub(crate) fn metadata_user_id(
        &self,
        metadata: &Field<Metadata>,
    ) -> Result<Option<String>, WireError> {
        match self.optional(metadata, "metadata")? {
            None => Ok(None),
            Some(metadata) => {
                let scope = self.child("metadata");
                scope
                    .optional(&metadata.user_id, "user_id")?
                    .map(|user| scope.checked_id(user, "user_id"))
                    .transpose()
            }
        }
    }

    /// Checks the object's `object` discriminator when Stripe sent one.
    ///
    /// A mismatch means the event carries a different object than its type promises, which
    /// would otherwise be misread field by field.
    pub(crate) fn expect_object(
        &self,
        field: &Field<String>,
        expected: &str,
    ) -> Result<(), WireError> {
        match self.optional(field, "object")? {
            Some(found) if found != expected => Err(self.invalid(
                "object",
                format!("expected a `{expected}` object, found `{found}`"),
            )),
            _ => Ok(()),
        }
    }
}

/// A short name for a JSON value's kind, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
