#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod header;
mod secret;
mod sign;
mod utf8;
mod verify;

pub use error::{HeaderDefect, InvalidSecrets, SignatureError};
pub use secret::Secret;
pub use sign::{SignatureHeader, sign, sign_header};
pub use verify::{DEFAULT_TOLERANCE, Verified, Verifier};
