//! The buy-till-you-die process of one customer: BG/NBD purchase times and Gamma-Gamma values.

use rand::Rng;
use rand_distr::{Beta, Distribution, Exp1, Gamma};

use super::TrueParams;

/// Samplers for the population-level distributions, built once per generation.
pub(crate) struct Process {
    /// Gamma(r, 1); divided by α gives λ ~ Gamma(r, rate α).
    rate_shape: Gamma<f64>,
    alpha: f64,
    dropout: Beta<f64>,
    /// Gamma(q, 1); divided by γ gives ν ~ Gamma(q, rate γ).
    spend_shape: Gamma<f64>,
    gamma: f64,
    /// Gamma(p, 1); divided by ν gives an order value ~ Gamma(p, rate ν).
    value_shape: Gamma<f64>,
}

/// One customer's latent traits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Traits {
    /// Purchases per day while alive.
    pub lambda: f64,
    /// Probability of dropping out after each repeat purchase.
    pub dropout: f64,
    /// Spend rate: mean order value is p/ν.
    pub nu: f64,
}

impl Process {
    /// `params` must have been validated (all positive), so the constructors cannot fail.
    pub fn new(params: &TrueParams) -> Self {
        let gamma1 = |shape: f64| Gamma::new(shape, 1.0).expect("validated shape > 0");
        Process {
            rate_shape: gamma1(params.r),
            alpha: params.alpha,
            dropout: Beta::new(params.a, params.b).expect("validated a, b > 0"),
            spend_shape: gamma1(params.q),
            gamma: params.gamma,
            value_shape: gamma1(params.p),
        }
    }

    pub fn traits(&self, rng: &mut impl Rng) -> Traits {
        Traits {
            lambda: self.rate_shape.sample(rng) / self.alpha,
            dropout: self.dropout.sample(rng),
            nu: self.spend_shape.sample(rng) / self.gamma,
        }
    }

    /// An order value in shop-currency units for a customer with spend rate `nu`.
    pub fn order_value(&self, rng: &mut impl Rng, nu: f64) -> f64 {
        self.value_shape.sample(rng) / nu
    }

    /// Appends the purchase times (days) of a customer whose first purchase is at `first`,
    /// up to `horizon` (exclusive): the first purchase, then repeats at exponential gaps with
    /// rate λ, each followed by dropout with probability p (BG/NBD: no dropout at the first).
    pub fn purchase_times(
        &self,
        rng: &mut impl Rng,
        traits: &Traits,
        first: f64,
        horizon: f64,
        out: &mut Vec<f64>,
    ) {
        out.push(first);
        if traits.lambda <= 0.0 {
            return;
        }
        let mut t = first;
        loop {
            let gap: f64 = Exp1.sample(rng);
            t += gap / traits.lambda;
            if t >= horizon {
                return;
            }
            out.push(t);
            if rng.random::<f64>() < traits.dropout {
                return;
            }
        }
    }
}
