//! CSV loading into a typed, column-major [`Table`].
//!
//! Rules, in the order they are checked:
//!
//! * The file must be at most [`CsvOptions::max_bytes`] bytes and have at most
//!   [`CsvOptions::max_rows`] data rows ([`DataError::TooLarge`]).
//! * No line (the header included) may be longer than [`CsvOptions::max_line_bytes`] bytes
//!   (default [`DEFAULT_MAX_LINE_BYTES`], 1 MiB) without its terminator. [`load_csv`] checks
//!   this while it reads, so a huge single-line file is refused after about that many bytes,
//!   before anything is parsed ([`DataError::LineTooLong`]). Lines are physical lines: a quoted
//!   field that spans lines counts towards each line it touches, not towards one.
//! * The first record is the header (a UTF-8 byte-order mark is ignored, names are trimmed). It
//!   must exist, names must be distinct, and every name in [`CsvOptions::label`],
//!   [`CsvOptions::categorical`] and [`CsvOptions::drop`] must be in it. At least one data row is
//!   required ([`DataError::Empty`]).
//! * Every row must have as many fields as the header ([`DataError::Ragged`]). Blank lines are
//!   skipped by the CSV reader; lines are counted from 1 with the header on line 1, and the line
//!   reported is the one where the record starts.
//! * Every column that is not the label and not dropped is a feature. Columns named in
//!   `categorical` are kept as trimmed strings; all others are numeric: the trimmed cell must
//!   parse as a finite `f64` (an empty cell is [`DataError::EmptyValue`], `nan`, `inf` and
//!   anything else that is not a finite number is [`DataError::NotNumeric`]).
//! * Label values are kept as trimmed strings and must not be empty. Dropped columns are kept as
//!   raw trimmed strings (in [`Table::dropped`]) so that a natural partition can use them.
//!
//! Numeric cells are parsed straight from the reused [`csv::ByteRecord`] without allocating a
//! `String` per cell.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, shorten};

/// Default byte limit for [`load_csv`]: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Default data-row limit for [`load_csv`]: ten million.
pub const DEFAULT_MAX_ROWS: usize = 10_000_000;
/// Default line-length limit for [`load_csv`] and [`parse_csv`]: 1 MiB (a row of 10,000
/// columns of 100 characters each).
pub const DEFAULT_MAX_LINE_BYTES: u64 = 1 << 20;

/// How to read a CSV file. See the [module documentation](self) for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// Name of the label column; `None` when the file has no labels (at predict time).
    pub label: Option<String>,
    /// Columns to keep as strings (one-hot encoded later); every other feature is numeric.
    pub categorical: Vec<String>,
    /// Columns to leave out of the features (their raw strings stay in [`Table::dropped`]). A
    /// column listed here and in `categorical` is dropped; the label column must not be listed
    /// here. The label column may be listed in `categorical`: it is still the label.
    pub drop: Vec<String>,
    /// Largest accepted file size in bytes.
    pub max_bytes: u64,
    /// Largest accepted number of data rows.
    pub max_rows: usize,
    /// Longest accepted line (header or data), in bytes without the line terminator.
    pub max_line_bytes: u64,
}

impl Default for CsvOptions {
    /// No label column, no categorical or dropped columns, default limits.
    fn default() -> Self {
        Self {
            label: None,
            categorical: Vec::new(),
            drop: Vec::new(),
            max_bytes: DEFAULT_MAX_BYTES,
            max_rows: DEFAULT_MAX_ROWS,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl CsvOptions {
    /// Options with the given label column and defaults for everything else.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: Some(label.into()),
            ..Self::default()
        }
    }

    /// Sets the categorical columns.
    #[must_use]
    pub fn with_categorical<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.categorical = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the dropped columns.
    #[must_use]
    pub fn with_drop<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.drop = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the byte limit.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets the line-length limit (bytes, without the line terminator).
    #[must_use]
    pub fn with_max_line_bytes(mut self, max_line_bytes: u64) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// Sets the data-row limit.
    #[must_use]
    pub fn with_max_rows(mut self, max_rows: usize) -> Self {
        self.max_rows = max_rows;
        self
    }
}

/// One feature column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A numeric column (finite values).
    Numeric {
        /// Header name.
        name: String,
        /// One value per row.
        values: Vec<f64>,
    },
    /// A categorical column (trimmed strings).
    Categorical {
        /// Header name.
        name: String,
        /// One value per row.
        values: Vec<String>,
    },
}

