//! The lenient building blocks the wire structs are made of, and the typed reads over them.
//!
//! Every field a wire struct declares is a [`Field<T>`]: `None` when Stripe left it out or sent
//! `null`, otherwise a [`Lenient<T>`] that holds either the decoded value or the reason it did
//! not decode. Decoding a wire struct therefore never fails because of one bad field; the
//! failure surfaces only when a conversion actually reads that field, through a [`Scope`],
//! which turns it into a [`WireError`] naming the field's full path and the event.
//!
//! Decoding is one pass over the body, without building a `serde_json::Value` tree: every type
//! a field can hold implements [`Decode`], which reads any JSON value and answers
//! [`Lenient::Invalid`] for a misfit after skipping the rest of that value, so the pass goes
//! on. Only a body that is not JSON (or nests deeper than serde_json's limit of 128 where it
//! is decoded) fails the pass. Members the structs do not declare are skipped without being
//! built, and so is the body's nesting there. A wire struct is declared with [`wire_struct!`].

use std::borrow::Cow;

use billing_domain::ids::check_id;
use billing_domain::{Currency, Money};
use chrono::{DateTime, Utc};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
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

/// A type a lenient field can hold: read from any JSON value, a misfit becoming
/// [`Lenient::Invalid`] (with the message serde would give) instead of an error.
pub(crate) trait Decode<'de>: Sized {
    /// Reads one value through `deserializer` (which must describe itself, as serde_json's
    /// does). `Err` only when the deserializer fails, i.e. the body is not JSON.
    fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error>;
}

impl<'de, T: Decode<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::decode(deserializer)
    }
}

/// Decodes one JSON value, given as its text, as `T`; a misfit is returned as its message.
///
/// The text is read with serde_json's own deserializer and its recursion limit.
pub(crate) fn decode<'de, T: Decode<'de>>(raw: &'de RawValue) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    let decoded = T::decode(&mut deserializer).and_then(|decoded| {
        deserializer.end()?;
        Ok(decoded)
    });
    match decoded {
        Ok(Lenient::Valid(value)) => Ok(value),
        Ok(Lenient::Invalid(message)) => Err(message),
        // The text was checked to be JSON syntax when it was taken from the body; what can
        // still fail is a decoded value no Rust type holds (a number beyond `f64`, a lone
        // surrogate escape) or nesting past the recursion limit. The message keeps
        // serde_json's position, which is within this text.
        Err(error) => Err(error.to_string()),
    }
}

/// The message serde gives for a value of the wrong type.
pub(crate) fn misfit(unexpected: Unexpected<'_>, expected: &str) -> String {
    <serde_json::Error as de::Error>::invalid_type(unexpected, &expected).to_string()
}

/// The message serde gives for a value of the right type out of range.
fn out_of_range(unexpected: Unexpected<'_>, expected: &str) -> String {
    <serde_json::Error as de::Error>::invalid_value(unexpected, &expected).to_string()
}

/// A short name for the kind of a JSON value given as its text, for error messages.
pub(crate) fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().bytes().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'n') | None => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        Some(_) => "a number",
    }
}

/// `visit_*` methods of a [`Decode`] visitor that answer [`Lenient::Invalid`] with serde's
/// message for a value of the wrong kind, `$expected` naming what was wanted. Arrays and
/// objects are skipped to their end first, so the pass goes on after them. `number` names
/// numbers as `number`, like serde_json's `Value`, where `int`/`float` give their value.
macro_rules! refuse {
    ($expected:expr; $($kind:ident)*) => {
        $( $crate::wire::field::refuse!(@one $expected; $kind); )*
    };
    (@one $expected:expr; str) => {
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Str(value),
                $expected,
            )))
        }
    };
    (@one $expected:expr; bool) => {
        fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Bool(value),
                $expected,
            )))
        }
    };
    (@one $expected:expr; int) => {
        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Signed(value),
                $expected,
            )))
        }
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Unsigned(value),
                $expected,
            )))
        }
    };
    (@one $expected:expr; float) => {
        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Float(value),
                $expected,
            )))
        }
    };
    (@one $expected:expr; number) => {
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            self.visit_f64(0.0)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            self.visit_f64(0.0)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Other("number"),
                $expected,
            )))
        }
    };
    (@one $expected:expr; unit) => {
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Unit,
                $expected,
            )))
        }
    };
    (@one $expected:expr; seq) => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            serde::de::Visitor::visit_seq(serde::de::IgnoredAny, seq)?;
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Seq,
                $expected,
            )))
        }
    };
    (@one $expected:expr; map) => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            serde::de::Visitor::visit_map(serde::de::IgnoredAny, map)?;
            Ok($crate::wire::field::Lenient::Invalid($crate::wire::field::misfit(
                serde::de::Unexpected::Map,
                $expected,
            )))
        }
    };
}
pub(crate) use refuse;

