//! Classification metrics: cross-entropy loss, accuracy and ROC AUC.

use crate::error::{MlError, shape_err};

/// Metrics of a model on a labelled data set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EvalMetrics {
    /// Mean cross-entropy (natural log), probabilities clamped to [1e-7, 1 - 1e-7].
    pub loss: f64,
    /// Fraction of rows whose most probable class is the label.
    pub accuracy: f64,
    /// Area under the ROC curve for binary problems (ties count one half), else `None`.
    pub auc: Option<f64>,
    /// Rows evaluated.
    pub count: usize,
}

/// Computes the metrics from row-major class probabilities `[n, num_classes]`.
pub fn evaluate_scores(
    probs: &[f32],
    y: &[u32],
    num_classes: usize,
) -> Result<EvalMetrics, MlError> {
    if num_classes == 0 || probs.len() != y.len() * num_classes {
        return Err(shape_err(format!(
            "{} probabilities for {} rows of {num_classes} classes",
            probs.len(),
            y.len()
        )));
    }
    if let Some(&c) = y.iter().find(|&&c| c as usize >= num_classes) {
        return Err(shape_err(format!(
            "label {c} is out of range ({num_classes} classes)"
        )));
    }
    if y.is_empty() {
        return Ok(EvalMetrics::default());
    }
    let mut loss = 0f64;
    let mut correct = 0usize;
    for (row, &label) in probs.chunks_exact(num_classes).zip(y) {
        let p = f64::from(row[label as usize]).clamp(1e-7, 1.0 - 1e-7);
        loss -= p.ln();
        // argmax, first maximum wins
        let mut best = 0;
        for (c, &q) in row.iter().enumerate() {
            if q > row[best] {
                best = c;
            }
        }
        correct += usize::from(best == label as usize);
    }
    let n = y.len() as f64;
    let auc = if num_classes == 2 {
        let scores: Vec<f32> = probs.chunks_exact(2).map(|r| r[1]).collect();
        roc_auc(&scores, y)
    } else {
        None
    };
    Ok(EvalMetrics {
        loss: loss / n,
        accuracy: correct as f64 / n,
        auc,
        count: y.len(),
    })
}

/// ROC AUC of scores for labels in {0, 1} by the Mann-Whitney rank statistic (ties get their mean
/// rank). `None` when only one class is present or a score is NaN.
pub fn roc_auc(scores: &[f32], labels: &[u32]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let pos = labels.iter().filter(|&&l| l == 1).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        // ranks i+1 ..= j+1 share their mean
        let mean_rank = (i + j + 2) as f64 / 2.0;
        rank_sum_pos += mean_rank * idx[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64;
        i = j + 1;
    }
    let (p, q) = (pos as f64, neg as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_auc(scores: &[f32], labels: &[u32], expected: Option<f64>) {
        let got = roc_auc(scores, labels);
        match (got, expected) {
            (Some(g), Some(e)) => assert!((g - e).abs() < 1e-12, "auc {g} != {e}"),
            (g, e) => assert_eq!(g, e),
        }
    }

    #[test]
    fn auc_matches_hand_computed_values() {
        check_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1], Some(0.75)); // sklearn's doc example
        check_auc(&[0.1, 0.2, 0.3], &[0, 0, 1], Some(1.0));
        check_auc(&[0.3, 0.2, 0.1], &[0, 0, 1], Some(0.0));
        check_auc(&[0.5, 0.5, 0.5, 0.5], &[0, 1, 0, 1], Some(0.5));
        check_auc(&[0.5, 0.6], &[1, 1], None);
        check_auc(&[f32::NAN, 0.6], &[0, 1], None);
    }

    #[test]
    fn accuracy_and_loss_by_hand() {
        // rows: p(class1) = 0.9 (label 1), 0.2 (label 0), 0.6 (label 0) -> 2 of 3 right
        let probs = [0.1, 0.9, 0.8, 0.2, 0.4, 0.6];
        let m = evaluate_scores(&probs, &[1, 0, 0], 2).unwrap();
        assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
        let expected_loss =
            -((0.9f32 as f64).ln() + (0.8f32 as f64).ln() + (0.4f32 as f64).ln()) / 3.0;
        assert!((m.loss - expected_loss).abs() < 1e-9);
        assert_eq!(m.count, 3);
        assert!(evaluate_scores(&probs, &[1, 0, 2], 2).is_err());
        assert!(evaluate_scores(&probs[..5], &[1, 0, 0], 2).is_err());
    }
}
