//! What an identifier may be: the one rule for Stripe ids, user ids and idempotency keys,
//! wherever they come from (a webhook body, a `/v1` request).

use std::fmt;

/// The longest identifier, in bytes. Stripe's ids are far shorter, its idempotency keys are at
/// most this long, and the database indexes every id (an index entry has a size limit).
pub const MAX_ID_BYTES: usize = 255;

/// Why a string cannot be an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdProblem {
    /// It is empty.
    Empty,
    /// It is longer than [`MAX_ID_BYTES`]; the length in bytes.
    TooLong(usize),
    /// It contains a control character: NUL (which no text column stores), a newline (which
    /// would forge log lines), …
    ControlCharacter,
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::TooLong(len) => write!(f, "is {len} bytes long; ids are at most {MAX_ID_BYTES}"),
            Self::ControlCharacter => f.write_str("contains a control character (NUL, newline, …)"),
        }
    }
}

/// Checks that `value` can be an identifier: 1 to [`MAX_ID_BYTES`] bytes, no control
/// characters.
pub fn check_id(value: &str) -> Result<(), IdProblem> {
    if value.is_empty() {
        Err(IdProblem::Empty)
    } else if value.len() > MAX_ID_BYTES {
        Err(IdProblem::TooLong(value.len()))
    } else if value.chars().any(char::is_control) {
        Err(IdProblem::ControlCharacter)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_non_empty_and_free_of_control_characters() {
        assert_eq!(check_id("cus_Q8mT2vLx9RkA4e"), Ok(()));
        assert_eq!(check_id(&"k".repeat(MAX_ID_BYTES)), Ok(()));
        assert_eq!(check_id(""), Err(IdProblem::Empty));
        assert_eq!(
            check_id(&"k".repeat(MAX_ID_BYTES + 1)),
            Err(IdProblem::TooLong(256))
        );
        assert_eq!(check_id("evt_1\nFORGED"), Err(IdProblem::ControlCharacter));
        assert_eq!(check_id("user_\u{0}1"), Err(IdProblem::ControlCharacter));
    }
}
