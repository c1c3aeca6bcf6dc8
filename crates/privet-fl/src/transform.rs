//! Transforms on updates: client-side before an update leaves the client (clipping, the
//! client's part of DP-FedAvg), and server-side on the aggregate sum (central DP noise, adaptive
//! clipping's bookkeeping, privacy accounting).

use crate::{ClientId, ClientParams, FlError, RoundDetails, UpdateContext, WeightedSum};

/// A transform applied on the client to its delta before it is sent.
pub trait UpdateTransform: Send + Sync + std::fmt::Debug {
    /// Transforms `delta` in place. It may grow: a transform may append coordinates that the
    /// coordinator's [`AggregateTransform`] declares ([`AggregateTransform::extra_coordinates`])
    /// and strips again, e.g. adaptive clipping's "my norm was below the bound" indicator. It
    /// reads the round's published parameters from `ctx` (checking them: they come from the
    /// coordinator) and may leave local parameters there for the client's aggregation protocol.
    fn apply(&self, ctx: &mut UpdateContext<'_>, delta: &mut Vec<f32>) -> Result<(), FlError>;

    /// Whether the update must count with weight 1 instead of its example count (DP-FedAvg
    /// bounds every client's contribution, so the weight cannot depend on the client's data).
    fn unit_weight(&self) -> bool {
        false
    }
}

/// Whether a round may start, as an [`AggregateTransform`] judges it (e.g. a privacy budget).
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    /// Go ahead.
    Admit,
    /// Do not run this round or any later one: the job stops
    /// ([`JobStatus::Stopped`](crate::engine::JobStatus::Stopped)) for this reason.
    Stop(String),
}

/// A transform applied by the coordinator to the weighted sum before a
/// [`Requirement::Sum`](crate::Requirement::Sum) strategy aggregates it.
///
/// Besides [`apply`](Self::apply), every method has a default that keeps the engine's plain
/// behaviour, so a simple transform implements `apply` only.
pub trait AggregateTransform: Send + std::fmt::Debug {
    /// Transforms `sum` in place. It receives `model_len + extra_coordinates()` entries and must
    /// leave exactly `model_len`.
    fn apply(&mut self, round: u32, sum: &mut WeightedSum) -> Result<(), FlError>;

    /// Coordinates that clients append to their delta for this transform (see
    /// [`UpdateTransform::apply`]). The engine then expects updates (and secure-aggregation
    /// vectors) of `model_len + extra_coordinates()` entries.
    fn extra_coordinates(&self) -> usize {
        0
    }

    /// Whether every contribution counts with weight 1 in the sum, whatever example count the
    /// client reports (plain aggregation enforces it on the coordinator; under secure
    /// aggregation the clients' [`UpdateTransform::unit_weight`] does).
    fn unit_weights(&self) -> bool {
        false
    }

    /// Called by [`Coordinator::start_round`](crate::engine::Coordinator::start_round) once
    /// `selected` of `available` clients have been sampled for `round`, before anything is sent.
    /// [`Admission::Stop`] ends the job without running the round (its number is not used).
    /// What the transform puts in `params` goes to every client of the round with its training
    /// request.
    fn admit_round(
        &mut self,
        _round: u32,
        _selected: usize,
        _available: usize,
        _params: &mut ClientParams,
    ) -> Result<Admission, FlError> {
        Ok(Admission::Admit)
    }

    /// Called by [`Coordinator::start_round`](crate::engine::Coordinator::start_round) instead of
    /// [`admit_round`](Self::admit_round) when a Poisson draw gave `selected` (possibly 0) of
    /// `available` clients, fewer than the round needs: the round is skipped (its number is
    /// used, nothing is sent, it counts as a failed round). A privacy accountant charges the
    /// draw here. [`Admission::Stop`] ends the job instead (the number is not used).
    fn skip_round(
        &mut self,
        _round: u32,
        _selected: usize,
        _available: usize,
    ) -> Result<Admission, FlError> {
        Ok(Admission::Admit)
    }

    /// Reports what the transform did in `round` (called when the round ends, completed or
    /// failed), e.g. the privacy it spent.
    fn round_details(&mut self, _round: u32, _details: &mut RoundDetails) -> Result<(), FlError> {
        Ok(())
    }

    /// The state to persist with a [`Checkpoint`](crate::engine::Checkpoint) (e.g. a privacy
    /// ledger as versioned JSON; the transform owns the format); `None` for a stateless
    /// transform.
    fn state(&self) -> Option<String> {
        None
    }

    /// Restores what [`state`](Self::state) returned. The default refuses any state.
    fn restore_state(&mut self, _state: &str) -> Result<(), FlError> {
        Err(FlError::InvalidConfig(
            "this aggregate transform keeps no state to restore".into(),
        ))
    }
}

/// Scales a delta so that its L2 norm is at most `max_norm` (`delta * min(1, C / ||delta||)`).
///
/// The bound holds after rounding to `f32`: the norm of the result, computed in `f64`, never
/// exceeds `max_norm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipL2 {
    /// Clipping bound `C > 0`.
    pub max_norm: f32,
}

/// L2 norm of `v`, accumulated in `f64`.
pub fn l2_norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

impl ClipL2 {
    /// Clips `delta` in place; `client` names the culprit of a non-finite delta.
    pub fn clip(&self, client: ClientId, delta: &mut [f32]) -> Result<(), FlError> {
        if !(self.max_norm.is_finite() && self.max_norm > 0.0) {
            return Err(FlError::InvalidConfig(format!(
                "clipping bound must be finite and > 0, got {}",
                self.max_norm
            )));
        }
        if delta.iter().any(|x| !x.is_finite()) {
            return Err(FlError::NonFinite { client });
        }
        let bound = f64::from(self.max_norm);
        let norm = l2_norm(delta);
        if norm <= bound {
            return Ok(());
        }
        scale(delta, bound / norm);
        // Rounding to f32 can leave the norm a hair above the bound: shrink by a few ulps until
        // it holds (one step in practice).
        for _ in 0..16 {
            if l2_norm(delta) <= bound {
                break;
            }
            scale(delta, 1.0 - 1e-6);
        }
        Ok(())
    }
}

impl UpdateTransform for ClipL2 {
    fn apply(&self, ctx: &mut UpdateContext<'_>, delta: &mut Vec<f32>) -> Result<(), FlError> {
        self.clip(ctx.client, delta)
    }
}

fn scale(v: &mut [f32], factor: f64) {
    for x in v {
        *x = (f64::from(*x) * factor) as f32;
    }
}
