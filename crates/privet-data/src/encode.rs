//! Feature encoding: standardization of numeric columns and one-hot encoding of categorical ones,
//! fitted on the training rows only, plus label encoding.
//!
//! * Numeric column: `(x - mean) / std` with the mean and the **population** standard deviation
//!   (`ddof = 0`, as scikit-learn's `StandardScaler`) of the training rows. A standard deviation
//!   below `10 * f64::EPSILON` (a constant column) is treated as 1, as scikit-learn does, so the
//!   column encodes as `x - mean`.
//! * Categorical column: one output per category seen in the training rows, categories sorted
//!   lexicographically (byte order); the output is named `column=value`. A category not seen in
//!   training encodes as all zeros.
//! * Labels: the sorted set of label values over **all** rows of the table the encoder is fitted
//!   on (so a class that only occurs in the test split still has an index). When every label
//!   parses as a finite number they are sorted numerically (`"2"` before `"10"`), otherwise
//!   lexicographically; class `i` is `label_names[i]`. For adult (`<=50K`, `>50K`) this maps `>50K`
//!   to 1; for digits it maps `"0"`..`"9"` to 0..9.
//!
//! The [`Encoder`] is `serde`-serializable so it can be stored next to a model.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::table::{Column, CsvOptions, Table};

/// How one input column becomes output features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FeatureEncoding {
    /// `(x - mean) / std` (one output); `std` below `10 * f64::EPSILON` is treated as 1.
    Standardize {
        /// Column name.
        name: String,
        /// Training mean.
        mean: f64,
        /// Training population standard deviation (ddof = 0).
        std: f64,
    },
    /// One output per category (in this order), 1 for the row's category, 0 elsewhere.
    OneHot {
        /// Column name.
        name: String,
        /// Categories seen in training, sorted.
        categories: Vec<String>,
    },
}

impl FeatureEncoding {
    /// The input column's name.
    pub fn name(&self) -> &str {
        match self {
            FeatureEncoding::Standardize { name, .. } | FeatureEncoding::OneHot { name, .. } => {
                name
            }
        }
    }

    /// Number of output features.
    pub fn width(&self) -> usize {
        match self {
            FeatureEncoding::Standardize { .. } => 1,
            FeatureEncoding::OneHot { categories, .. } => categories.len(),
        }
    }
}

/// The divisor actually used for a fitted standard deviation.
fn effective_std(std: f64) -> f64 {
    if std.is_finite() && std >= 10.0 * f64::EPSILON {
        std
    } else {
        1.0
    }
}

/// A dense row-major `f32` matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// A matrix from row-major data; [`DataError::ShapeMismatch`] unless `data.len() == rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, DataError> {
        let expected = rows.checked_mul(cols).ok_or_else(|| {
            DataError::InvalidParameter(format!("matrix shape {rows}x{cols} overflows"))
        })?;
        if data.len() != expected {
            return Err(DataError::ShapeMismatch {
                what: format!("data length of a {rows}x{cols} matrix"),
                expected,
                found: data.len(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// A matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Result<Self, DataError> {
        let len = rows.checked_mul(cols).ok_or_else(|| {
            DataError::InvalidParameter(format!("matrix shape {rows}x{cols} overflows"))
        })?;
        Ok(Self {
            rows,
            cols,
            data: vec![0.0; len],
        })
    }

    /// Row `i`. Panics when `i >= rows` (like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutably. Panics when `i >= rows`.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// A new matrix holding the given rows, in the given order. Panics on an index `>= rows`.
    pub fn gather(&self, idx: &[u32]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i as usize));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }
}

/// An encoded dataset: features, class indices, number of classes and feature names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// Features, one row per example.
    pub x: Matrix,
    /// Class index of each row, each `< num_classes`.
    pub y: Vec<u32>,
    /// Number of classes.
    pub num_classes: usize,
    /// Name of each feature column (`x.cols` names).
    pub feature_names: Vec<String>,
}

