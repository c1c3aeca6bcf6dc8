//! A privacy budget and a tracker of what has been spent against it.
//!
//! [`BudgetTracker`] records composed [`SampledGaussian`] events, answers the epsilon spent at any
//! delta with either accountant, and refuses an event that would overspend
//! ([`BudgetTracker::try_record`]). It persists as a versioned [`BudgetLedger`] (JSON), the wire
//! type, kept apart from the tracker so the tracker's invariants are re-checked on every load:
//! parameters are validated, the version and accountant must be known, and the text is
//! size-limited.

use serde::{Deserialize, Serialize};

use crate::calibrate::AccountantKind;
use crate::error::{DpError, Result};
use crate::params::{Delta, Epsilon, SampledGaussian, Sampling};
use crate::pld::{PldAccountant, PldConfig};
use crate::rdp::{Conversion, RdpAccountant};

/// A total (epsilon, delta) that a training run may spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrivacyBudget {
    epsilon: Epsilon,
    delta: Delta,
}

impl PrivacyBudget {
    /// A budget of `epsilon > 0` at `delta` in `(0, 1)`.
    pub fn new(epsilon: f64, delta: f64) -> Result<Self> {
        Ok(Self {
            epsilon: Epsilon::positive(epsilon)?,
            delta: Delta::new(delta)?,
        })
    }

    /// The budget's epsilon.
    pub fn epsilon(&self) -> f64 {
        self.epsilon.get()
    }

    /// The budget's delta.
    pub fn delta(&self) -> f64 {
        self.delta.get()
    }
}

/// Records composed events against a [`PrivacyBudget`].
///
/// ```
/// use privet_dp::{PrivacyBudget, SampledGaussian};
/// use privet_dp::budget::BudgetTracker;
/// use privet_dp::calibrate::AccountantKind;
///
/// let mut t = BudgetTracker::new(PrivacyBudget::new(1.0, 1e-5)?, AccountantKind::Rdp);
/// let round = SampledGaussian::poisson(0.01, 1.1, 100)?;
/// while !t.would_exceed(&round)? {
///     t.try_record(&round)?;
/// }
/// assert!(t.spent_epsilon()? <= 1.0);
/// let saved = t.to_json();
/// assert_eq!(BudgetTracker::from_json(&saved)?.spent_epsilon()?, t.spent_epsilon()?);
/// # Ok::<(), privet_dp::DpError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BudgetTracker {
    budget: PrivacyBudget,
    kind: AccountantKind,
    pld: PldConfig,
    events: Vec<SampledGaussian>,
}

impl BudgetTracker {
    /// An empty tracker for `budget`, judged by `kind`.
    pub fn new(budget: PrivacyBudget, kind: AccountantKind) -> Self {
        Self {
            budget,
            kind,
            pld: PldConfig::default(),
            events: Vec::new(),
        }
    }

    /// Uses `config` for the PLD accountant.
    pub fn with_pld_config(mut self, config: PldConfig) -> Result<Self> {
        config.validate()?;
        self.pld = config;
        Ok(self)
    }

    /// The budget.
    pub fn budget(&self) -> PrivacyBudget {
        self.budget
    }

    /// The accountant that judges spending.
    pub fn accountant(&self) -> AccountantKind {
        self.kind
    }

    /// The recorded events, oldest first.
    pub fn events(&self) -> &[SampledGaussian] {
        &self.events
    }

    fn epsilon_of(&self, events: &[SampledGaussian], delta: Delta) -> Result<f64> {
        if events.is_empty() {
            return Ok(0.0);
        }
        if let Some(first) = events.first()
            && let Some(other) = events.iter().find(|e| e.sampling() != first.sampling())
        {
            return Err(DpError::MixedNeighbouringRelations {
                existing: first.sampling().name(),
                new: other.sampling().name(),
            });
        }
        let kind = if events.iter().any(|e| e.sampling() == Sampling::FixedSize) {
            // The PLD accountant has no fixed-size analysis; RDP is the only valid one.
            AccountantKind::Rdp
        } else {
            self.kind
        };
        match kind {
            AccountantKind::Rdp => {
                let mut acc = RdpAccountant::new();
                for e in events {
                    acc.compose(e)?;
                }
                Ok(acc.epsilon(delta, Conversion::Improved).epsilon)
            }
            AccountantKind::Pld => {
                let mut acc = PldAccountant::new(self.pld)?;
                for e in events {
                    acc.compose(e)?;
                }
                acc.epsilon(delta)
            }
        }
    }

