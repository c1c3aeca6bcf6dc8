//! The crate's error type.
//!
//! Every error that comes from reading a file names the file; errors about one cell also name the
//! 1-based line (the header is line 1) and the column, so a message can be acted on without a
//! debugger, e.g. ``data/x.csv: line 7, column `age`: expected a number, found `abc` ``.
//!
//! Text that comes from a file or is about one (cell values, column names, labels, the CSV
//! reader's own message) is quoted only as a prefix of at most 60 characters followed by `...`
//! (the shortening happens when the error is displayed, so no variant can forget it), and lines
//! longer than [`CsvOptions::max_line_bytes`](crate::CsvOptions::max_line_bytes) are refused
//! before they are parsed ([`DataError::LineTooLong`]). An error message is therefore a few
//! hundred bytes at most, whatever the file holds.

use std::path::PathBuf;

/// Everything that can go wrong while loading, encoding, splitting, partitioning or generating data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: cannot read the file: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The file has no header row, or a header but no data rows.
    #[error("{}: the file has no header row or no data rows", .path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// A line is longer than the configured limit (checked while the file is read, before any
    /// parsing; the header is line 1).
    #[error(
        "{}: line {line}: the line is longer than {limit} bytes, the configured limit",
        .path.display()
    )]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The limit in bytes (without the line terminator).
        limit: u64,
    },

    /// A row has a different number of fields from the header.
    #[error(
        "{}: line {line}: expected {expected} fields (as many as the header has), found {found}",
        .path.display()
    )]
    Ragged {
        /// The file.
        path: PathBuf,
        /// 1-based line of the row (the header is line 1).
        line: u64,
        /// Number of fields in the header.
        expected: usize,
        /// Number of fields in this row.
        found: usize,
    },

    /// A cell of a numeric column is not a finite number (`nan` and `inf` are rejected too).
    #[error(
        "{}: line {line}, column `{}`: expected a number, found `{}`",
        .path.display(), shorten(.column), shorten(.value)
    )]
    NotNumeric {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: u64,
        /// Column name.
        column: String,
        /// The offending text (shortened when very long).
        value: String,
    },

    /// A cell of a numeric column, or a label, is empty (or only whitespace).
    #[error("{}: line {line}, column `{}`: the value is empty", .path.display(), shorten(.column))]
    EmptyValue {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: u64,
        /// Column name.
        column: String,
    },

    /// A header name or a categorical/label cell is not valid UTF-8.
    #[error(
        "{}: line {line}, column `{}`: the text is not valid UTF-8",
        .path.display(), shorten(.column)
    )]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: u64,
        /// Column name (or `#n`, the 1-based position, for a header cell).
        column: String,
    },

    /// The configured label column is not in the header.
    #[error(
        "{}: line 1: the label column `{}` is not in the header; the columns are: {}",
        .path.display(),
        shorten(.label),
        name_list(.available)
    )]
    MissingLabel {
        /// The file.
        path: PathBuf,
        /// The configured label column.
        label: String,
        /// The columns the header does have.
        available: Vec<String>,
    },

    /// A configured column (categorical, dropped, partition key) or a column the encoder needs is not
    /// in the table.
    #[error("{}: line 1: column `{}` is not in the header", .path.display(), shorten(.column))]
    UnknownColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
    },

    /// Two header cells have the same name.
    #[error(
        "{}: line 1: column `{}` appears more than once in the header",
        .path.display(), shorten(.column)
    )]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
    },

    /// The file has more bytes, or more data rows, than the configured limit.
    #[error("{}: the file has more than {limit} {what}, the configured limit", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit that was exceeded.
        limit: u64,
        /// What was counted: `"bytes"` or `"data rows"`.
        what: &'static str,
    },

    /// The CSV reader failed for a reason other than I/O.
    #[error("{}: line {line}: malformed CSV: {}", .path.display(), shorten(.message))]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line where the reader stopped (0 when unknown).
        line: u64,
        /// The reader's message.
        message: String,
    },

    /// A label in the table was not among the labels the encoder was fitted on.
    #[error(
        "{}: line {line}: label `{}` was not seen when the encoder was fitted",
        .path.display(), shorten(.label)
    )]
    UnseenLabel {
        /// The file.
        path: PathBuf,
        /// 1-based line (the header is line 1).
        line: u64,
        /// The unseen label.
        label: String,
    },

    /// Labels were asked for, but the table was loaded without a label column.
    #[error("{}: the table has no label column", .path.display())]
    NoLabelColumn {
        /// The file.
        path: PathBuf,
    },

    /// A column has the wrong kind for the encoder (numeric where one-hot is expected or the reverse).
    #[error(
        "{}: column `{}` was loaded as {found}, but the encoder expects a {expected} column",
        .path.display(), shorten(.column)
    )]
    ColumnKind {
        /// The file.
        path: PathBuf,
        /// Column name.
        column: String,
        /// What the encoder expects: `"numeric"` or `"categorical"`.
        expected: &'static str,
        /// What the table has.
        found: &'static str,
    },

    /// Lengths that must agree do not (matrix data vs. shape, rows vs. labels, ...).
    #[error("shape mismatch: {what}: expected {expected}, found {found}")]
    ShapeMismatch {
        /// What was measured.
        what: String,
        /// Expected length.
        expected: usize,
        /// Actual length.
        found: usize,
    },

    /// A partition request that cannot be satisfied (too few rows for the clients, or the
    /// Dirichlet draw could not give every client its minimum number of rows).
    #[error("impossible partition: {}", shorten_message(.0))]
    Partition(String),

    /// A parameter out of its range (fractions, concentrations, counts, ...).
    #[error("invalid parameter: {}", shorten_message(.0))]
    InvalidParameter(String),
}

