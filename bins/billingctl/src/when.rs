//! Times on the command line: an age (`30d`, `12h`, `2w`, `45m`, `90s`) or, for `--since`,
//! an age or an RFC 3339 time.

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};

/// A length of time back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Age(pub(crate) TimeDelta);

impl FromStr for Age {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let unit_at = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{text:?} needs a unit: s, m, h, d or w (e.g. 30d)"))?;
        let (number, unit) = text.split_at(unit_at);
        let n: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a number and a unit (e.g. 30d)"))?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(format!("unknown unit {unit:?}: use s, m, h, d or w")),
        };
        n.checked_mul(seconds)
            .filter(|s| *s <= 100 * 365 * 86_400)
            .map(|s| Age(TimeDelta::seconds(s)))
            .ok_or_else(|| format!("{text:?} is too long ago"))
    }
}

impl std::fmt::Display for Age {
    /// The age in the largest unit that divides it (`3d`, `90s`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.0.num_seconds();
        let unit = [(86_400, "d"), (3_600, "h"), (60, "m")]
            .into_iter()
            .find(|(size, _)| seconds != 0 && seconds % size == 0);
        match unit {
            Some((size, unit)) => write!(f, "{}{unit}", seconds / size),
            None => write!(f, "{seconds}s"),
        }
    }
}

/// A time: given, or an age back from when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    /// This long before now.
    Ago(Age),
    /// This time.
    At(DateTime<Utc>),
}

impl Since {
    /// The time meant, `now` being when the command runs.
    pub(crate) fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::Ago(age) => now - age.0,
            Since::At(at) => at,
        }
    }

    /// The span from the time meant to `now`; `None` for a time after `now`.
    pub(crate) fn span(self, now: DateTime<Utc>) -> Option<TimeDelta> {
        let span = now - self.at(now);
        (span >= TimeDelta::zero()).then_some(span)
    }
}

impl FromStr for Since {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
            return Ok(Since::At(at.with_timezone(&Utc)));
        }
        text.parse()
            .map(Since::Ago)
            .map_err(|e| format!("{e}; or an RFC 3339 time such as 2026-12-01T00:00:00Z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times_are_read_and_nonsense_is_refused() {
        assert_eq!("30d".parse(), Ok(Age(TimeDelta::days(30))));
        assert_eq!("12h".parse(), Ok(Age(TimeDelta::hours(12))));
        assert_eq!("2w".parse(), Ok(Age(TimeDelta::days(14))));
        assert_eq!("90s".parse(), Ok(Age(TimeDelta::seconds(90))));
        for bad in ["30", "d", "3y", "-3d", "99999999999999d"] {
            assert!(bad.parse::<Age>().is_err(), "{bad}");
        }
        let at = "2026-12-01T10:00:00Z".parse::<Since>();
        assert_eq!(
            at.map(|s| s.at(Utc::now()).to_rfc3339()),
            Ok("2026-12-01T10:00:00+00:00".to_owned())
        );
        assert!("yesterday".parse::<Since>().is_err());
        let now = Utc::now();
        let hour_ago = Since::At(now - TimeDelta::hours(1));
        assert_eq!(hour_ago.span(now), Some(TimeDelta::hours(1)));
        assert_eq!(Since::At(now + TimeDelta::hours(1)).span(now), None);
        assert_eq!(Age(TimeDelta::days(3)).to_string(), "3d");
        assert_eq!(Age(TimeDelta::seconds(90)).to_string(), "90s");
    }
}
