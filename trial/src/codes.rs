//! Closed sets of codes (roles aside): each is an enum stored and sent as a
//! stable snake_case code, parsed with a message that lists what is allowed.

use serde::{Deserialize, Serialize};

/// A code that is not one of its set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("unknown {what} `{value}`; use one of: {allowed}")]
pub struct UnknownCode {
    pub what: String,
    pub value: String,
    pub allowed: String,
}

/// Declares an enum of codes: `ALL`, `as_str`, `Display`, `FromStr` and
/// serde all use the same code.
macro_rules! code_enum {
    ($(#[$m:meta])* pub enum $name:ident : $what:literal {
        $($(#[$vm:meta])* $var:ident = $code:literal),+ $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $code)] $var),+
        }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The stable code stored in the database and used in the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $code),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::codes::UnknownCode;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    $crate::codes::UnknownCode {
                        what: $what.to_owned(),
                        value: s.to_owned(),
                        allowed: $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                    }
                })
            }
        }
    };
}
pub(crate) use code_enum;

/// Whether `s` is a SHA-256 written as 64 lowercase hex digits (the form
/// every hash of the system is stored and compared in).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `s` is a calendar date written `YYYY-MM-DD` (proleptic Gregorian).
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1900 && (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    code_enum! {
        /// A test set.
        pub enum Colour: "colour" { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_list_the_allowed_ones() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
        }
        let e = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown colour `green`; use one of: red, dark_blue"
        );
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark_blue\""
        );
    }

    #[test]
    fn dates_respect_month_lengths_and_leap_years() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2025-02-29"));
        assert!(is_date("2000-02-29"));
        assert!(!is_date("1900-02-29"));
        assert!(!is_date("2025-04-31"));
        assert!(!is_date("2025-4-01"));
        assert!(!is_date("2025-13-01"));
        assert!(!is_date("2025-01-+1"));
        assert!(!is_date("2025-01-00"));
    }
}
