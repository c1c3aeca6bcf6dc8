//! Per-column summaries of a data owner's rows, and the [`Encoder`] fitted from the summaries of
//! many owners: how a federation agrees on one feature encoding without pooling rows.
//!
//! A summary holds, per numeric column, the count, mean and sum of squared deviations (`m2`), and
//! per categorical column the distinct categories; plus the distinct labels. Summaries merge with
//! Chan, Golub and LeVeque's parallel update (`mean = mean_a + d n_b / n`,
//! `m2 = m2_a + m2_b + d^2 n_a n_b / n`, `d = mean_b - mean_a`), so the merged encoder equals
//! [`Encoder::fit`] on the pooled rows up to floating-point rounding. A summary reveals these
//! statistics about its owner (not rows); under secure aggregation they could be summed instead.

use serde::{Deserialize, Serialize};

use crate::encode::{Encoder, FeatureEncoding, sort_labels};
use crate::error::DataError;
use crate::table::{Column, Table};

/// Statistics of one column of one owner's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ColumnSummary {
    /// A numeric column.
    Numeric {
        /// Header name.
        name: String,
        /// Rows.
        count: u64,
        /// Mean.
        mean: f64,
        /// Sum of squared deviations from the mean.
        m2: f64,
    },
    /// A categorical column.
    Categorical {
        /// Header name.
        name: String,
        /// Distinct categories, sorted.
        categories: Vec<String>,
    },
}

impl ColumnSummary {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            ColumnSummary::Numeric { name, .. } | ColumnSummary::Categorical { name, .. } => name,
        }
    }
}

/// What one data owner reveals to fit a shared encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Rows summarized.
    pub rows: u64,
    /// Feature columns in table order.
    pub columns: Vec<ColumnSummary>,
    /// Distinct labels, sorted.
    pub labels: Vec<String>,
}

impl DataSummary {
    /// Summarizes every row of `table`.
    pub fn of_table(table: &Table) -> DataSummary {
        let columns = table
            .columns
            .iter()
            .map(|column| match column {
                Column::Numeric { name, values } => {
                    let count = values.len() as u64;
                    let mean = if values.is_empty() {
                        0.0
                    } else {
                        values.iter().sum::<f64>() / values.len() as f64
                    };
                    let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
                    ColumnSummary::Numeric {
                        name: name.clone(),
                        count,
                        mean,
                        m2,
                    }
                }
                Column::Categorical { name, values } => ColumnSummary::Categorical {
                    name: name.clone(),
                    categories: distinct_sorted(values.iter().map(String::as_str)),
                },
            })
            .collect();
        let labels = table
            .labels
            .as_ref()
            .map(|l| distinct_sorted(l.iter().map(String::as_str)))
            .unwrap_or_default();
        DataSummary {
            rows: table.num_rows() as u64,
            columns,
            labels,
        }
    }
}

fn distinct_sorted<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = values.collect();
    set.into_iter().map(str::to_owned).collect()
}

impl Encoder {
    /// Fits an encoder from the summaries of several owners: the encoder [`Encoder::fit`] would
    /// give on all their rows pooled (up to rounding). Every summary must have the same columns
    /// in the same order with the same kinds; `sources` names each summary's owner in errors.
    pub fn from_summaries(summaries: &[(String, DataSummary)]) -> Result<Encoder, DataError> {
        let Some((first_name, first)) = summaries.first() else {
            return Err(DataError::InvalidParameter(
                "cannot fit an encoder from zero summaries".into(),
            ));
        };
        let mut merged = first.columns.clone();
        let mut labels: std::collections::BTreeSet<String> = first.labels.iter().cloned().collect();
        for (owner, summary) in &summaries[1..] {
            if summary.columns.len() != merged.len() {
                return Err(DataError::InvalidParameter(format!(
                    "{owner} has {} feature columns but {first_name} has {}",
                    summary.columns.len(),
                    merged.len()
                )));
            }
            for (acc, col) in merged.iter_mut().zip(&summary.columns) {
                merge_column(acc, col).map_err(|why| {
                    DataError::InvalidParameter(format!(
                        "{owner}'s column {:?} does not match {first_name}'s: {why}",
                        col.name()
                    ))
                })?;
            }
            labels.extend(summary.labels.iter().cloned());
        }
        let mut features = Vec::with_capacity(merged.len());
        for column in merged {
            features.push(match column {
                ColumnSummary::Numeric {
                    name,
                    count,
                    mean,
                    m2,
                } => {
                    if count == 0 {
                        return Err(DataError::InvalidParameter(format!(
                            "column {name:?} has no rows in any summary"
                        )));
                    }
                    FeatureEncoding::Standardize {
                        name,
                        mean,
                        std: (m2 / count as f64).sqrt(),
                    }
                }
                ColumnSummary::Categorical { name, categories } => {
                    FeatureEncoding::OneHot { name, categories }
                }
            });
        }
        Ok(Encoder {
            features,
            label_names: sort_labels(labels.into_iter().collect()),
        })
    }
}

