//! The lenient building blocks the wire structs are made of, and the typed reads over them.
//!
//! Every field a wire struct declares is a [`Field<T>`]: `None` when Stripe left it out or sent
//! `null`, otherwise a [`Lenient<T>`] that holds either the decoded value or the reason it did
//! not decode. Decoding a wire struct therefore never fails because of one bad field; the
//! failure surfaces only when a conversion actually reads that field, through a [`Scope`],
//! which turns it into a [`WireError`] naming the field's full path and the event.
//!
//! Decoding is done in one pass over the body, without building a `serde_json::Value` tree: a
//! lenient field is first taken as its slice of the body ([`RawValue`], syntax-checked but not
//! decoded, no allocation), then `T` is decoded from that slice alone, so a misfit is
//! recorded for the field and the rest of the body is unaffected. A field nested `k` lenient
//! levels deep is thus scanned `k + 1` times, which costs less than allocating the tree.
//! Because only the fields declared are decoded, a value that is valid JSON syntax but cannot
//! be decoded (a `\ud800` lone surrogate, a number beyond `f64`, nesting deeper than
//! serde_json's limit of 128, a declared key sent twice) makes only its field invalid, and
//! only when that field is read.

use std::borrow::Cow;

use billing_domain::ids::check_id;
use billing_domain::{Currency, Money};
use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::de::StrRead;
use serde_json::value::RawValue;

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

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    /// Needs a deserializer over borrowed JSON text (`serde_json::from_slice`/`from_str`):
    /// any syntactically valid JSON value is accepted as its slice of the text, and whether
    /// it fits `T` is decided separately so that a misfit stays local to this field.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(deserializer)?;
        Ok(match decode::<T>(raw) {
            Ok(decoded) => Lenient::Valid(decoded),
            Err(message) => Lenient::Invalid(message),
        })
    }
}

/// Decodes one JSON value, given as its text, as `T`, refusing to read a struct from a JSON
/// array; the error is returned as its message.
///
/// serde's derived structs also accept a sequence of their fields in declaration order; Stripe
/// never sends that, and accepting it would silently misread a malformed field. The decoding
/// deserializer is serde_json's own, with its recursion limit.
pub(crate) fn decode<'de, T: Deserialize<'de>>(raw: &'de RawValue) -> Result<T, String> {
    let text = raw.get();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let decoded = T::deserialize(ObjectsOnly {
        first: first_byte(text),
        inner: &mut deserializer,
    })
    .and_then(|decoded| deserializer.end().map(|()| decoded));
    decoded.map_err(|error| message(&error))
}

/// An error's message without serde_json's ` at line L column C`: positions within a field's
/// own text would mislead, and the field's path is reported instead.
fn message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if error.line() == 0 {
        return text;
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// The first byte of a JSON value's text (a raw value carries no leading whitespace, but
/// it is skipped anyway).
fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|byte| !byte.is_ascii_whitespace())
}

/// A short name for the kind of a JSON value given as its text, for error messages.
pub(crate) fn kind_of(raw: &RawValue) -> &'static str {
    match first_byte(raw.get()) {
        Some(b'n') | None => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        Some(_) => "a number",
    }
}

/// serde_json's text deserializer, except that structs must be JSON objects.
struct ObjectsOnly<'a, 'de> {
    /// The first byte of the value's text.
    first: Option<u8>,
    inner: &'a mut serde_json::Deserializer<StrRead<'de>>,
}

/// Forwards `deserialize_*` methods taking only a visitor to serde_json's deserializer.
macro_rules! forward {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.inner.$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for ObjectsOnly<'_, 'de> {
    type Error = serde_json::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::Error as _;
        match self.first {
            Some(b'[') => Err(serde_json::Error::invalid_type(Unexpected::Seq, &visitor)),
            // serde_json would name the number; a `Value` did not, and the messages stay.
            Some(b'-' | b'0'..=b'9') => Err(serde_json::Error::invalid_type(
                Unexpected::Other("number"),
                &visitor,
            )),
            _ => self.inner.deserialize_struct(name, fields, visitor),
        }
    }
}

/// An expandable reference: Stripe sends either the id string or the expanded object, which
/// carries the same id in its `id` field. Only the id is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expandable(pub(crate) String);

impl<'de> Deserialize<'de> for Expandable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExpandableVisitor)
    }
}

struct ExpandableVisitor;

impl<'de> Visitor<'de> for ExpandableVisitor {
    type Value = Expandable;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an id string or an expanded object")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<Expandable, E> {
        Ok(Expandable(id.to_owned()))
    }

    fn visit_string<E: de::Error>(self, id: String) -> Result<Expandable, E> {
        Ok(Expandable(id))
    }

    /// The expanded object's `id` (the last one, should it be sent twice); the other members
    /// are skipped without being built.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expandable, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => id = map.next_value::<MaybeString>()?.0,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        id.map(Expandable)
            .ok_or_else(|| de::Error::custom("expanded object has no string `id` field"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Expandable, E> {
        Err(not_expandable("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Expandable, E> {
        Err(not_expandable("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Expandable, E> {
        Err(not_expandable("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Expandable, E> {
        Err(not_expandable("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Expandable, E> {
        Err(not_expandable("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Expandable, A::Error> {
        Err(not_expandable("an array"))
    }
}

fn not_expandable<E: de::Error>(found: &str) -> E {
    E::custom(format!(
        "expected an id string or an expanded object, found {found}"
    ))
}

/// A member name of an expanded object: `id` or another.
enum Key {
    Id,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(if key == "id" { Key::Id } else { Key::Other })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Any JSON value, kept only if it is a string.
struct MaybeString(Option<String>);

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeStringVisitor;
        impl<'de> Visitor<'de> for MaybeStringVisitor {
            type Value = MaybeString;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any JSON value")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(value.to_owned())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(value)))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MaybeString, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| MaybeString(None))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MaybeString, A::Error> {
                IgnoredAny.visit_map(map).map(|_| MaybeString(None))
            }
        }
        deserializer.deserialize_any(MaybeStringVisitor)
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