    /// The epsilon spent so far at the budget's delta.
    pub fn spent_epsilon(&self) -> Result<f64> {
        self.epsilon_of(&self.events, self.budget.delta)
    }

    /// The epsilon spent so far at another `delta`.
    pub fn spent_epsilon_at(&self, delta: Delta) -> Result<f64> {
        self.epsilon_of(&self.events, delta)
    }

    /// The epsilon that would be spent after also recording `event`.
    pub fn epsilon_after(&self, event: &SampledGaussian) -> Result<f64> {
        let mut events = self.events.clone();
        events.push(*event);
        self.epsilon_of(&events, self.budget.delta)
    }

    /// Whether recording `event` would spend more than the budget's epsilon.
    pub fn would_exceed(&self, event: &SampledGaussian) -> Result<bool> {
        Ok(self.epsilon_after(event)? > self.budget.epsilon())
    }

    /// Records `event` unless that would exceed the budget ([`DpError::BudgetExceeded`]).
    pub fn try_record(&mut self, event: &SampledGaussian) -> Result<()> {
        let after = self.epsilon_after(event)?;
        if after > self.budget.epsilon() {
            return Err(DpError::BudgetExceeded {
                would_be: after,
                budget: self.budget.epsilon(),
                delta: self.budget.delta(),
            });
        }
        self.push(event);
        Ok(())
    }

    /// Records `event` whatever it costs (for steps already taken); mixing sampling schemes is
    /// still refused.
    pub fn record(&mut self, event: &SampledGaussian) -> Result<()> {
        if let Some(first) = self.events.first()
            && first.sampling() != event.sampling()
        {
            return Err(DpError::MixedNeighbouringRelations {
                existing: first.sampling().name(),
                new: event.sampling().name(),
            });
        }
        self.push(event);
        Ok(())
    }

    fn push(&mut self, event: &SampledGaussian) {
        if let Some(last) = self.events.last_mut()
            && last.same_mechanism(event)
            && let Ok(merged) = last.with_steps(last.steps().saturating_add(event.steps()))
        {
            *last = merged;
            return;
        }
        self.events.push(*event);
    }

    /// The wire form.
    pub fn to_ledger(&self) -> BudgetLedger {
        BudgetLedger {
            version: BudgetLedger::VERSION,
            accountant: self.kind.name().to_string(),
            epsilon: self.budget.epsilon(),
            delta: self.budget.delta(),
            value_discretization_interval: self.pld.value_discretization_interval,
            events: self
                .events
                .iter()
                .map(|e| LedgerEvent {
                    sampling_probability: e.q(),
                    noise_multiplier: e.sigma(),
                    steps: e.steps(),
                    sampling: e.sampling().name().to_string(),
                })
                .collect(),
        }
    }

    /// A tracker from its wire form, every field re-validated.
    pub fn from_ledger(ledger: &BudgetLedger) -> Result<Self> {
        if ledger.version != BudgetLedger::VERSION {
            return Err(DpError::BadLedger(format!(
                "version {} (this build reads version {})",
                ledger.version,
                BudgetLedger::VERSION
            )));
        }
        let kind = match ledger.accountant.as_str() {
            "rdp" => AccountantKind::Rdp,
            "pld" => AccountantKind::Pld,
            other => return Err(DpError::BadLedger(format!("unknown accountant {other:?}"))),
        };
        let budget = PrivacyBudget::new(ledger.epsilon, ledger.delta)?;
        let pld = PldConfig {
            value_discretization_interval: ledger.value_discretization_interval,
            ..PldConfig::default()
        };
        let mut t = Self::new(budget, kind).with_pld_config(pld)?;
        for e in &ledger.events {
            let sampling = match e.sampling.as_str() {
                "poisson" => Sampling::Poisson,
                "fixed" => Sampling::FixedSize,
                other => return Err(DpError::BadLedger(format!("unknown sampling {other:?}"))),
            };
            let ev = SampledGaussian::new(
                e.sampling_probability,
                e.noise_multiplier,
                e.steps,
                sampling,
            )?;
            t.record(&ev)?;
        }
        Ok(t)
    }

