//! The true parameters of the purchase process the generator samples from.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::GenError;

/// BG/NBD (purchase count, time unit = days) and Gamma-Gamma (order value, shop currency units)
/// parameters, in the notation of Fader, Hardie & Lee (see `reference/clv.md` §2).
///
/// Each customer draws a purchase rate λ ~ Gamma(shape r, rate α) per day and a dropout
/// probability p ~ Beta(a, b) applied after every repeat purchase; a spend rate
/// ν ~ Gamma(shape q, rate γ) and then each order value ~ Gamma(shape p, rate ν).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrueParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

impl Default for TrueParams {
    /// Tuned so that a shop with 730 days of history averages about ten orders per ordering
    /// customer (100k customers -> ~1M orders) with a mean order value of 60.00 in shop currency.
    fn default() -> Self {
        TrueParams {
            r: 0.9,
            alpha: 18.0,
            a: 1.3,
            b: 18.0,
            p: 6.0,
            q: 4.0,
            gamma: 30.0,
        }
    }
}

impl TrueParams {
    /// Every parameter must be finite and positive; `q > 1` so the mean order value exists.
    pub fn validate(&self) -> Result<(), GenError> {
        let named = [
            ("r", self.r),
            ("alpha", self.alpha),
            ("a", self.a),
            ("b", self.b),
            ("p", self.p),
            ("q", self.q),
            ("gamma", self.gamma),
        ];
        for (name, value) in named {
            if !value.is_finite() || value <= 0.0 {
                return Err(GenError::InvalidParam {
                    name,
                    value,
                    reason: "must be a finite number > 0",
                });
            }
        }
        if self.q <= 1.0 {
            return Err(GenError::InvalidParam {
                name: "q",
                value: self.q,
                reason: "must be > 1 (the mean order value p*gamma/(q-1) must exist)",
            });
        }
        Ok(())
    }

    /// Population mean purchase rate per day, r/α.
    pub fn mean_rate_per_day(&self) -> f64 {
        self.r / self.alpha
    }

    /// Population mean dropout probability after a repeat purchase, a/(a+b).
    pub fn mean_dropout(&self) -> f64 {
        self.a / (self.a + self.b)
    }

    /// Population mean order value in shop currency units, pγ/(q−1).
    pub fn mean_order_value(&self) -> f64 {
        self.p * self.gamma / (self.q - 1.0)
    }
}

impl fmt::Display for TrueParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BG/NBD (days): r={} alpha={} a={} b={} | Gamma-Gamma: p={} q={} gamma={} \
             | mean rate {:.4}/day, mean dropout {:.4}, mean order value {:.2}",
            self.r,
            self.alpha,
            self.a,
            self.b,
            self.p,
            self.q,
            self.gamma,
            self.mean_rate_per_day(),
            self.mean_dropout(),
            self.mean_order_value()
        )
    }
}
