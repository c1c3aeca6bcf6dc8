//! Points in time, to the second, written as RFC 3339 in UTC.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time: seconds since the Unix epoch (UTC). Nothing in this crate reads a clock;
/// callers pass the time in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// From seconds since the Unix epoch; `None` outside the years 0001-9999.
    pub fn from_unix(seconds: i64) -> Option<Timestamp> {
        let t = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
        (1..=9999).contains(&t.year()).then_some(Timestamp(seconds))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// Reads RFC 3339 in UTC (`2026-01-31T12:00:00Z`), whole seconds.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        let shown: String = s.chars().take(40).collect();
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            format!("{shown:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z")
        })?;
        if !t.offset().is_utc() {
            return Err(format!("{shown:?}: give the time in UTC, ending in Z"));
        }
        if t.nanosecond() != 0 {
            return Err(format!("{shown:?}: give whole seconds"));
        }
        Timestamp::from_unix(t.unix_timestamp())
            .ok_or_else(|| format!("{shown:?}: outside the years 0001-9999"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let t = Timestamp::parse("2026-01-31T12:00:00Z").unwrap();
        assert_eq!(t.unix(), 1_769_860_800);
        assert_eq!(t.to_string(), "2026-01-31T12:00:00Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn local_offsets_fractions_and_junk_are_refused() {
        for bad in [
            "2026-01-31T12:00:00+01:00",
            "2026-01-31T12:00:00.5Z",
            "2026-01-31",
            "yesterday",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }
}
