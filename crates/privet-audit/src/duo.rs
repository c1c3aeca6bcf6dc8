//! Purposes of use as GA4GH Data Use Ontology (DUO) terms.
//!
//! A purpose is a DUO *permission* (what the data may be used for), a disease for
//! disease-specific research, and DUO *modifiers*. In an agreement, modifiers are conditions the
//! data owners impose (non-commercial use only, ethics approval required...); in a job request,
//! they are the conditions the requester declares it meets. privet knows the small set of terms
//! in [`TERMS`] and refuses any other id, so an agreement never carries a term that no one
//! checks.
//!
//! Matching follows DUO's definitions: *no restriction* covers every purpose; *general research
//! use* covers health/medical/biomedical research, disease-specific research and population
//! origins or ancestry research; *health or medical or biomedical research* covers
//! disease-specific research (for any disease) but not ancestry research; *disease-specific
//! research* covers only the same disease term (exact match: privet does not walk the disease
//! ontology, so a sub-disease must be listed itself); every modifier of the agreement's purpose
//! must be declared by the request (*not for profit, non commercial use only* is also met by
//! declaring both of its halves), and *population origins or ancestry research prohibited*
//! also refuses an ancestry-research purpose.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::AuditError;
use crate::canon::Canon;

/// Whether a term says what data may be used for, or adds a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuoKind {
    /// A data use permission (primary term).
    Permission,
    /// A data use modifier (a condition).
    Modifier,
}

/// A DUO term privet knows.
#[derive(Debug)]
pub struct DuoTerm {
    /// The numeric part of the id (7 for DUO:0000007).
    pub id: u32,
    /// DUO's shorthand (DS).
    pub shorthand: &'static str,
    /// DUO's label.
    pub label: &'static str,
    /// Permission or modifier.
    pub kind: DuoKind,
}

const fn term(id: u32, shorthand: &'static str, label: &'static str, kind: DuoKind) -> DuoTerm {
    DuoTerm {
        id,
        shorthand,
        label,
        kind,
    }
}

use DuoKind::{Modifier, Permission};

/// The DUO terms privet supports, with DUO's labels (DUO release 2021-02-23 and later).
pub const TERMS: &[DuoTerm] = &[
    term(4, "NRES", "no restriction", Permission),
    term(42, "GRU", "general research use", Permission),
    term(
        6,
        "HMB",
        "health or medical or biomedical research",
        Permission,
    ),
    term(7, "DS", "disease specific research", Permission),
    term(
        11,
        "POA",
        "population origins or ancestry research only",
        Permission,
    ),
    term(15, "NMDS", "no general methods research", Modifier),
    term(16, "GSO", "genetic studies only", Modifier),
    term(
        18,
        "NPUNCU",
        "not for profit, non commercial use only",
        Modifier,
    ),
    term(19, "PUB", "publication required", Modifier),
    term(20, "COL", "collaboration required", Modifier),
    term(21, "IRB", "ethics approval required", Modifier),
    term(29, "RTN", "return to database or resource", Modifier),
    term(
        44,
        "NPOA",
        "population origins or ancestry research prohibited",
        Modifier,
    ),
    term(45, "NPU", "not for profit organisation use only", Modifier),
    term(46, "NCU", "non-commercial use only", Modifier),
];

const NRES: u32 = 4;
const GRU: u32 = 42;
const HMB: u32 = 6;
const DS: u32 = 7;
const POA: u32 = 11;
const NPUNCU: u32 = 18;
const NPOA: u32 = 44;
const NPU: u32 = 45;
const NCU: u32 = 46;

/// A supported DUO term, by its numeric id. Written `DUO:0000007`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DuoId(u32);

impl DuoId {
    /// The term with this numeric id, if privet supports it.
    pub fn new(id: u32) -> Result<DuoId, AuditError> {
        if TERMS.iter().any(|t| t.id == id) {
            Ok(DuoId(id))
        } else {
            Err(AuditError::Invalid(format!(
                "DUO:{id:07} is not a DUO term privet supports (supported: {})",
                TERMS
                    .iter()
                    .map(|t| format!("DUO:{:07} {}", t.id, t.shorthand))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// The numeric id.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The term's shorthand, label and kind.
    pub fn term(self) -> &'static DuoTerm {
        // Every DuoId was checked against TERMS when it was made.
        TERMS.iter().find(|t| t.id == self.0).unwrap_or(&TERMS[0])
    }

    /// DUO's label.
    pub fn label(self) -> &'static str {
        self.term().label
    }
}

impl fmt::Display for DuoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DUO:{:07}", self.0)
    }
}

impl fmt::Debug for DuoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DUO:{:07}", self.0)
    }
}