    /// The ledger as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail (NaN would become null, which
        // from_json refuses).
        serde_json::to_string_pretty(&self.to_ledger()).unwrap_or_default()
    }

    /// A tracker from JSON written by [`BudgetTracker::to_json`], at most
    /// [`BudgetLedger::MAX_BYTES`] long.
    pub fn from_json(text: &str) -> Result<Self> {
        if text.len() > BudgetLedger::MAX_BYTES {
            return Err(DpError::BadLedger(format!(
                "{} bytes, more than the limit of {}",
                text.len(),
                BudgetLedger::MAX_BYTES
            )));
        }
        let ledger: BudgetLedger =
            serde_json::from_str(text).map_err(|e| DpError::BadLedger(e.to_string()))?;
        Self::from_ledger(&ledger)
    }
}

/// The persisted form of a [`BudgetTracker`] (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLedger {
    /// Format version; [`BudgetLedger::VERSION`].
    pub version: u32,
    /// `"rdp"` or `"pld"`.
    pub accountant: String,
    /// The budget's epsilon.
    pub epsilon: f64,
    /// The budget's delta.
    pub delta: f64,
    /// The PLD grid step.
    pub value_discretization_interval: f64,
    /// The recorded events, oldest first.
    pub events: Vec<LedgerEvent>,
}

impl BudgetLedger {
    /// The version this build writes and reads.
    pub const VERSION: u32 = 1;
    /// The longest ledger text accepted (1 MiB).
    pub const MAX_BYTES: usize = 1 << 20;
}

/// One recorded event in a [`BudgetLedger`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEvent {
    /// The sampling probability `q`.
    pub sampling_probability: f64,
    /// The noise multiplier `sigma`.
    pub noise_multiplier: f64,
    /// The number of steps.
    pub steps: u64,
    /// `"poisson"` or `"fixed"`.
    pub sampling: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tracker_refuses_overspending_and_round_trips() {
        for kind in [AccountantKind::Rdp, AccountantKind::Pld] {
            let mut t = BudgetTracker::new(PrivacyBudget::new(1.0, 1e-5).unwrap(), kind);
            let step = SampledGaussian::poisson(0.02, 2.0, 50).unwrap();
            let mut rounds = 0;
            while !t.would_exceed(&step).unwrap() {
                t.try_record(&step).unwrap();
                rounds += 1;
            }
            assert!(rounds >= 1);
            assert!(t.spent_epsilon().unwrap() <= 1.0);
            assert!(matches!(
                t.try_record(&step),
                Err(DpError::BudgetExceeded { .. })
            ));
            // Merged into one event.
            assert_eq!(t.events().len(), 1);
            assert_eq!(t.events()[0].steps(), 50 * rounds);
            let back = BudgetTracker::from_json(&t.to_json()).unwrap();
            assert_eq!(back.to_ledger(), t.to_ledger());
            assert_eq!(back.spent_epsilon().unwrap(), t.spent_epsilon().unwrap());
        }
    }

    #[test]
    fn bad_ledgers_are_refused() {
        let t = BudgetTracker::new(PrivacyBudget::new(1.0, 1e-5).unwrap(), AccountantKind::Rdp);
        let good = t.to_json();
        for (from, to) in [
            ("\"version\": 1", "\"version\": 2"),
            ("\"rdp\"", "\"zcdp\""),
            ("\"epsilon\": 1.0", "\"epsilon\": -1.0"),
            ("\"delta\": 0.00001", "\"delta\": 2.0"),
            ("\"events\": []", "\"events\": [], \"extra\": 1"),
            (
                "\"events\": []",
                "\"events\": [{\"sampling_probability\": 1.5, \"noise_multiplier\": 1.0, \
                 \"steps\": 1, \"sampling\": \"poisson\"}]",
            ),
        ] {
            let bad = good.replace(from, to);
            assert_ne!(bad, good, "pattern {from} not found in {good}");
            assert!(BudgetTracker::from_json(&bad).is_err(), "accepted {bad}");
        }
        assert!(BudgetTracker::from_json(&" ".repeat(BudgetLedger::MAX_BYTES + 1)).is_err());
    }
}
