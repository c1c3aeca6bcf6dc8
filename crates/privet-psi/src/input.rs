//! A party's input: normalised, distinct identifiers and (for the sum) one integer per
//! identifier, from memory or from a CSV file.
//!
//! # Normalisation (both parties must use the same rule; the hellos check that they do)
//!
//! 1. Leading and trailing Unicode whitespace is removed (`str::trim`).
//! 2. [`CaseRule::Preserve`] (the default) keeps the case: `Alice@X.org` and `alice@x.org` are
//!    different identifiers. [`CaseRule::Lower`] maps every character to lower case with
//!    Unicode's default mapping (`str::to_lowercase`; no locale-specific rules, no Unicode
//!    normalisation form: `é` written as one code point and as `e` + combining accent differ).
//! 3. An identifier that is empty after trimming is an error, as is one longer than
//!    [`MAX_IDENTIFIER_BYTES`] bytes.
//!
//! # Duplicates
//!
//! After normalisation each identifier must appear once ([`Duplicates::Refuse`], the default:
//! an error names the lines of both rows), or rows with the same identifier are merged
//! ([`Duplicates::Merge`]: their values are added up, so a per-identifier bound applies to the
//! identifier's total, which is what the privacy analysis needs).
//!
//! # Values
//!
//! Values are integers (scale decimals beforehand, e.g. cents), at most [`MAX_ABS_VALUE`] in
//! absolute value. Error messages never contain an identifier or a value: they name the file,
//! the line and the column.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{PsiError, Result};

/// Longest identifier accepted, in bytes after normalisation.
pub const MAX_IDENTIFIER_BYTES: usize = 4096;

/// Largest absolute value accepted: `2^40`.
pub const MAX_ABS_VALUE: i64 = 1 << 40;

/// Default byte limit of a CSV file: 4 GiB.
pub const DEFAULT_MAX_CSV_BYTES: u64 = 4 << 30;

/// Default row limit of a CSV file: 50 million.
pub const DEFAULT_MAX_ROWS: usize = 50_000_000;

/// How letter case is treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaseRule {
    /// Case is significant.
    #[default]
    Preserve,
    /// Everything is lower-cased (Unicode default mapping).
    Lower,
}

impl CaseRule {
    /// The rule's wire code.
    pub fn code(self) -> u32 {
        match self {
            CaseRule::Preserve => 1,
            CaseRule::Lower => 2,
        }
    }

    /// The rule of a wire code.
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(CaseRule::Preserve),
            2 => Some(CaseRule::Lower),
            _ => None,
        }
    }
}

/// What to do with repeated identifiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Duplicates {
    /// A repeated identifier is an error.
    #[default]
    Refuse,
    /// Rows with the same identifier become one; their values are added.
    Merge,
}

/// Normalisation and duplicate handling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Case rule.
    pub case: CaseRule,
    /// Duplicate rule.
    pub duplicates: Duplicates,
}

/// Normalises one identifier; `None` when it is empty after trimming.
pub fn normalize(raw: &str, case: CaseRule) -> Option<String> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    Some(match case {
        CaseRule::Preserve => t.to_owned(),
        CaseRule::Lower => t.to_lowercase(),
    })
}

/// Distinct normalised identifiers, with values when the set carries them.
#[derive(Clone, PartialEq, Eq)]
pub struct InputSet {
    ids: Vec<Box<[u8]>>,
    values: Option<Vec<i64>>,
    case: CaseRule,
}

impl std::fmt::Debug for InputSet {
    /// Sizes only: identifiers and values are not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSet")
            .field("len", &self.ids.len())
            .field("has_values", &self.values.is_some())
            .field("case", &self.case)
            .finish()
    }
}

/// Where a row came from, for error messages.
struct Origin<'a> {
    path: Option<&'a Path>,
    id_column: &'a str,
    value_column: Option<&'a str>,
}

impl Origin<'_> {
    fn err(&self, line: u64, column: Option<&str>, reason: impl Into<String>) -> PsiError {
        let reason = reason.into();
        match self.path {
            Some(p) => PsiError::Csv {
                path: p.to_path_buf(),
                line,
                column: column.map(str::to_owned),
                reason,
            },
            None => PsiError::Input(format!("row {line}: {reason}")),
        }
    }
}

