//! Optimizers with PyTorch's update rules, on flat `f32` parameter vectors (one implementation
//! for the candle autograd path and the fused linear kernel).

use crate::error::MlError;

/// An optimizer and its hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerConfig {
    /// SGD with optional (heavy-ball) momentum: `b = m b + g; w -= lr b`, as `torch.optim.SGD`.
    Sgd { lr: f32, momentum: f32 },
    /// Adam (Kingma and Ba 2015) with bias correction, as `torch.optim.Adam`.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

impl OptimizerConfig {
    /// Plain SGD.
    pub fn sgd(lr: f32) -> Self {
        OptimizerConfig::Sgd { lr, momentum: 0.0 }
    }

    /// Adam with PyTorch's defaults for the betas and epsilon.
    pub fn adam(lr: f32) -> Self {
        OptimizerConfig::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adam { lr, .. } => *lr,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), MlError> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(MlError::InvalidConfig(format!(
                "learning rate must be > 0, got {lr}"
            )));
        }
        match *self {
            OptimizerConfig::Sgd { momentum, .. } if !(0.0..1.0).contains(&momentum) => Err(
                MlError::InvalidConfig(format!("momentum must be in [0, 1), got {momentum}")),
            ),
            OptimizerConfig::Adam {
                beta1, beta2, eps, ..
            } if !(0.0..1.0).contains(&beta1)
                || !(0.0..1.0).contains(&beta2)
                || eps.is_nan()
                || eps <= 0.0 =>
            {
                Err(MlError::InvalidConfig(
                    "Adam needs beta1 and beta2 in [0, 1) and eps > 0".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Optimizer state for one training run over a flat parameter vector.
#[derive(Debug)]
pub(crate) struct Optimizer {
    cfg: OptimizerConfig,
    /// Momentum buffer (SGD) or first moment (Adam); empty until first needed.
    m: Vec<f32>,
    /// Second moment (Adam).
    v: Vec<f32>,
    t: i32,
}

impl Optimizer {
    pub(crate) fn new(cfg: OptimizerConfig) -> Result<Self, MlError> {
        cfg.validate()?;
        Ok(Optimizer {
            cfg,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        })
    }

    /// One update of `w` with gradient `g` (same length).
    pub(crate) fn step(&mut self, w: &mut [f32], g: &[f32]) {
        debug_assert_eq!(w.len(), g.len());
        self.t += 1;
        match self.cfg {
            OptimizerConfig::Sgd { lr, momentum } => {
                if momentum > 0.0 {
                    if self.m.is_empty() {
                        // PyTorch: the first buffer is the gradient itself.
                        self.m = g.to_vec();
                    } else {
                        for (b, &gi) in self.m.iter_mut().zip(g) {
                            *b = momentum * *b + gi;
                        }
                    }
                    for (wi, &b) in w.iter_mut().zip(&self.m) {
                        *wi -= lr * b;
                    }
                } else {
                    for (wi, &gi) in w.iter_mut().zip(g) {
                        *wi -= lr * gi;
                    }
                }
            }
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                if self.m.is_empty() {
                    self.m = vec![0.0; w.len()];
                    self.v = vec![0.0; w.len()];
                }
                let bc1 = 1.0 - beta1.powi(self.t);
                let bc2 = 1.0 - beta2.powi(self.t);
                for i in 0..w.len() {
                    let gi = g[i];
                    self.m[i] = beta1 * self.m[i] + (1.0 - beta1) * gi;
                    self.v[i] = beta2 * self.v[i] + (1.0 - beta2) * gi * gi;
                    let m_hat = self.m[i] / bc1;
                    let v_hat = self.v[i] / bc2;
                    w[i] -= lr * m_hat / (v_hat.sqrt() + eps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_momentum_matches_pytorch_by_hand() {
        // torch.optim.SGD([w], lr=0.1, momentum=0.9), w0 = 1, grads 1 then 2:
        // b1 = 1 -> w = 0.9; b2 = 0.9 * 1 + 2 = 2.9 -> w = 0.9 - 0.29 = 0.61
        let mut opt = Optimizer::new(OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.9,
        })
        .unwrap();
        let mut w = [1.0f32];
        opt.step(&mut w, &[1.0]);
        assert!((w[0] - 0.9).abs() < 1e-6);
        opt.step(&mut w, &[2.0]);
        assert!((w[0] - 0.61).abs() < 1e-6);
    }

    #[test]
    fn adam_first_steps_by_hand() {
        // Adam's first step moves every coordinate by lr * sign(g) (up to eps).
        let mut opt = Optimizer::new(OptimizerConfig::adam(0.01)).unwrap();
        let mut w = [0.0f32, 0.0];
        opt.step(&mut w, &[3.0, -0.5]);
        assert!(
            (w[0] + 0.01).abs() < 1e-6 && (w[1] - 0.01).abs() < 1e-6,
            "{w:?}"
        );
        // Second step, g = 1 on the first coordinate:
        // m = 0.9*0.3 + 0.1*1 = 0.37, v = 0.999*0.009 + 0.001*1 = 0.009991
        // m_hat = 0.37/0.19 = 1.947368, v_hat = 0.009991/0.001999 = 4.997999 -> step 0.871083
        opt.step(&mut w, &[1.0, 0.0]);
        assert!((w[0] - (-0.01 - 0.01 * 0.871_083)).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn invalid_hyperparameters_are_refused() {
        for cfg in [
            OptimizerConfig::sgd(0.0),
            OptimizerConfig::sgd(f32::NAN),
            OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 1.0,
            },
            OptimizerConfig::Adam {
                lr: 0.1,
                beta1: 1.0,
                beta2: 0.9,
                eps: 1e-8,
            },
            OptimizerConfig::Adam {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.9,
                eps: 0.0,
            },
        ] {
            assert!(Optimizer::new(cfg.clone()).is_err(), "{cfg:?}");
        }
    }
}