impl Dataset {
    /// A dataset, checking that the parts agree (rows vs. labels, columns vs. names, labels in
    /// range).
    pub fn new(
        x: Matrix,
        y: Vec<u32>,
        num_classes: usize,
        feature_names: Vec<String>,
    ) -> Result<Self, DataError> {
        if y.len() != x.rows {
            return Err(DataError::ShapeMismatch {
                what: "number of labels vs. feature rows".into(),
                expected: x.rows,
                found: y.len(),
            });
        }
        if feature_names.len() != x.cols {
            return Err(DataError::ShapeMismatch {
                what: "number of feature names vs. feature columns".into(),
                expected: x.cols,
                found: feature_names.len(),
            });
        }
        if let Some(&bad) = y.iter().find(|&&c| c as usize >= num_classes) {
            return Err(DataError::InvalidParameter(format!(
                "label {bad} out of range for {num_classes} classes"
            )));
        }
        Ok(Self {
            x,
            y,
            num_classes,
            feature_names,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Number of feature columns.
    pub fn num_features(&self) -> usize {
        self.x.cols
    }

    /// A copy of the given rows in the given order (meant for a test set; training code should use
    /// index views). Panics on an index `>= len()`; see [`Dataset::try_gather`].
    pub fn gather(&self, idx: &[u32]) -> Dataset {
        Dataset {
            x: self.x.gather(idx),
            y: idx.iter().map(|&i| self.y[i as usize]).collect(),
            num_classes: self.num_classes,
            feature_names: self.feature_names.clone(),
        }
    }

    /// Like [`Dataset::gather`], with an error instead of a panic for an out-of-range index.
    pub fn try_gather(&self, idx: &[u32]) -> Result<Dataset, DataError> {
        if let Some(&bad) = idx.iter().find(|&&i| i as usize >= self.len()) {
            return Err(DataError::InvalidParameter(format!(
                "row index {bad} out of range for a dataset of {} rows",
                self.len()
            )));
        }
        Ok(self.gather(idx))
    }

    /// Number of rows of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.num_classes];
        for &c in &self.y {
            if let Some(n) = counts.get_mut(c as usize) {
                *n += 1;
            }
        }
        counts
    }
}

/// A small, fast, deterministic hasher (the Fx hash of rustc) for short category strings. Only used
/// for lookups, never for iteration order; a file crafted to collide can only make encoding
/// slower, not wrong.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// The distinct values, sorted (byte order). Hashes (skipping runs of equal values) and sorts only
/// the distinct values: much cheaper than building a `BTreeSet` from every value.
fn sorted_distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: FastSet<&str> = FastSet::default();
    let mut last: Option<&str> = None;
    for v in values {
        if last != Some(v) {
            seen.insert(v);
            last = Some(v);
        }
    }
    let mut out: Vec<String> = seen.into_iter().map(str::to_owned).collect();
    out.sort_unstable();
    out
}

/// Sorts label names: numerically when all parse as finite numbers, else lexicographically.
pub fn sort_labels(mut names: Vec<String>) -> Vec<String> {
    let nums: Option<Vec<f64>> = names
        .iter()
        .map(|s| s.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    match nums {
        Some(nums) => {
            let mut pairs: Vec<(f64, String)> = nums.into_iter().zip(names).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            pairs.into_iter().map(|(_, s)| s).collect()
        }
        None => {
            names.sort();
            names
        }
    }
}

/// Fitted feature and label encoding; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    /// One entry per input feature column, in table order.
    pub features: Vec<FeatureEncoding>,
    /// Class names; class `i` is `label_names[i]`. Empty when fitted on a table without labels.
    pub label_names: Vec<String>,
}

impl Encoder {
    /// Fits the encoder: feature statistics and categories from `train_rows` only, label names from
    /// all rows. `train_rows` must be non-empty and in range.
    pub fn fit(table: &Table, train_rows: &[usize]) -> Result<Encoder, DataError> {
        let n = table.num_rows();
        if train_rows.is_empty() {
            return Err(DataError::InvalidParameter(
                "cannot fit an encoder on zero training rows".into(),
            ));
        }
        if let Some(&bad) = train_rows.iter().find(|&&r| r >= n) {
            return Err(DataError::InvalidParameter(format!(
                "training row {bad} out of range for a table of {n} rows"
            )));
        }
        check_column_lengths(table)?;
        // Distinct categories of every categorical column in one pass over the training rows in
        // file order, all columns of a row together: the cells' strings of a row sit close in
        // memory, while a column-by-column walk in shuffled order would miss the cache per cell.
        let mut in_train = vec![false; n];
        for &r in train_rows {
            in_train[r] = true;
        }
        let cat_columns: Vec<&[String]> = table
            .columns
            .iter()
            .filter_map(|c| match c {
                Column::Categorical { values, .. } => Some(values.as_slice()),
                Column::Numeric { .. } => None,
            })
            .collect();
        let mut seen: Vec<FastSet<&str>> = vec![FastSet::default(); cat_columns.len()];
        for (r, _) in in_train.iter().enumerate().filter(|p| *p.1) {
            for (set, values) in seen.iter_mut().zip(&cat_columns) {
                set.insert(values[r].as_str());
            }
        }
        let mut seen = seen.into_iter().map(|set| {
            let mut v: Vec<String> = set.into_iter().map(str::to_owned).collect();
            v.sort_unstable();
            v
        });

        let mut features = Vec::with_capacity(table.columns.len());
        for column in &table.columns {
            features.push(match column {
                Column::Numeric { name, values } => {
                    let count = train_rows.len() as f64;
                    let mean = train_rows.iter().map(|&r| values[r]).sum::<f64>() / count;
                    let var = train_rows
                        .iter()
                        .map(|&r| {
                            let d = values[r] - mean;
                            d * d
                        })
                        .sum::<f64>()
                        / count;
                    FeatureEncoding::Standardize {
                        name: name.clone(),
                        mean,
                        std: var.sqrt(),
                    }
                }
                Column::Categorical { name, .. } => FeatureEncoding::OneHot {
                    name: name.clone(),
                    categories: seen.next().unwrap_or_default(),
                },
            });
        }
        let label_names = match &table.labels {
            Some(labels) => sort_labels(sorted_distinct(labels.iter().map(String::as_str))),
            None => Vec::new(),
        };
        Ok(Encoder {
            features,
            label_names,
        })
    }

