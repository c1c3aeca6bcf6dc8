//! Names and roles.

use std::fmt;
use std::str::FromStr;

use crate::IdentityError;

/// A party's name: its certificate's common name, its file name in a certificate directory,
/// and a node's identity in job files. 1 to 64 ASCII letters, digits, `-`, `_` or `.`, not
/// starting with `.`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Longest name.
    pub const MAX_LEN: usize = 64;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` is a valid name.
    pub fn is_valid(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }
}

impl FromStr for Name {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if Name::is_valid(s) {
            Ok(Name(s.to_string()))
        } else {
            Err(IdentityError::BadName {
                name: s.chars().take(80).collect(),
            })
        }
    }
}

impl TryFrom<String> for Name {
    type Error = IdentityError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What a certificate allows its holder to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The coordinator: a TLS server for nodes and operators.
    Coordinator,
    /// A data-owner node: joins jobs, trains, takes part in secure aggregation.
    Node,
    /// An operator: submits, inspects and cancels jobs through the admin service.
    Operator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Coordinator, Role::Node, Role::Operator];

    /// The role's name in certificates and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Node => "node",
            Role::Operator => "operator",
        }
    }

    /// The SPIFFE-form URI that carries `name`'s role in its certificate.
    pub(crate) fn uri(self, name: &Name) -> String {
        format!("{}{}/{name}", crate::name::URI_PREFIX, self.as_str())
    }

    /// Parses a role URI; `None` for a URI that is not privet's.
    pub(crate) fn from_uri(uri: &str) -> Option<Result<(Role, String), IdentityError>> {
        let rest = uri.strip_prefix(URI_PREFIX)?;
        let Some((role, name)) = rest.split_once('/') else {
            return Some(Err(IdentityError::Certificate(format!(
                "malformed role URI {:?}",
                uri.chars().take(100).collect::<String>()
            ))));
        };
        Some(
            role.parse::<Role>()
                .map(|r| (r, name.to_string()))
                .map_err(|e| IdentityError::Certificate(e.to_string())),
        )
    }
}

/// Where roles live in a certificate's URI subject alternative names.
pub(crate) const URI_PREFIX: &str = "spiffe://privet/";

impl FromStr for Role {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                IdentityError::Invalid(format!(
                    "unknown role {:?} (coordinator, node or operator)",
                    s.chars().take(40).collect::<String>()
                ))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_checked_once() {
        for good in ["a", "hospital-a", "node_1.eu", &"x".repeat(64)] {
            assert!(good.parse::<Name>().is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "é", &"x".repeat(65), "../ca"] {
            assert!(bad.parse::<Name>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_round_trip_through_their_uri() {
        let name: Name = "alice".parse().unwrap();
        for role in Role::ALL {
            let (back, n) = Role::from_uri(&role.uri(&name)).unwrap().unwrap();
            assert_eq!((back, n.as_str()), (role, "alice"));
        }
        assert!(Role::from_uri("https://example.org/").is_none());
        assert!(
            Role::from_uri("spiffe://privet/admin/alice")
                .unwrap()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn a_valid_name_survives_serde(s in "[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,63}") {
            let name: Name = s.parse().unwrap();
            let json = serde_json::to_string(&name).unwrap();
            let back: Name = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, name);
        }
    }
}