impl FromStr for DuoId {
    type Err = AuditError;

    /// Reads `DUO:0000007` (seven digits, as DUO writes them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix("DUO:")
            .filter(|d| d.len() == 7 && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                AuditError::Invalid(format!(
                    "{:?} is not a DUO id such as \"DUO:0000007\"",
                    s.chars().take(40).collect::<String>()
                ))
            })?;
        let id: u32 = digits
            .parse()
            .map_err(|_| AuditError::Invalid(format!("{s:?} is not a DUO id")))?;
        DuoId::new(id)
    }
}

/// A disease term for disease-specific research: an ontology CURIE such as `MONDO:0007254`
/// (breast cancer) or `DOID:1612`. Compared exactly.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Disease(String);

impl Disease {
    /// Longest disease term.
    pub const MAX_LEN: usize = 64;

    /// The term as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Disease {
    type Err = AuditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() <= Disease::MAX_LEN
            && s.split_once(':').is_some_and(|(prefix, local)| {
                prefix
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphabetic)
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !local.is_empty()
                    && local
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            });
        if ok {
            Ok(Disease(s.to_string()))
        } else {
            Err(AuditError::Invalid(format!(
                "{:?} is not a disease term such as \"MONDO:0007254\" (PREFIX:ID, at most {} characters)",
                s.chars().take(40).collect::<String>(),
                Disease::MAX_LEN
            )))
        }
    }
}

impl fmt::Display for Disease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A purpose of use: a DUO permission, a disease (for disease-specific research only) and
/// modifiers.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Purpose {
    permission: DuoId,
    disease: Option<Disease>,
    modifiers: BTreeSet<DuoId>,
}

/// Most modifiers on one purpose.
pub const MAX_MODIFIERS: usize = 16;