/// Accumulates rows into a set under the options.
struct Builder {
    opts: NormalizeOptions,
    with_values: bool,
    index: HashMap<Box<[u8]>, (usize, u64)>,
    ids: Vec<Box<[u8]>>,
    values: Vec<i64>,
}

impl Builder {
    fn new(opts: NormalizeOptions, with_values: bool) -> Self {
        Builder {
            opts,
            with_values,
            index: HashMap::new(),
            ids: Vec::new(),
            values: Vec::new(),
        }
    }

    fn push(
        &mut self,
        origin: &Origin<'_>,
        line: u64,
        raw: &str,
        value: Option<i64>,
    ) -> Result<()> {
        let id_col = Some(origin.id_column);
        let id = normalize(raw, self.opts.case)
            .ok_or_else(|| origin.err(line, id_col, "the identifier is empty"))?;
        if id.len() > MAX_IDENTIFIER_BYTES {
            return Err(origin.err(
                line,
                id_col,
                format!("the identifier is longer than {MAX_IDENTIFIER_BYTES} bytes"),
            ));
        }
        if let Some(v) = value
            && v.unsigned_abs() > MAX_ABS_VALUE as u64
        {
            return Err(origin.err(
                line,
                origin.value_column,
                "the value is larger than 2^40 in absolute value",
            ));
        }
        let key: Box<[u8]> = id.into_bytes().into_boxed_slice();
        match self.index.entry(key) {
            Entry::Occupied(e) => {
                let (i, first_line) = *e.get();
                match self.opts.duplicates {
                    Duplicates::Refuse => {
                        return Err(origin.err(
                            line,
                            id_col,
                            format!(
                                "the identifier repeats the one on line {first_line} (after \
                                 normalisation); remove duplicates or merge them"
                            ),
                        ));
                    }
                    Duplicates::Merge => {
                        if let Some(v) = value {
                            let total = self.values[i]
                                .checked_add(v)
                                .filter(|t| t.unsigned_abs() <= MAX_ABS_VALUE as u64);
                            self.values[i] = total.ok_or_else(|| {
                                origin.err(
                                    line,
                                    origin.value_column,
                                    "the merged total of this identifier's values is larger \
                                     than 2^40 in absolute value",
                                )
                            })?;
                        }
                    }
                }
            }
            Entry::Vacant(e) => {
                self.ids.push(e.key().clone());
                e.insert((self.ids.len() - 1, line));
                if let Some(v) = value {
                    self.values.push(v);
                }
            }
        }
        Ok(())
    }

    fn finish(self, origin: &Origin<'_>) -> Result<InputSet> {
        if self.ids.is_empty() {
            return Err(origin.err(0, None, "the set has no identifiers"));
        }
        Ok(InputSet {
            ids: self.ids,
            values: self.with_values.then_some(self.values),
            case: self.opts.case,
        })
    }
}

impl InputSet {
    /// A set of identifiers without values.
    pub fn from_identifiers<I, S>(ids: I, opts: NormalizeOptions) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origin = Origin {
            path: None,
            id_column: "id",
            value_column: None,
        };
        let mut b = Builder::new(opts, false);
        for (i, id) in ids.into_iter().enumerate() {
            b.push(&origin, i as u64 + 1, id.as_ref(), None)?;
        }
        b.finish(&origin)
    }

    /// A set of identifiers with one value each.
    pub fn from_pairs<I, S>(pairs: I, opts: NormalizeOptions) -> Result<Self>
    where
        I: IntoIterator<Item = (S, i64)>,
        S: AsRef<str>,
    {
        let origin = Origin {
            path: None,
            id_column: "id",
            value_column: Some("value"),
        };
        let mut b = Builder::new(opts, true);
        for (i, (id, v)) in pairs.into_iter().enumerate() {
            b.push(&origin, i as u64 + 1, id.as_ref(), Some(v))?;
        }
        b.finish(&origin)
    }

    /// Reads a CSV file with a header row; see [`CsvSpec`].
    pub fn read_csv(path: &Path, spec: &CsvSpec, opts: NormalizeOptions) -> Result<Self> {
        read_csv(path, spec, opts)
    }

    /// Number of distinct identifiers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: a set has at least one identifier.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The normalised identifiers (UTF-8), in first-seen order.
    pub fn identifiers(&self) -> &[Box<[u8]>] {
        &self.ids
    }

    /// The identifier at `i` as text.
    pub fn identifier(&self, i: usize) -> Option<&str> {
        self.ids.get(i).and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The values, parallel to [`Self::identifiers`], if the set has them.
    pub fn values(&self) -> Option<&[i64]> {
        self.values.as_deref()
    }

    /// The case rule the identifiers were normalised with.
    pub fn case_rule(&self) -> CaseRule {
        self.case
    }
}