    /// Number of output features.
    pub fn output_dim(&self) -> usize {
        self.features.iter().map(FeatureEncoding::width).sum()
    }

    /// Number of classes (`label_names.len()`).
    pub fn num_classes(&self) -> usize {
        self.label_names.len()
    }

    /// Output feature names: the column name for a standardized column, `column=value` for each
    /// one-hot output.
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.output_dim());
        for f in &self.features {
            match f {
                FeatureEncoding::Standardize { name, .. } => out.push(name.clone()),
                FeatureEncoding::OneHot { name, categories } => {
                    out.extend(categories.iter().map(|c| format!("{name}={c}")));
                }
            }
        }
        out
    }

    /// The names of the categorical input columns, for loading a file to transform.
    pub fn categorical_columns(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|f| matches!(f, FeatureEncoding::OneHot { .. }))
            .map(|f| f.name().to_owned())
            .collect()
    }

    /// [`CsvOptions`] that load a file the way the training file was loaded (same categorical
    /// columns), with the given label column (`None` at predict time).
    pub fn csv_options(&self, label: Option<&str>) -> CsvOptions {
        CsvOptions {
            label: label.map(str::to_owned),
            categorical: self.categorical_columns(),
            ..CsvOptions::default()
        }
    }

    /// Encodes every row of `table`. Columns are found by name (extra columns are ignored); a
    /// missing column is [`DataError::UnknownColumn`], a column of the wrong kind
    /// [`DataError::ColumnKind`], columns of unequal length [`DataError::ShapeMismatch`].
    pub fn transform(&self, table: &Table) -> Result<Matrix, DataError> {
        /// One input column, ready to be written row by row.
        enum Plan<'a> {
            Std {
                values: &'a [f64],
                mean: f64,
                s: f64,
            },
            Hot {
                values: &'a [String],
                index: FastMap<&'a str, usize>,
                width: usize,
            },
        }

        check_column_lengths(table)?;
        let rows = table.num_rows();
        let cols = self.output_dim();
        let len = rows.checked_mul(cols).ok_or_else(|| {
            DataError::InvalidParameter(format!("matrix shape {rows}x{cols} overflows"))
        })?;
        let mut plans = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let column = table
                .column(f.name())
                .ok_or_else(|| DataError::UnknownColumn {
                    path: table.source.clone(),
                    column: f.name().to_owned(),
                })?;
            plans.push(match (f, column) {
                (
                    FeatureEncoding::Standardize { mean, std, .. },
                    Column::Numeric { values, .. },
                ) => Plan::Std {
                    values,
                    mean: *mean,
                    s: effective_std(*std),
                },
                (
                    FeatureEncoding::OneHot { categories, .. },
                    Column::Categorical { values, .. },
                ) => {
                    let mut index: FastMap<&str, usize> = FastMap::default();
                    for (i, c) in categories.iter().enumerate() {
                        index.entry(c.as_str()).or_insert(i);
                    }
                    Plan::Hot {
                        values,
                        index,
                        width: categories.len(),
                    }
                }
                (f, column) => {
                    return Err(DataError::ColumnKind {
                        path: table.source.clone(),
                        column: f.name().to_owned(),
                        expected: match f {
                            FeatureEncoding::Standardize { .. } => "numeric",
                            FeatureEncoding::OneHot { .. } => "categorical",
                        },
                        found: column.kind(),
                    });
                }
            });
        }
        // Row-major fill of a zeroed buffer: sequential writes, only the non-zeros.
        let mut data: Vec<f32> = vec![0.0; len];
        for (r, out) in data.chunks_exact_mut(cols.max(1)).take(rows).enumerate() {
            let mut at = 0usize;
            for plan in &plans {
                match plan {
                    Plan::Std { values, mean, s } => {
                        out[at] = ((values[r] - mean) / s) as f32;
                        at += 1;
                    }
                    Plan::Hot {
                        values,
                        index,
                        width,
                    } => {
                        if let Some(&code) = index.get(values[r].as_str()) {
                            out[at + code] = 1.0;
                        }
                        at += width;
                    }
                }
            }
        }
        Matrix::new(rows, cols, data)
    }

    /// Class index of every row's label. [`DataError::NoLabelColumn`] when the table has no labels,
    /// [`DataError::UnseenLabel`] for a label not in `label_names`.
    pub fn encode_labels(&self, table: &Table) -> Result<Vec<u32>, DataError> {
        let labels = table
            .labels
            .as_ref()
            .ok_or_else(|| DataError::NoLabelColumn {
                path: table.source.clone(),
            })?;
        let mut index: HashMap<&str, u32> = HashMap::with_capacity(self.label_names.len());
        for (i, name) in self.label_names.iter().enumerate() {
            let i = u32::try_from(i)
                .map_err(|_| DataError::InvalidParameter("more than u32::MAX classes".into()))?;
            index.entry(name.as_str()).or_insert(i);
        }
        labels
            .iter()
            .enumerate()
            .map(|(r, l)| {
                index
                    .get(l.as_str())
                    .copied()
                    .ok_or_else(|| DataError::UnseenLabel {
                        path: table.source.clone(),
                        line: table.line_of(r),
                        label: crate::error::shorten(l),
                    })
            })
            .collect()
    }

    /// [`Encoder::transform`] and [`Encoder::encode_labels`] together.
    pub fn dataset(&self, table: &Table) -> Result<Dataset, DataError> {
        let x = self.transform(table)?;
        let y = self.encode_labels(table)?;
        Dataset::new(x, y, self.num_classes(), self.feature_names())
    }
}