impl Purpose {
    /// A purpose; refuses a modifier as the permission, a permission among the modifiers, a
    /// disease-specific purpose without a disease and a disease on any other purpose.
    pub fn new(
        permission: DuoId,
        disease: Option<Disease>,
        modifiers: impl IntoIterator<Item = DuoId>,
    ) -> Result<Purpose, AuditError> {
        if permission.term().kind != Permission {
            return Err(AuditError::Invalid(format!(
                "{permission} ({}) is a modifier, not a permission: use one of {}",
                permission.label(),
                TERMS
                    .iter()
                    .filter(|t| t.kind == Permission)
                    .map(|t| format!("DUO:{:07} {}", t.id, t.shorthand))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match (permission.0 == DS, &disease) {
            (true, None) => {
                return Err(AuditError::Invalid(format!(
                    "{permission} ({}) needs a disease term, e.g. disease = \"MONDO:0007254\"",
                    permission.label()
                )));
            }
            (false, Some(d)) => {
                return Err(AuditError::Invalid(format!(
                    "a disease ({d}) is only meaningful with DUO:0000007 (disease specific research), not {permission}"
                )));
            }
            _ => {}
        }
        let mut set = BTreeSet::new();
        for m in modifiers {
            if m.term().kind != Modifier {
                return Err(AuditError::Invalid(format!(
                    "{m} ({}) is a permission, not a modifier",
                    m.label()
                )));
            }
            if !set.insert(m) {
                return Err(AuditError::Invalid(format!("modifier {m} is listed twice")));
            }
        }
        if set.len() > MAX_MODIFIERS {
            return Err(AuditError::Invalid(format!(
                "at most {MAX_MODIFIERS} modifiers per purpose"
            )));
        }
        Ok(Purpose {
            permission,
            disease,
            modifiers: set,
        })
    }

    /// The permission.
    pub fn permission(&self) -> DuoId {
        self.permission
    }

    /// The disease (disease-specific research only).
    pub fn disease(&self) -> Option<&Disease> {
        self.disease.as_ref()
    }

    /// The modifiers, sorted.
    pub fn modifiers(&self) -> impl ExactSizeIterator<Item = DuoId> + '_ {
        self.modifiers.iter().copied()
    }

    /// Whether this purpose, as permitted by an agreement, covers `requested` (see the
    /// [module documentation](self)).
    pub fn covers(&self, requested: &Purpose) -> bool {
        let p = self.permission.0;
        let r = requested.permission.0;
        let permission_ok = match p {
            NRES => true,
            GRU => matches!(r, GRU | HMB | DS | POA),
            HMB => matches!(r, HMB | DS),
            DS => r == DS && self.disease == requested.disease,
            _ => p == r,
        };
        let declared = |m: u32| requested.modifiers.contains(&DuoId(m));
        let modifiers_ok = self.modifiers.iter().all(|m| match m.0 {
            NPUNCU => declared(NPUNCU) || (declared(NPU) && declared(NCU)),
            other => declared(other),
        });
        let ancestry_ok = !(self.modifiers.contains(&DuoId(NPOA)) && r == POA);
        permission_ok && modifiers_ok && ancestry_ok
    }

    pub(crate) fn encode(&self, c: &mut Canon) {
        c.u32(self.permission.0);
        c.opt(self.disease.as_ref(), |c, d| {
            c.str(d.as_str());
        });
        c.list(self.modifiers.iter(), |c, m| {
            c.u32(m.0);
        });
    }

    /// One line: ids with their labels.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.permission, self.permission.label());
        if let Some(d) = &self.disease {
            s.push_str(&format!(" ({d})"));
        }
        for m in &self.modifiers {
            s.push_str(&format!("; {m} {}", m.label()));
        }
        s
    }
}

impl fmt::Display for Purpose {
    /// Compact: `DUO:0000007(MONDO:0007254)+DUO:0000046`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.permission)?;
        if let Some(d) = &self.disease {
            write!(f, "({d})")?;
        }
        for m in &self.modifiers {
            write!(f, "+{m}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn p(text: &str) -> Purpose {
        // "7:MONDO:1+46"
        let (head, mods) = text.split_once('+').map_or((text, ""), |(a, b)| (a, b));
        let (perm, disease) = head
            .split_once(':')
            .map_or((head, None), |(a, b)| (a, Some(b)));
        Purpose::new(
            DuoId::new(perm.parse().unwrap()).unwrap(),
            disease.map(|d| d.parse().unwrap()),
            mods.split('+')
                .filter(|m| !m.is_empty())
                .map(|m| DuoId::new(m.parse().unwrap()).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn duo_permissions_cover_as_duo_defines_them() {
        // (permitted, requested, covered)
        let cases = [
            ("4", "42", true),
            ("4", "11", true),
            ("42", "6", true),
            ("42", "7:MONDO:0007254", true),
            ("42", "11", true),
            ("6", "7:MONDO:0007254", true),
            ("6", "11", false),
            ("6", "42", false),
            ("7:MONDO:0007254", "7:MONDO:0007254", true),
            ("7:MONDO:0007254", "7:MONDO:0005148", false),
            ("7:MONDO:0007254", "6", false),
            ("11", "11", true),
            ("11", "6", false),
            ("42", "4", false),
            // Modifiers the agreement imposes must be declared by the request.
            ("42+46", "6", false),
            ("42+46", "6+46", true),
            ("42+46", "6+46+21", true),
            ("42+18", "6+45+46", true),
            ("42+18", "6+46", false),
            ("42+44", "11+44", false),
            ("42+44", "6+44", true),
        ];
        for (permitted, requested, covered) in cases {
            assert_eq!(
                p(permitted).covers(&p(requested)),
                covered,
                "{permitted} covers {requested}"
            );
        }
    }

    #[test]
    fn unknown_ids_and_misplaced_terms_are_refused() {
        assert!("DUO:0000999".parse::<DuoId>().is_err());
        assert!("DUO:7".parse::<DuoId>().is_err());
        assert!("duo:0000007".parse::<DuoId>().is_err());
        let ds: DuoId = "DUO:0000007".parse().unwrap();
        let ncu: DuoId = "DUO:0000046".parse().unwrap();
        assert!(Purpose::new(ds, None, []).is_err(), "DS needs a disease");
        assert!(
            Purpose::new(ncu, None, []).is_err(),
            "a modifier is no permission"
        );
        assert!(Purpose::new(DuoId::new(42).unwrap(), None, [ds]).is_err());
        assert!(
            Purpose::new(
                DuoId::new(42).unwrap(),
                Some("MONDO:1".parse().unwrap()),
                []
            )
            .is_err()
        );
        for bad in [
            "",
            "MONDO",
            ":1",
            "1:2",
            "MONDO:",
            "MONDO:a b",
            &"A:1".repeat(30),
        ] {
            assert!(bad.parse::<Disease>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_come_from_the_table() {
        let ds: DuoId = "DUO:0000007".parse().unwrap();
        assert_eq!(ds.label(), "disease specific research");
        assert_eq!(ds.to_string(), "DUO:0000007");
        let purpose = p("7:MONDO:0007254+46");
        assert_eq!(
            purpose.to_string(),
            "DUO:0000007(MONDO:0007254)+DUO:0000046"
        );
        assert_eq!(
            purpose.describe(),
            "DUO:0000007 disease specific research (MONDO:0007254); DUO:0000046 non-commercial use only"
        );
    }
}
