//! The ids and digests that cross crate boundaries, each parsed once where
//! it enters and carried typed from there: a case id is never taken for a
//! user id, a digest is always 64 lowercase hex digits, a probability always
//! lies in [0, 1]. In JSON and in the database they are the plain number or
//! text they wrap.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why an id or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not an id (a whole number from 1)")]
    Id(String),
    #[error("a SHA-256 is 64 lowercase hex digits, not `{0}`")]
    Sha256(String),
    #[error("a probability lies in [0, 1], not {0}")]
    Probability(String),
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(i64);

        impl $name {
            /// The id of a row the database returned (ids from outside are
            /// parsed with [`FromStr`] or [`TryFrom`]).
            pub const fn new(id: i64) -> Self {
                $name(id)
            }

            /// The number, for SQL and for humans.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = IdError;
            fn try_from(id: i64) -> Result<Self, IdError> {
                if id >= 1 {
                    Ok($name(id))
                } else {
                    Err(IdError::Id(id.to_string()))
                }
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| IdError::Id(s.to_owned()))
                    .and_then($name::try_from)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type! {
    /// An enrolled case (`cases.id`).
    CaseId
}

id_type! {
    /// An account (`users.id`).
    UserId
}

/// A SHA-256 digest as 64 lowercase hex digits: of a stored radiograph, of
/// a model's weights, of a locked record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digest of `bytes`.
    #[cfg(feature = "ssr")]
    pub fn of(bytes: &[u8]) -> Sha256 {
        Sha256(crate::store::sha256_hex(bytes))
    }
}

impl TryFrom<String> for Sha256 {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256(s))
        } else {
            Err(IdError::Sha256(s.chars().take(80).collect()))
        }
    }
}

impl FromStr for Sha256 {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Sha256::try_from(s.to_owned())
    }
}

impl From<Sha256> for String {
    fn from(s: Sha256) -> String {
        s.0
    }
}

/// Read access to the digest's text (its length, a prefix to show).
impl std::ops::Deref for Sha256 {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Sha256 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Sha256 {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for Sha256 {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A probability: a finite number in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Probability(f64);

impl Probability {
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Probability {
    type Error = IdError;
    fn try_from(p: f64) -> Result<Self, IdError> {
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            Ok(Probability(p))
        } else {
            Err(IdError::Probability(p.to_string()))
        }
    }
}

impl FromStr for Probability {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        s.trim()
            .parse::<f64>()
            .map_err(|_| IdError::Probability(s.to_owned()))
            .and_then(Probability::try_from)
    }
}

impl From<Probability> for f64 {
    fn from(p: Probability) -> f64 {
        p.0
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_whole_numbers_from_one_and_never_each_other() {
        assert_eq!("12".parse::<CaseId>(), Ok(CaseId::new(12)));
        assert_eq!(" 7 ".parse::<UserId>().map(UserId::get), Ok(7));
        for bad in ["0", "-3", "x", "", "1.5", "99999999999999999999"] {
            assert!(bad.parse::<CaseId>().is_err(), "{bad}");
        }
        assert_eq!(CaseId::try_from(0), Err(IdError::Id("0".into())));
        assert_eq!(
            serde_json::to_string(&CaseId::new(5)).unwrap(),
            "5",
            "JSON carries the plain number"
        );
        assert_eq!(serde_json::from_str::<UserId>("9").unwrap(), UserId::new(9));
        assert!(serde_json::from_str::<CaseId>("0").is_err());
        assert_eq!(CaseId::new(5).to_string(), "5");
    }

    #[test]
    fn a_sha256_is_64_lowercase_hex_digits() {
        let ok = "ab".repeat(32);
        assert_eq!(ok.parse::<Sha256>().unwrap().as_str(), ok);
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}zz", "a".repeat(62)),
            String::new(),
        ] {
            assert!(bad.parse::<Sha256>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Sha256>("\"nothex\"").is_err());
        assert_eq!(
            serde_json::to_string(&ok.parse::<Sha256>().unwrap()).unwrap(),
            format!("\"{ok}\"")
        );
    }

    #[test]
    fn a_probability_lies_in_the_unit_interval() {
        for ok in [0.0, 0.25, 1.0] {
            assert_eq!(Probability::try_from(ok).map(Probability::get), Ok(ok));
        }
        for bad in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
            assert!(Probability::try_from(bad).is_err(), "{bad}");
        }
        assert_eq!("0.5".parse::<Probability>().map(f64::from), Ok(0.5));
        assert!("high".parse::<Probability>().is_err());
        assert!(serde_json::from_str::<Probability>("1.5").is_err());
        assert_eq!(
            serde_json::to_string(&Probability::try_from(0.75).unwrap()).unwrap(),
            "0.75"
        );
    }
}