impl Column {
    /// The header name.
    pub fn name(&self) -> &str {
        match self {
            Column::Numeric { name, .. } | Column::Categorical { name, .. } => name,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric { values, .. } => values.len(),
            Column::Categorical { values, .. } => values.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `"numeric"` or `"categorical"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Column::Numeric { .. } => "numeric",
            Column::Categorical { .. } => "categorical",
        }
    }

    /// The values as strings: categorical values as they are, numeric values in Rust's shortest
    /// round-trip form (`1` for `1.0`, `0.5` for `.5`).
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Column::Numeric { values, .. } => values.iter().map(|v| v.to_string()).collect(),
            Column::Categorical { values, .. } => values.clone(),
        }
    }
}

/// A loaded CSV file: feature columns (in header order), labels, and the dropped columns' raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The file the table was read from (used in error messages).
    pub source: PathBuf,
    /// Feature columns in header order (label and dropped columns excluded).
    pub columns: Vec<Column>,
    /// Label of each row, when the table has a label column.
    pub labels: Option<Vec<String>>,
    /// Name of the label column, when there is one.
    pub label_name: Option<String>,
    /// Dropped columns, as [`Column::Categorical`] holding the trimmed raw text, in header order.
    pub dropped: Vec<Column>,
    /// 1-based file line where each data row starts (the header is line 1). May be empty for a
    /// table built by hand; [`Table::line_of`] then assumes one line per row.
    pub row_lines: Vec<u64>,
}

impl Table {
    /// Number of data rows.
    pub fn num_rows(&self) -> usize {
        if let Some(labels) = &self.labels {
            return labels.len();
        }
        if let Some(c) = self.columns.first().or(self.dropped.first()) {
            return c.len();
        }
        self.row_lines.len()
    }

    /// The feature column with this name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name() == name)
    }

    /// Names of the feature columns in order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.columns.iter().map(Column::name).collect()
    }

    /// The text of any column by name (feature, dropped or label), e.g. as keys for a natural
    /// partition. Numeric feature values come back in Rust's shortest round-trip form (see
    /// [`Column::to_strings`]); dropped and label columns come back as read (trimmed).
    pub fn raw_column(&self, name: &str) -> Option<Vec<String>> {
        if let Some(c) = self.column(name) {
            return Some(c.to_strings());
        }
        if let Some(c) = self.dropped.iter().find(|c| c.name() == name) {
            return Some(c.to_strings());
        }
        match (&self.label_name, &self.labels) {
            (Some(l), Some(labels)) if l == name => Some(labels.clone()),
            _ => None,
        }
    }

    /// Like [`Table::raw_column`], with [`DataError::UnknownColumn`] when the column is absent.
    pub fn require_raw_column(&self, name: &str) -> Result<Vec<String>, DataError> {
        self.raw_column(name)
            .ok_or_else(|| DataError::UnknownColumn {
                path: self.source.clone(),
                column: name.to_owned(),
            })
    }

    /// The 1-based file line of data row `row` (0-based), for messages.
    pub fn line_of(&self, row: usize) -> u64 {
        self.row_lines
            .get(row)
            .copied()
            .unwrap_or_else(|| row as u64 + 2)
    }
}

/// Marker carried in the `io::Error` when the byte limit is hit while reading.
#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("byte limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

/// A reader that fails with [`LimitExceeded`] once more than `remaining` bytes are available.
struct Limited<R> {
    inner: R,
    remaining: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(LimitExceeded)),
            };
        }
        let cap = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..cap])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// What to do with each header column.
#[derive(Clone, Copy)]
enum Role {
    Label,
    Numeric(usize),
    Categorical(usize),
    Dropped(usize),
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Parses a trimmed numeric cell; `None` unless it is a finite number.
fn parse_number(cell: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(cell).ok()?;
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// Loads a CSV file into a [`Table`]; see the [module documentation](self) for the rules.
///
/// The file is read into memory (at most [`CsvOptions::max_bytes`] bytes) and parsed with
/// [`parse_csv`].
pub fn load_csv(path: &Path, opts: &CsvOptions) -> Result<Table, DataError> {
    let io_err = |source: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_many_bytes = || DataError::TooLarge {
        path: path.to_path_buf(),
        limit: opts.max_bytes,
        what: "bytes",
    };
    let file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    if len > opts.max_bytes {
        return Err(too_many_bytes());
    }
    let mut limited = Limited {
        inner: file,
        remaining: opts.max_bytes,
    };
    // Read in blocks, checking line lengths as the bytes arrive: a file that is one huge
    // line is refused after about `max_line_bytes`, not after reading and parsing all of it.
    const BLOCK: usize = 1 << 16;
    let mut data: Vec<u8> = Vec::new();
    let mut lines = LineLengths::default();
    loop {
        let start = data.len();
        data.resize(start + BLOCK, 0);
        let n = match limited.read(&mut data[start..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                data.truncate(start);
                continue;
            }
            Err(e) => {
                return Err(
                    if e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>()) {
                        too_many_bytes()
                    } else {
                        io_err(e)
                    },
                );
            }
        };
        data.truncate(start + n);
        if n == 0 {
            break;
        }
        if let Some(line) = lines.feed(&data[start..], opts.max_line_bytes) {
            return Err(DataError::LineTooLong {
                path: path.to_path_buf(),
                line,
                limit: opts.max_line_bytes,
            });
        }
    }
    parse_csv_checked(path, &data, opts)
}

/// Tracks the length of the current line over blocks of a file.
#[derive(Default)]
struct LineLengths {
    /// 0-based index of the current line.
    line: u64,
    /// Bytes of the current line seen so far.
    len: u64,
}

impl LineLengths {
    /// Takes the next block; returns the 1-based line that exceeds `limit`, if one does.
    fn feed(&mut self, block: &[u8], limit: u64) -> Option<u64> {
        let mut pieces = block.split(|&b| b == b'\n');
        if let Some(first) = pieces.next() {
            self.len += first.len() as u64;
            if self.len > limit {
                return Some(self.line + 1);
            }
        }
        for piece in pieces {
            self.line += 1;
            self.len = piece.len() as u64;
            if self.len > limit {
                return Some(self.line + 1);
            }
        }
        None
    }
}

/// Largest header line [`read_header`] reads.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Reads only the header row of a CSV file (at most 1 MiB), e.g. to see whether a file to predict
/// on carries the label column.
pub fn read_header(path: &Path) -> Result<Vec<String>, DataError> {
    let io_err = |source: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut data = Vec::new();
    file.take(MAX_HEADER_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(io_err)?;
    if LineLengths::default()
        .feed(&data, MAX_HEADER_BYTES)
        .is_some()
    {
        return Err(DataError::LineTooLong {
            path: path.to_path_buf(),
            line: 1,
            limit: MAX_HEADER_BYTES,
        });
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&data[..]);
    let mut record = ::csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record.iter().map(|f| f.trim().to_string()).collect()),
        Ok(false) => Err(DataError::Empty {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(DataError::Csv {
            path: path.to_path_buf(),
            line: 1,
            message: e.to_string(),
        }),
    }
}

/// Counts 1-based lines up to byte offsets that only move forward.
struct LineCounter<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
}

impl LineCounter<'_> {
    /// The line of the first byte of the record whose reading started at byte `start` (the CSV
    /// reader's record position includes any blank lines and the `\n` of a CRLF terminator
    /// skipped before the record, and its own line count is off for CRLF files).
    fn record_line(&mut self, start: u64) -> u64 {
        let start = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .clamp(self.pos, self.data.len());
        self.line += self.data[self.pos..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        let mut p = start;
        while let Some(&b) = self.data.get(p) {
            match b {
                b'\n' => self.line += 1,
                b'\r' => {}
                _ => break,
            }
            p += 1;
        }
        self.pos = p;
        self.line
    }
}

/// Parses CSV text already in memory into a [`Table`] (the same rules as [`load_csv`]; `source` is
/// only used to name the data in errors and in [`Table::source`]).
pub fn parse_csv(
    source: impl AsRef<Path>,
    data: &[u8],
    opts: &CsvOptions,
) -> Result<Table, DataError> {
    let path = source.as_ref();
    if data.len() as u64 > opts.max_bytes {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            limit: opts.max_bytes,
            what: "bytes",
        });
    }
    if let Some(line) = LineLengths::default().feed(data, opts.max_line_bytes) {
        return Err(DataError::LineTooLong {
            path: path.to_path_buf(),
            line,
            limit: opts.max_line_bytes,
        });
    }
    parse_csv_checked(path, data, opts)
}

/// [`parse_csv`] once the size and line lengths are checked.
fn parse_csv_checked(path: &Path, data: &[u8], opts: &CsvOptions) -> Result<Table, DataError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let mut lines = LineCounter {
        data,
        pos: 0,
        line: 1,
    };

    let map_csv_err = |e: ::csv::Error| -> DataError {
        let line = e.position().map_or(0, ::csv::Position::line);
        match e.into_kind() {
            ::csv::ErrorKind::Io(io) => DataError::Io {
                path: path.to_path_buf(),
                source: io,
            },
            other => DataError::Csv {
                path: path.to_path_buf(),
                line,
                message: format!("{other:?}"),
            },
        }
    };

    // Header.
    let mut record = ::csv::ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(map_csv_err)? {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let header_line = lines.record_line(record.position().map_or(0, ::csv::Position::byte));
    let mut names = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let field = if i == 0 {
            field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field)
        } else {
            field
        };
        let name = std::str::from_utf8(trim_ascii(field)).map_err(|_| DataError::InvalidUtf8 {
            path: path.to_path_buf(),
            line: header_line,
            column: format!("#{}", i + 1),
        })?;
        names.push(name.to_owned());
    }
    {
        let mut seen = BTreeSet::new();
        for n in &names {
            if !seen.insert(n.as_str()) {
                return Err(DataError::DuplicateColumn {
                    path: path.to_path_buf(),
                    column: n.clone(),
                });
            }
        }
    }
    let position = |name: &str| names.iter().position(|n| n == name);
    let label_idx = match &opts.label {
        None => None,
        Some(label) => Some(position(label).ok_or_else(|| DataError::MissingLabel {
            path: path.to_path_buf(),
            label: label.clone(),
            available: names.clone(),
        })?),
    };
    for name in opts.categorical.iter().chain(&opts.drop) {
        if position(name).is_none() {
            return Err(DataError::UnknownColumn {
                path: path.to_path_buf(),
                column: name.clone(),
            });
        }
    }
    if let Some(label) = &opts.label
        && opts.drop.contains(label)
    {
        return Err(DataError::InvalidParameter(format!(
            "{}: the label column `{label}` is also listed in `drop`",
            path.display()
        )));
    }

    let mut roles = Vec::with_capacity(names.len());
    let mut numeric: Vec<(String, Vec<f64>)> = Vec::new();
    let mut categorical: Vec<(String, Vec<String>)> = Vec::new();
    let mut dropped: Vec<(String, Vec<String>)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let role = if Some(i) == label_idx {
            Role::Label
        } else if opts.drop.contains(name) {
            dropped.push((name.clone(), Vec::new()));
            Role::Dropped(dropped.len() - 1)
        } else if opts.categorical.contains(name) {
            categorical.push((name.clone(), Vec::new()));
            Role::Categorical(categorical.len() - 1)
        } else {
            numeric.push((name.clone(), Vec::new()));
            Role::Numeric(numeric.len() - 1)
        };
        roles.push(role);
    }
    let mut labels: Vec<String> = Vec::new();
    let mut row_lines: Vec<u64> = Vec::new();

    let text = |cell: &[u8], line: u64, col: usize| -> Result<String, DataError> {
        std::str::from_utf8(cell)
            .map(str::to_owned)
            .map_err(|_| DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                line,
                column: names[col].clone(),
            })
    };

    let mut rows = 0usize;
    while reader.read_byte_record(&mut record).map_err(map_csv_err)? {
        let line = lines.record_line(
            record
                .position()
                .map_or(data.len() as u64, ::csv::Position::byte),
        );
        if rows == opts.max_rows {
            return Err(DataError::TooLarge {
                path: path.to_path_buf(),
                limit: opts.max_rows as u64,
                what: "data rows",
            });
        }
        if record.len() != names.len() {
            return Err(DataError::Ragged {
                path: path.to_path_buf(),
                line,
                expected: names.len(),
                found: record.len(),
            });
        }
        for (col, (cell, role)) in record.iter().zip(&roles).enumerate() {
            let cell = trim_ascii(cell);
            match *role {
                Role::Numeric(slot) => {
                    if cell.is_empty() {
                        return Err(DataError::EmptyValue {
                            path: path.to_path_buf(),
                            line,
                            column: names[col].clone(),
                        });
                    }
                    let v = parse_number(cell).ok_or_else(|| DataError::NotNumeric {
                        path: path.to_path_buf(),
                        line,
                        column: names[col].clone(),
                        value: shorten(&String::from_utf8_lossy(cell)),
                    })?;
                    numeric[slot].1.push(v);
                }
                Role::Categorical(slot) => categorical[slot].1.push(text(cell, line, col)?),
                Role::Dropped(slot) => dropped[slot].1.push(text(cell, line, col)?),
                Role::Label => {
                    if cell.is_empty() {
                        return Err(DataError::EmptyValue {
                            path: path.to_path_buf(),
                            line,
                            column: names[col].clone(),
                        });
                    }
                    labels.push(text(cell, line, col)?);
                }
            }
        }
        row_lines.push(line);
        rows += 1;
    }
    if rows == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }

    // Rebuild header order for the feature columns.
    let mut numeric = numeric.into_iter().map(Some).collect::<Vec<_>>();
    let mut categorical = categorical.into_iter().map(Some).collect::<Vec<_>>();
    let mut columns = Vec::with_capacity(roles.len());
    for role in &roles {
        match *role {
            Role::Numeric(slot) => {
                if let Some((name, values)) = numeric[slot].take() {
                    columns.push(Column::Numeric { name, values });
                }
            }
            Role::Categorical(slot) => {
                if let Some((name, values)) = categorical[slot].take() {
                    columns.push(Column::Categorical { name, values });
                }
            }
            Role::Label | Role::Dropped(_) => {}
        }
    }
    let dropped = dropped
        .into_iter()
        .map(|(name, values)| Column::Categorical { name, values })
        .collect();

    Ok(Table {
        source: path.to_path_buf(),
        columns,
        labels: label_idx.map(|_| labels),
        label_name: label_idx.map(|i| names[i].clone()),
        dropped,
        row_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        let mut f = File::create(&p).expect("create");
        f.write_all(content).expect("write");
        p
    }

    /// Issue 11, item 6: a 200 MB single-line CSV took 20 s and 1.4 GB and printed a 200 MB
    /// error. A few MB show the limit: the file is refused after about `max_line_bytes`, and
    /// the message is one short line.
    #[test]
    fn an_over_long_line_is_refused_early_with_a_short_message() {
        let dir = tempfile::tempdir().unwrap();
        let long = vec![b'7'; 4 << 20];
        // A header that is one long line (no newline at all).
        let p = write(&dir, "header.csv", &long);
        let err = load_csv(&p, &CsvOptions::new("y")).unwrap_err();
        assert!(
            matches!(err, DataError::LineTooLong { line: 1, limit, .. } if limit == DEFAULT_MAX_LINE_BYTES),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.len() < 200, "{} bytes: {}", msg.len(), shorten(&msg));
        assert!(msg.contains("header.csv: line 1"), "{msg}");
        // A long data line, after a good header and row; also through parse_csv.
        let mut data = b"x,y\n1,0\n".to_vec();
        data.extend(long.iter().take(3 << 20));
        data.extend_from_slice(b",1\n");
        let p = write(&dir, "row.csv", &data);
        for err in [
            load_csv(&p, &CsvOptions::new("y")).unwrap_err(),
            parse_csv(&p, &data, &CsvOptions::new("y")).unwrap_err(),
        ] {
            assert!(
                matches!(err, DataError::LineTooLong { line: 3, .. }),
                "{err:?}"
            );
            assert!(err.to_string().len() < 200);
        }
        // The limit is an option: a smaller one refuses a shorter line.
        let opts = CsvOptions::new("y").with_max_line_bytes(6);
        let err = parse_csv("t.csv", b"x,y\n12345,0\n", &opts).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LineTooLong {
                    line: 2,
                    limit: 6,
                    ..
                }
            ),
            "{err:?}"
        );
        parse_csv("t.csv", b"x,y\n1234,0\n", &opts).unwrap();
        // read_header refuses a header longer than it reads instead of cutting it.
        let p = write(&dir, "header2.csv", &long);
        assert!(matches!(
            read_header(&p).unwrap_err(),
            DataError::LineTooLong { line: 1, .. }
        ));
    }

    /// Every error that quotes text from the file (or about it) quotes at most a short prefix.
    #[test]
    fn errors_quote_only_a_short_prefix_of_long_values() {
        let big = "v".repeat(300_000);
        let opts = CsvOptions::new("y");
        let cases: Vec<(String, CsvOptions)> = vec![
            // Missing label: the header's names are listed.
            (format!("{big},x\n1,2\n"), opts.clone()),
            // A non-numeric cell.
            (format!("x,y\n{big},1\n"), opts.clone()),
            // A duplicate column name.
            (format!("{big},{big},y\n1,2,3\n"), opts.clone()),
            // An empty cell in a column with a long name.
            (format!("{big},y\n ,1\n"), opts.clone()),
            // A categorical column asked for that is not in the header.
            (
                "x,y\n1,2\n".to_string(),
                opts.clone().with_categorical([big.clone()]),
            ),
            // A label that is missing, named by a long option.
            ("x,y\n1,2\n".to_string(), CsvOptions::new(big.clone())),
        ];
        let mut cases: Vec<(Vec<u8>, CsvOptions)> = cases
            .into_iter()
            .map(|(t, o)| (t.into_bytes(), o))
            .collect();
        // Invalid UTF-8 in a categorical cell of a long-named column.
        let mut bad = format!("{big},y\n").into_bytes();
        bad.extend_from_slice(b"\xff\xfe,1\n");
        cases.push((bad, opts.clone().with_categorical([big.clone()])));
        for (i, (text, opts)) in cases.into_iter().enumerate() {
            let err = parse_csv("data/t.csv", &text, &opts).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.len() < 600,
                "case {i}: {} bytes: {}",
                msg.len(),
                shorten(&msg)
            );
            assert!(msg.starts_with("data/t.csv"), "case {i}: {}", shorten(&msg));
        }
    }

    #[test]
    fn loads_numeric_categorical_label_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "t.csv",
            b"\xEF\xBB\xBFa, color ,id,y\n1.5,red,k1,yes\n -2 , blue ,k2, no\n\n3e2,red,k1,yes\n",
        );
        let opts = CsvOptions::new("y")
            .with_categorical(["color"])
            .with_drop(["id"]);
        let t = load_csv(&p, &opts).unwrap();
        assert_eq!(t.num_rows(), 3);
        assert_eq!(t.feature_names(), vec!["a", "color"]);
        assert_eq!(
            t.column("a"),
            Some(&Column::Numeric {
                name: "a".into(),
                values: vec![1.5, -2.0, 300.0]
            })
        );
        assert_eq!(
            t.column("color").unwrap().to_strings(),
            vec!["red", "blue", "red"]
        );
        assert_eq!(t.labels.as_deref().unwrap(), ["yes", "no", "yes"]);
        assert_eq!(t.label_name.as_deref(), Some("y"));
        assert_eq!(t.raw_column("id").unwrap(), vec!["k1", "k2", "k1"]);
        assert_eq!(t.raw_column("y").unwrap(), vec!["yes", "no", "yes"]);
        assert_eq!(t.raw_column("a").unwrap(), vec!["1.5", "-2", "300"]);
        assert!(t.raw_column("nope").is_none());
        assert!(matches!(
            t.require_raw_column("nope"),
            Err(DataError::UnknownColumn { .. })
        ));
        // The blank line is skipped, and lines still count it.
        assert_eq!(t.row_lines, vec![2, 3, 5]);
        assert_eq!(t.line_of(2), 5);
    }

    #[test]
    fn no_label_column_at_predict_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "t.csv", b"a,b\n1,2\n3,4\n");
        let t = load_csv(&p, &CsvOptions::default()).unwrap();
        assert!(t.labels.is_none());
        assert_eq!(t.num_rows(), 2);
        assert_eq!(t.columns.len(), 2);
    }

    #[test]
    fn quoted_fields_with_commas_and_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "q.csv",
            b"a,c,y\n1,\"x, y\",0\n2,\"multi\nline\",1\n3,z,0x\n",
        );
        let t = load_csv(&p, &CsvOptions::new("y").with_categorical(["c"])).unwrap();
        assert_eq!(
            t.column("c").unwrap().to_strings(),
            vec!["x, y", "multi\nline", "z"]
        );
        assert_eq!(t.row_lines, vec![2, 3, 5]);
    }

    #[test]
    fn crlf_and_blank_lines_keep_true_line_numbers() {
        let opts = CsvOptions::new("y").with_categorical(["c"]);
        // Lines: 1 blank, 2 header, 3 row, 4 blank, 5 row, 6-7 quoted row, 8 row, 9 bad row.
        let data = b"\r\na,c,y\r\n1,p,0\r\n\r\n2,q,1\r\n3,\"x\r\ny\",0\r\n4,r,1\r\nbad,s,0\r\n";
        let err = parse_csv("crlf.csv", data, &opts).unwrap_err();
        assert!(
            matches!(err, DataError::NotNumeric { line: 9, .. }),
            "{err}"
        );
        let t = parse_csv("crlf.csv", &data[..data.len() - 9], &opts).unwrap();
        assert_eq!(t.row_lines, vec![3, 5, 6, 8]);
        assert_eq!(t.column("c").unwrap().to_strings()[2], "x\r\ny");
        assert_eq!(t.source, PathBuf::from("crlf.csv"));
        let ragged = b"a,c,y\r\n1,p,0\r\n\r\n\r\n2,q\r\n";
        let err = parse_csv("r.csv", ragged, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Ragged {
                    line: 5,
                    expected: 3,
                    found: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn nan_inf_and_overflow_are_not_numbers() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["nan", "NaN", "inf", "-infinity", "1e400", "0x10", "1,5"] {
            let content = format!("a,y\n1,0\n\"{bad}\",1\n");
            let p = write(&dir, "n.csv", content.as_bytes());
            let err = load_csv(&p, &CsvOptions::new("y")).unwrap_err();
            assert!(
                matches!(&err, DataError::NotNumeric { line: 3, column, value, .. }
                    if column == "a" && value == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn row_and_byte_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "l.csv", b"a,y\n1,0\n2,1\n3,0\n");
        let err = load_csv(&p, &CsvOptions::new("y").with_max_rows(2)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TooLarge {
                    limit: 2,
                    what: "data rows",
                    ..
                }
            ),
            "{err}"
        );
        assert!(load_csv(&p, &CsvOptions::new("y").with_max_rows(3)).is_ok());
        let err = load_csv(&p, &CsvOptions::new("y").with_max_bytes(10)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TooLarge {
                    limit: 10,
                    what: "bytes",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("l.csv"));
        assert!(load_csv(&p, &CsvOptions::new("y").with_max_bytes(16)).is_ok());
    }

    #[test]
    fn limited_reader_reports_excess() {
        let mut r = Limited {
            inner: &b"abcdef"[..],
            remaining: 4,
        };
        let mut buf = Vec::new();
        let err = r.read_to_end(&mut buf).unwrap_err();
        assert!(err.get_ref().unwrap().is::<LimitExceeded>());
        let mut r = Limited {
            inner: &b"abcd"[..],
            remaining: 4,
        };
        let mut buf = Vec::new();
        r.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"abcd");
    }

    #[test]
    fn duplicate_header_and_label_in_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "d.csv", b"a,a,y\n1,2,0\n");
        let err = load_csv(&p, &CsvOptions::new("y")).unwrap_err();
        assert!(matches!(&err, DataError::DuplicateColumn { column, .. } if column == "a"));
        let p = write(&dir, "e.csv", b"a,y\n1,0\n");
        let err = load_csv(&p, &CsvOptions::new("y").with_drop(["y"])).unwrap_err();
        assert!(matches!(err, DataError::InvalidParameter(_)));
    }

    #[test]
    fn invalid_utf8_in_categorical() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "u.csv", b"c,y\nok,0\n\xff\xfe,1\n");
        let err = load_csv(&p, &CsvOptions::new("y").with_categorical(["c"])).unwrap_err();
        assert!(
            matches!(&err, DataError::InvalidUtf8 { line: 3, column, .. } if column == "c"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_io_error_naming_the_file() {
        let err = load_csv(Path::new("/nonexistent/zz.csv"), &CsvOptions::new("y")).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/zz.csv"));
    }
}
