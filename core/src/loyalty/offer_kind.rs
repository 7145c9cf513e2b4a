//! The kinds of personal offer and the date each counts its day window from. Both the offer
//! planner ([`crate::loyalty::offers`]) and the code derivation ([`crate::loyalty::code`])
//! name an offer by its kind; neither needs the other for that.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferKind {
    SecondPurchase,
    WinBack,
    Reward,
    CartRecovery,
}

/// The date an offer's day window counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    FirstOrder,
    LastOrder,
    AbandonedCheckout,
}

impl OfferKind {
    pub const ALL: [OfferKind; 4] = [
        OfferKind::SecondPurchase,
        OfferKind::WinBack,
        OfferKind::Reward,
        OfferKind::CartRecovery,
    ];

    pub fn key(self) -> &'static str {
        match self {
            OfferKind::SecondPurchase => "second_purchase",
            OfferKind::WinBack => "win_back",
            OfferKind::Reward => "reward",
            OfferKind::CartRecovery => "cart_recovery",
        }
    }

    /// Second purchase counts from the first order, cart recovery from the abandoned
    /// checkout, win-back and reward from the last order.
    pub fn trigger(self) -> Trigger {
        match self {
            OfferKind::SecondPurchase => Trigger::FirstOrder,
            OfferKind::WinBack | OfferKind::Reward => Trigger::LastOrder,
            OfferKind::CartRecovery => Trigger::AbandonedCheckout,
        }
    }
}