fn merge_column(acc: &mut ColumnSummary, other: &ColumnSummary) -> Result<(), String> {
    match (acc, other) {
        (
            ColumnSummary::Numeric {
                name,
                count,
                mean,
                m2,
            },
            ColumnSummary::Numeric {
                name: other_name,
                count: n_b,
                mean: mean_b,
                m2: m2_b,
            },
        ) => {
            if name != other_name {
                return Err(format!("named {other_name:?}, expected {name:?}"));
            }
            if !mean_b.is_finite() || !m2_b.is_finite() || *m2_b < 0.0 {
                return Err("statistics are not finite".into());
            }
            if *n_b == 0 {
                return Ok(());
            }
            let n_a = *count as f64;
            let n = n_a + *n_b as f64;
            let d = mean_b - *mean;
            *mean += d * *n_b as f64 / n;
            *m2 += m2_b + d * d * n_a * *n_b as f64 / n;
            *count += n_b;
            Ok(())
        }
        (
            ColumnSummary::Categorical { name, categories },
            ColumnSummary::Categorical {
                name: other_name,
                categories: more,
            },
        ) => {
            if name != other_name {
                return Err(format!("named {other_name:?}, expected {name:?}"));
            }
            let set: std::collections::BTreeSet<String> =
                categories.drain(..).chain(more.iter().cloned()).collect();
            *categories = set.into_iter().collect();
            Ok(())
        }
        _ => Err("numeric in one summary, categorical in the other".into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::table::{CsvOptions, parse_csv};

    #[test]
    fn merged_summaries_equal_the_pooled_fit() {
        let csv = "a,b,color,label\n1,10,red,x\n2,11,blue,y\n3,9,red,x\n4,30,green,z\n5,1,red,y\n";
        let opts = CsvOptions {
            label: Some("label".into()),
            categorical: vec!["color".into()],
            ..CsvOptions::default()
        };
        let table = parse_csv("t.csv", csv.as_bytes(), &opts).unwrap();
        let pooled = Encoder::fit(&table, &[0, 1, 2, 3, 4]).unwrap();
        let parts = [
            "a,b,color,label\n1,10,red,x\n2,11,blue,y\n",
            "a,b,color,label\n3,9,red,x\n4,30,green,z\n5,1,red,y\n",
        ];
        let summaries: Vec<(String, DataSummary)> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let t = parse_csv("p.csv", p.as_bytes(), &opts).unwrap();
                (format!("owner{i}"), DataSummary::of_table(&t))
            })
            .collect();
        let merged = Encoder::from_summaries(&summaries).unwrap();
        assert_eq!(merged.label_names, pooled.label_names);
        for (m, p) in merged.features.iter().zip(&pooled.features) {
            match (m, p) {
                (
                    FeatureEncoding::Standardize { mean, std, .. },
                    FeatureEncoding::Standardize {
                        mean: pm, std: ps, ..
                    },
                ) => {
                    assert!((mean - pm).abs() < 1e-12 && (std - ps).abs() < 1e-12);
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn mismatched_columns_are_refused_by_owner() {
        let a = DataSummary {
            rows: 1,
            columns: vec![ColumnSummary::Numeric {
                name: "age".into(),
                count: 1,
                mean: 3.0,
                m2: 0.0,
            }],
            labels: vec!["x".into()],
        };
        let mut b = a.clone();
        b.columns = vec![ColumnSummary::Categorical {
            name: "age".into(),
            categories: vec!["old".into()],
        }];
        let err = Encoder::from_summaries(&[("h1".into(), a), ("h2".into(), b)]).unwrap_err();
        assert!(err.to_string().contains("h2"), "{err}");
    }
}