/// All feature columns and the labels must have the same number of rows.
fn check_column_lengths(table: &Table) -> Result<(), DataError> {
    let rows = table.num_rows();
    for c in &table.columns {
        if c.len() != rows {
            return Err(DataError::ShapeMismatch {
                what: format!(
                    "rows of column `{}` in {}",
                    c.name(),
                    table.source.display()
                ),
                expected: rows,
                found: c.len(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tiny() -> Table {
        Table {
            source: PathBuf::from("tiny.csv"),
            columns: vec![
                Column::Numeric {
                    name: "a".into(),
                    values: vec![1.0, 2.0, 3.0, 4.0, 100.0],
                },
                Column::Categorical {
                    name: "c".into(),
                    values: vec![
                        "red".into(),
                        "blue".into(),
                        "red".into(),
                        "green".into(),
                        "pink".into(),
                    ],
                },
                Column::Numeric {
                    name: "k".into(),
                    values: vec![5.0, 5.0, 5.0, 5.0, 7.0],
                },
            ],
            labels: Some(vec![
                "10".into(),
                "2".into(),
                "10".into(),
                "2".into(),
                "9".into(),
            ]),
            label_name: Some("y".into()),
            dropped: vec![],
            row_lines: vec![],
        }
    }

    #[test]
    fn fit_uses_train_rows_only_with_population_std() {
        let t = tiny();
        let e = Encoder::fit(&t, &[0, 1, 2, 3]).unwrap();
        // a over rows 0..4: mean 2.5, population variance 1.25.
        match &e.features[0] {
            FeatureEncoding::Standardize { name, mean, std } => {
                assert_eq!(name, "a");
                assert!((mean - 2.5).abs() < 1e-12);
                assert!((std - 1.25f64.sqrt()).abs() < 1e-12);
            }
            other => panic!("{other:?}"),
        }
        // Categories sorted, from training rows only ("pink" is only in row 4).
        assert_eq!(
            e.features[1],
            FeatureEncoding::OneHot {
                name: "c".into(),
                categories: vec!["blue".into(), "green".into(), "red".into()]
            }
        );
        assert_eq!(e.output_dim(), 1 + 3 + 1);
        assert_eq!(e.feature_names(), ["a", "c=blue", "c=green", "c=red", "k"]);
        // Labels over all rows, numerically sorted.
        assert_eq!(e.label_names, ["2", "9", "10"]);
        assert_eq!(e.encode_labels(&t).unwrap(), [2, 0, 2, 0, 1]);

        let m = e.transform(&t).unwrap();
        assert_eq!((m.rows, m.cols), (5, 5));
        let s = 1.25f64.sqrt();
        assert!((m.row(0)[0] as f64 - (1.0 - 2.5) / s).abs() < 1e-6);
        assert!((m.row(4)[0] as f64 - (100.0 - 2.5) / s).abs() < 1e-4);
        assert_eq!(&m.row(0)[1..4], &[0.0, 0.0, 1.0]);
        assert_eq!(&m.row(1)[1..4], &[1.0, 0.0, 0.0]);
        // Unseen category: all zeros.
        assert_eq!(&m.row(4)[1..4], &[0.0, 0.0, 0.0]);
        // Constant column (std 0 over training rows) is centred, not divided.
        assert_eq!(m.row(0)[4], 0.0);
        assert_eq!(m.row(4)[4], 2.0);
    }

    #[test]
    fn lexicographic_labels_when_not_all_numeric() {
        assert_eq!(
            sort_labels(vec![">50K".into(), "<=50K".into()]),
            ["<=50K", ">50K"]
        );
        assert_eq!(
            sort_labels(vec!["b".into(), "10".into(), "a".into()]),
            ["10", "a", "b"]
        );
        assert_eq!(
            sort_labels(vec!["1.5".into(), "-3".into(), "1".into()]),
            ["-3", "1", "1.5"]
        );
    }

    #[test]
    fn serde_round_trip() {
        let e = Encoder::fit(&tiny(), &[0, 1, 3]).unwrap();
        let json = serde_json::to_string(&e).unwrap();
        let back: Encoder = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            back.transform(&tiny()).unwrap(),
            e.transform(&tiny()).unwrap()
        );
    }

    #[test]
    fn errors_for_missing_column_wrong_kind_and_labels() {
        let t = tiny();
        let e = Encoder::fit(&t, &[0, 1, 2]).unwrap();
        let mut missing = t.clone();
        missing.columns.remove(1);
        let err = e.transform(&missing).unwrap_err();
        assert!(matches!(&err, DataError::UnknownColumn { column, .. } if column == "c"));
        assert!(err.to_string().contains("tiny.csv"));

        let mut wrong = t.clone();
        wrong.columns[1] = Column::Numeric {
            name: "c".into(),
            values: vec![0.0; 5],
        };
        let err = e.transform(&wrong).unwrap_err();
        assert!(matches!(
            err,
            DataError::ColumnKind {
                expected: "categorical",
                found: "numeric",
                ..
            }
        ));

        let mut ragged = t.clone();
        ragged.columns[2] = Column::Numeric {
            name: "k".into(),
            values: vec![0.0; 4],
        };
        assert!(matches!(
            e.transform(&ragged),
            Err(DataError::ShapeMismatch { .. })
        ));

        let mut unlabeled = t.clone();
        unlabeled.labels = None;
        assert!(matches!(
            e.encode_labels(&unlabeled),
            Err(DataError::NoLabelColumn { .. })
        ));
        // Transform still works without labels (predict time).
        assert_eq!(e.transform(&unlabeled).unwrap().rows, 5);

        let mut unseen = t.clone();
        unseen.labels = Some(vec![
            "2".into(),
            "2".into(),
            "3".into(),
            "2".into(),
            "2".into(),
        ]);
        unseen.row_lines = vec![2, 3, 4, 5, 6];
        let err = e.encode_labels(&unseen).unwrap_err();
        assert!(matches!(&err, DataError::UnseenLabel { line: 4, label, .. } if label == "3"));

        assert!(matches!(
            Encoder::fit(&t, &[]),
            Err(DataError::InvalidParameter(_))
        ));
        assert!(matches!(
            Encoder::fit(&t, &[5]),
            Err(DataError::InvalidParameter(_))
        ));
    }

    #[test]
    fn matrix_and_dataset_checks() {
        assert!(Matrix::new(2, 3, vec![0.0; 6]).is_ok());
        assert!(matches!(
            Matrix::new(2, 3, vec![0.0; 5]),
            Err(DataError::ShapeMismatch {
                expected: 6,
                found: 5,
                ..
            })
        ));
        assert!(Matrix::new(usize::MAX, 2, vec![]).is_err());
        let m = Matrix::new(3, 2, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(m.row(1), &[2.0, 3.0]);
        let d = Dataset::new(m, vec![0, 1, 1], 2, vec!["p".into(), "q".into()]).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.class_counts(), [1, 2]);
        let g = d.gather(&[2, 0]);
        assert_eq!(g.x.data, [4.0, 5.0, 0.0, 1.0]);
        assert_eq!(g.y, [1, 0]);
        assert!(d.try_gather(&[3]).is_err());
        assert!(Dataset::new(Matrix::default(), vec![0], 2, vec![]).is_err());
        let m = Matrix::new(1, 1, vec![0.0]).unwrap();
        assert!(Dataset::new(m, vec![2], 2, vec!["p".into()]).is_err());
    }

    #[test]
    fn csv_options_from_encoder() {
        let e = Encoder::fit(&tiny(), &[0, 1]).unwrap();
        let o = e.csv_options(None);
        assert_eq!(o.categorical, ["c"]);
        assert_eq!(o.label, None);
    }
}