impl DataError {
    /// The error without any cell value: file, line and column only. This is what may leave the
    /// data owner (a node's report to the coordinator); the full message stays in its own log.
    /// Column names are schema, not data, and are kept; cell values, labels, the CSV reader's
    /// text and the header's other columns are not.
    pub fn redacted(&self) -> String {
        match self {
            DataError::NotNumeric {
                path, line, column, ..
            } => format!(
                "{}: line {line}, column `{column}`: not a number",
                path.display()
            ),
            DataError::UnseenLabel { path, line, .. } => format!(
                "{}: line {line}: a label that the encoder was not fitted on",
                path.display()
            ),
            DataError::MissingLabel { path, label, .. } => format!(
                "{}: line 1: the label column `{label}` is not in the header",
                path.display()
            ),
            DataError::Csv { path, line, .. } => {
                format!("{}: line {line}: malformed CSV", path.display())
            }
            DataError::Io { path, source } => {
                format!(
                    "{}: cannot read the file ({})",
                    path.display(),
                    source.kind()
                )
            }
            // The other variants name only the file, lines, columns, counts and limits.
            other => other.to_string(),
        }
    }
}

/// Joins column names for a message, keeping it short for very wide files.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{}`", shorten(n)))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(", ... ({} more)", names.len() - SHOWN));
    }
    if names.is_empty() {
        out.push_str("(none)");
    }
    out
}

/// Characters of a value quoted in an error message.
const MAX_QUOTED_CHARS: usize = 60;

/// Characters of a composed message (parameter errors) shown in an error message.
const MAX_MESSAGE_CHARS: usize = 400;

/// The first `max` characters of `text`, with `...` when it was longer (looks at no more than
/// `max + 1` characters, so it is cheap on huge text).
fn prefix(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

/// Shortens a value (cell, column name, label) for an error message.
pub(crate) fn shorten(text: &str) -> String {
    prefix(text, MAX_QUOTED_CHARS)
}

/// Shortens a composed message that may quote values.
fn shorten_message(text: &str) -> String {
    prefix(text, MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_numeric_message_names_file_line_and_column() {
        let e = DataError::NotNumeric {
            path: PathBuf::from("data/x.csv"),
            line: 7,
            column: "age".into(),
            value: "abc".into(),
        };
        assert_eq!(
            e.to_string(),
            "data/x.csv: line 7, column `age`: expected a number, found `abc`"
        );
    }

    #[test]
    fn missing_label_lists_columns_and_truncates() {
        let available: Vec<String> = (0..25).map(|i| format!("c{i}")).collect();
        let e = DataError::MissingLabel {
            path: PathBuf::from("a.csv"),
            label: "y".into(),
            available,
        };
        let msg = e.to_string();
        assert!(msg.contains("`y`"), "{msg}");
        assert!(msg.contains("`c0`"), "{msg}");
        assert!(msg.contains("(5 more)"), "{msg}");
        assert!(!msg.contains("`c24`"), "{msg}");
    }

    #[test]
    fn shorten_keeps_short_text_and_cuts_long_text() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(100);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), 63);
        assert!(s.ends_with("..."));
    }
}