/// The JSON member name of a wire struct's field: its own name, or the `#[key = "…"]` given.
macro_rules! wire_key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $key:literal) => {
        $key
    };
}
pub(crate) use wire_key;

/// Declares a wire struct, whose fields are all [`Field`]s, with its [`Decode`]: the members
/// declared are decoded (`#[key = "type"]` reads a member under another name), the others
/// skipped; a member sent twice keeps its last value, as a JSON object read into a map would.
/// A value that is not a JSON object is invalid, with serde's message for a derived struct
/// (`invalid type: sequence, expected struct RawX`): serde would read a struct from an array
/// of its fields in declaration order, Stripe never sends that, and accepting it would
/// silently misread a malformed field.
macro_rules! wire_struct {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[key = $key:literal])?
                $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[doc = $doc])* $field: $ty, )*
        }

        const _: () = {
            /// A member name of the struct's JSON object.
            #[allow(non_camel_case_types)]
            enum Member {
                $( $field, )*
                Other,
            }

            impl<'de> serde::Deserialize<'de> for Member {
                fn deserialize<D: serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> Result<Self, D::Error> {
                    struct MemberVisitor;
                    impl serde::de::Visitor<'_> for MemberVisitor {
                        type Value = Member;

                        fn expecting(
                            &self,
                            formatter: &mut std::fmt::Formatter<'_>,
                        ) -> std::fmt::Result {
                            formatter.write_str("a member name")
                        }

                        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
                            Ok(match name {
                                $( $crate::wire::field::wire_key!($field $(, $key)?) => Member::$field, )*
                                _ => Member::Other,
                            })
                        }
                    }
                    deserializer.deserialize_identifier(MemberVisitor)
                }
            }

            impl<'de> $crate::wire::field::Decode<'de> for $name {
                fn decode<D: serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> Result<$crate::wire::field::Lenient<Self>, D::Error> {
                    struct StructVisitor;
                    impl<'de> serde::de::Visitor<'de> for StructVisitor {
                        type Value = $crate::wire::field::Lenient<$name>;

                        fn expecting(
                            &self,
                            formatter: &mut std::fmt::Formatter<'_>,
                        ) -> std::fmt::Result {
                            formatter.write_str(concat!("struct ", stringify!($name)))
                        }

                        fn visit_map<A: serde::de::MapAccess<'de>>(
                            self,
                            mut map: A,
                        ) -> Result<Self::Value, A::Error> {
                            $( let mut $field: $ty = None; )*
                            while let Some(member) = map.next_key::<Member>()? {
                                match member {
                                    $( Member::$field => $field = map.next_value()?, )*
                                    Member::Other => {
                                        map.next_value::<serde::de::IgnoredAny>()?;
                                    }
                                }
                            }
                            Ok($crate::wire::field::Lenient::Valid($name { $( $field, )* }))
                        }

                        $crate::wire::field::refuse!(
                            concat!("struct ", stringify!($name));
                            str bool number unit seq
                        );
                    }
                    deserializer.deserialize_any(StructVisitor)
                }
            }
        };
    };
}
pub(crate) use wire_struct;

/// Declares the [`Decode`] of a scalar type: `$visit` methods for the kinds it accepts, the
/// other kinds refused with `$expected` (serde's own word for the type).
macro_rules! decode_scalar {
    ($type:ty, $expected:literal, [$($refused:ident)*], { $($visit:item)* }) => {
        impl<'de> Decode<'de> for $type {
            fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error> {
                struct ScalarVisitor;
                impl<'de> Visitor<'de> for ScalarVisitor {
                    type Value = Lenient<$type>;

                    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        formatter.write_str($expected)
                    }

                    $($visit)*

                    refuse!($expected; $($refused)*);
                }
                deserializer.deserialize_any(ScalarVisitor)
            }
        }
    };
}