/// Which columns of a CSV file to read, and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvSpec {
    /// The identifier column's header name.
    pub id_column: String,
    /// The value column's header name, when values are read.
    pub value_column: Option<String>,
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Largest number of data rows accepted.
    pub max_rows: usize,
}

impl CsvSpec {
    /// Identifiers from `id_column`, default limits.
    pub fn new(id_column: impl Into<String>) -> Self {
        CsvSpec {
            id_column: id_column.into(),
            value_column: None,
            max_bytes: DEFAULT_MAX_CSV_BYTES,
            max_rows: DEFAULT_MAX_ROWS,
        }
    }

    /// Also reads values from `value_column`.
    #[must_use]
    pub fn with_values(mut self, value_column: impl Into<String>) -> Self {
        self.value_column = Some(value_column.into());
        self
    }
}

fn read_csv(path: &Path, spec: &CsvSpec, opts: NormalizeOptions) -> Result<InputSet> {
    let origin = Origin {
        path: Some(path),
        id_column: &spec.id_column,
        value_column: spec.value_column.as_deref(),
    };
    let file_err = |reason: String| PsiError::Csv {
        path: PathBuf::from(path),
        line: 0,
        column: None,
        reason,
    };
    let file = File::open(path).map_err(|e| file_err(format!("cannot read the file: {e}")))?;
    let len = file
        .metadata()
        .map_err(|e| file_err(format!("cannot read the file: {e}")))?
        .len();
    let too_big = || {
        file_err(format!(
            "the file is larger than {} bytes, the configured limit",
            spec.max_bytes
        ))
    };
    if len > spec.max_bytes {
        return Err(too_big());
    }
    // A file that grows while it is read is cut at the limit plus one byte and refused.
    let reader = BufReader::with_capacity(1 << 20, file.take(spec.max_bytes.saturating_add(1)));
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let csv_err = |e: csv::Error| {
        let line = e.position().map_or(0, csv::Position::line);
        match e.kind() {
            csv::ErrorKind::Utf8 { .. } => origin.err(line, None, "the text is not valid UTF-8"),
            csv::ErrorKind::Io(io) => origin.err(line, None, format!("cannot read the file: {io}")),
            _ => origin.err(line, None, "malformed CSV"),
        }
    };
    let mut record = csv::StringRecord::new();
    if !csv.read_record(&mut record).map_err(csv_err)? {
        return Err(origin.err(0, None, "the file has no header row"));
    }
    let header: Vec<String> = record
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            };
            h.trim().to_owned()
        })
        .collect();
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| origin.err(1, Some(name), "the column is not in the header"))
    };
    let id_idx = find(&spec.id_column)?;
    let value_idx = spec.value_column.as_deref().map(find).transpose()?;
    let mut b = Builder::new(opts, value_idx.is_some());
    let mut rows = 0usize;
    while csv.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, csv::Position::line);
        if record
            .position()
            .is_some_and(|p| p.byte() >= spec.max_bytes)
        {
            return Err(too_big());
        }
        rows += 1;
        if rows > spec.max_rows {
            return Err(origin.err(
                line,
                None,
                format!(
                    "the file has more than {} data rows, the configured limit",
                    spec.max_rows
                ),
            ));
        }
        if record.len() != header.len() {
            return Err(origin.err(
                line,
                None,
                format!(
                    "expected {} fields (as many as the header has), found {}",
                    header.len(),
                    record.len()
                ),
            ));
        }
        let raw_id = record.get(id_idx).unwrap_or_default();
        let value = match value_idx {
            None => None,
            Some(vi) => {
                let col = spec.value_column.as_deref();
                let cell = record.get(vi).unwrap_or_default().trim();
                if cell.is_empty() {
                    return Err(origin.err(line, col, "the value is empty"));
                }
                Some(cell.parse::<i64>().map_err(|_| {
                    origin.err(
                        line,
                        col,
                        "the value is not an integer (scale decimals first)",
                    )
                })?)
            }
        };
        b.push(&origin, line, raw_id, value)?;
    }
    b.finish(&origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn csv_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn check_err(text: &str, spec: &CsvSpec, opts: NormalizeOptions, want: &str, secret: &str) {
        let f = csv_file(text);
        let err = InputSet::read_csv(f.path(), spec, opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
        assert!(!err.contains(secret), "the message echoes data: {err}");
    }

    #[test]
    fn normalisation_trims_and_applies_the_case_rule() {
        assert_eq!(
            normalize("  Alice@X.org\t", CaseRule::Preserve).unwrap(),
            "Alice@X.org"
        );
        assert_eq!(
            normalize("  Alice@X.org\t", CaseRule::Lower).unwrap(),
            "alice@x.org"
        );
        assert_eq!(
            normalize("\u{a0}ÉLODIE ", CaseRule::Lower).unwrap(),
            "élodie"
        );
        assert!(normalize(" \t ", CaseRule::Preserve).is_none());
    }

    #[test]
    fn reads_ids_and_values_and_names_the_place_of_errors() {
        let f = csv_file("\u{feff}email, spend ,x\n a@x.org ,10,1\nB@x.org,-3,2\n");
        let spec = CsvSpec::new("email").with_values("spend");
        let set = InputSet::read_csv(f.path(), &spec, NormalizeOptions::default()).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.identifier(0), Some("a@x.org"));
        assert_eq!(set.values(), Some(&[10, -3][..]));

        let spec = CsvSpec::new("email").with_values("spend");
        let opts = NormalizeOptions::default();
        check_err(
            "email,spend\nsecret@x,12.5\n",
            &spec,
            opts,
            "line 2, column `spend`: the value is not an integer",
            "secret",
        );
        check_err(
            "email,spend\n  ,1\n",
            &spec,
            opts,
            "line 2, column `email`: the identifier is empty",
            "@@",
        );
        check_err(
            "email,spend\nsecret@x,1\nSECRET@x ,2\n",
            &spec,
            NormalizeOptions {
                case: CaseRule::Lower,
                ..opts
            },
            "line 3, column `email`: the identifier repeats the one on line 2",
            "secret",
        );
        check_err(
            "email,spend\nsecret@x,1,9\n",
            &spec,
            opts,
            "line 2: expected 2 fields",
            "secret",
        );
        check_err(
            "mail,spend\nsecret@x,1\n",
            &spec,
            opts,
            "line 1, column `email`: the column is not in the header",
            "secret",
        );
        check_err(
            "email,spend\nsecret@x,99999999999999\n",
            &spec,
            opts,
            "larger than 2^40",
            "99999",
        );
        check_err(
            "email,spend\n",
            &spec,
            opts,
            "the set has no identifiers",
            "@@",
        );
        check_err(
            "email,spend\nsecret@x,\n",
            &spec,
            opts,
            "the value is empty",
            "secret",
        );
    }

    #[test]
    fn merging_adds_values_of_repeated_identifiers() {
        let opts = NormalizeOptions {
            case: CaseRule::Lower,
            duplicates: Duplicates::Merge,
        };
        let set = InputSet::from_pairs([("a", 1), ("b", 2), (" A", 5)], opts).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.values(), Some(&[6, 2][..]));
        let refused = InputSet::from_pairs([("a", 1), ("a", 1)], NormalizeOptions::default());
        assert!(refused.is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let f = csv_file("id\na\nb\nc\n");
        let mut spec = CsvSpec::new("id");
        spec.max_rows = 2;
        let e = InputSet::read_csv(f.path(), &spec, NormalizeOptions::default()).unwrap_err();
        assert!(e.to_string().contains("more than 2 data rows"), "{e}");
        let mut spec = CsvSpec::new("id");
        spec.max_bytes = 5;
        let e = InputSet::read_csv(f.path(), &spec, NormalizeOptions::default()).unwrap_err();
        assert!(e.to_string().contains("larger than 5 bytes"), "{e}");
        let long = "x".repeat(MAX_IDENTIFIER_BYTES + 1);
        assert!(InputSet::from_identifiers([long], NormalizeOptions::default()).is_err());
    }

    #[test]
    fn debug_prints_no_identifier() {
        let set = InputSet::from_identifiers(["secret@x"], NormalizeOptions::default()).unwrap();
        assert!(!format!("{set:?}").contains("secret"));
    }
}