decode_scalar!(String, "a string", [bool int float unit seq map], {
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Lenient<String>, E> {
        Ok(Lenient::Valid(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Lenient<String>, E> {
        Ok(Lenient::Valid(value))
    }
});

decode_scalar!(bool, "a boolean", [str int float unit seq map], {
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Lenient<bool>, E> {
        Ok(Lenient::Valid(value))
    }
});

decode_scalar!(i64, "i64", [str bool float unit seq map], {
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Lenient<i64>, E> {
        Ok(Lenient::Valid(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Lenient<i64>, E> {
        Ok(match i64::try_from(value) {
            Ok(value) => Lenient::Valid(value),
            Err(_) => Lenient::Invalid(out_of_range(Unexpected::Unsigned(value), "i64")),
        })
    }
});

decode_scalar!(u32, "u32", [str bool float unit seq map], {
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Lenient<u32>, E> {
        Ok(match u32::try_from(value) {
            Ok(value) => Lenient::Valid(value),
            Err(_) => Lenient::Invalid(out_of_range(Unexpected::Signed(value), "u32")),
        })
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Lenient<u32>, E> {
        Ok(match u32::try_from(value) {
            Ok(value) => Lenient::Valid(value),
            Err(_) => Lenient::Invalid(out_of_range(Unexpected::Unsigned(value), "u32")),
        })
    }
});

/// A JSON value kept as its text (checked to be JSON, not decoded), borrowed from the body.
impl<'de> Decode<'de> for &'de RawValue {
    fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error> {
        <&'de RawValue>::deserialize(deserializer).map(Lenient::Valid)
    }
}

/// A JSON array whose entries each decode on their own.
impl<'de, T: Decode<'de>> Decode<'de> for Vec<Lenient<T>> {
    fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error> {
        struct SeqVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Decode<'de>> Visitor<'de> for SeqVisitor<T> {
            type Value = Lenient<Vec<Lenient<T>>>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a sequence")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(entry) = seq.next_element::<Lenient<T>>()? {
                    entries.push(entry);
                }
                Ok(Lenient::Valid(entries))
            }

            refuse!("a sequence"; str bool int float unit map);
        }
        deserializer.deserialize_any(SeqVisitor(std::marker::PhantomData))
    }
}

/// An expandable reference: Stripe sends either the id string or the expanded object, which
/// carries the same id in its `id` field. Only the id is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expandable(pub(crate) String);

impl<'de> Decode<'de> for Expandable {
    fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error> {
        deserializer.deserialize_any(ExpandableVisitor)
    }
}

struct ExpandableVisitor;

impl<'de> Visitor<'de> for ExpandableVisitor {
    type Value = Lenient<Expandable>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an id string or an expanded object")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
        Ok(Lenient::Valid(Expandable(id.to_owned())))
    }

    fn visit_string<E: de::Error>(self, id: String) -> Result<Self::Value, E> {
        Ok(Lenient::Valid(Expandable(id)))
    }

    /// The expanded object's `id` (the last one, should it be sent twice); the other members
    /// are skipped without being built.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<IdKey>()? {
            match key {
                IdKey::Id => id = Some(map.next_value::<Lenient<String>>()?),
                IdKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match id {
            Some(Lenient::Valid(id)) => Lenient::Valid(Expandable(id)),
            _ => Lenient::Invalid("expanded object has no string `id` field".to_owned()),
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(not_expandable("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(not_expandable("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(not_expandable("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(not_expandable("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(not_expandable("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(not_expandable("an array"))
    }
}

fn not_expandable(found: &str) -> Lenient<Expandable> {
    Lenient::Invalid(format!(
        "expected an id string or an expanded object, found {found}"
    ))
}

/// A member name of an expanded object: `id` or another.
enum IdKey {
    Id,
    Other,
}

impl<'de> Deserialize<'de> for IdKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdKeyVisitor;
        impl Visitor<'_> for IdKeyVisitor {
            type Value = IdKey;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<IdKey, E> {
                Ok(if key == "id" { IdKey::Id } else { IdKey::Other })
            }
        }
        deserializer.deserialize_identifier(IdKeyVisitor)
    }
}

wire_struct! {
    /// The `metadata` hash, reduced to the keys we read.
    #[derive(Debug, Clone)]
    pub(crate) struct Metadata {
        /// Our user id, set by our server when it created the object.
        user_id: Field<String>,
    }
}

/// A Stripe list object (`{"object": "list", "data": [...], "has_more": …}`), reduced to `data`.
#[derive(Debug, Clone)]
pub(crate) struct List<T> {
    /// The entries sent inline (Stripe sends at most the first page); each one decodes on its
    /// own, so a malformed entry only matters if it is read.
    pub(crate) data: Field<Vec<Lenient<T>>>,
}

impl<'de, T: Decode<'de>> Decode<'de> for List<T> {
    fn decode<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<Self>, D::Error> {
        struct ListVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Decode<'de>> Visitor<'de> for ListVisitor<T> {
            type Value = Lenient<List<T>>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("struct List")
            }

            /// `data` (the last one, should it be sent twice); the other members are skipped.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut data = None;
                while let Some(key) = map.next_key::<DataKey>()? {
                    match key {
                        DataKey::Data => data = map.next_value()?,
                        DataKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Lenient::Valid(List { data }))
            }

            refuse!("struct List"; str bool number unit seq);
        }
        deserializer.deserialize_any(ListVisitor(std::marker::PhantomData))
    }
}

/// A member name of a list object: `data` or another.
enum DataKey {
    Data,
    Other,
}

impl<'de> Deserialize<'de> for DataKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DataKeyVisitor;
        impl Visitor<'_> for DataKeyVisitor {
            type Value = DataKey;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<DataKey, E> {
                Ok(if key == "data" {
                    DataKey::Data
                } else {
                    DataKey::Other
                })
            }
        }
        deserializer.deserialize_identifier(DataKeyVisitor)
    }
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
