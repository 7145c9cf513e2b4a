//! Pair affinity and the next best product.
//!
//! A *transaction* is an order (`AffinityScope::Basket`) or a customer's whole history
//! (`AffinityScope::History`: ever bought both), holding each of its distinct products once.
//! With N transactions, n(a) of them holding a and n(ab) holding both:
//! support = n(ab) / N, confidence(a -> b) = n(ab) / n(a), lift = n(ab) N / (n(a) n(b)),
//! computed from integers by one symmetric expression, so lift(a, b) = lift(b, a) exactly.
//!
//! Basket cap: a transaction with more than `max_products` distinct products (a wholesale
//! order, a customer who bought half the catalogue) counts in N and in every n(a) but adds no
//! pairs: its pairs grow with the square of its size and say little about affinity. So
//! n(ab) <= min(n(a), n(b)) still holds and every figure stays in [0, 1] (lift aside). The
//! number of capped transactions is reported.

use serde::{Deserialize, Serialize};

use super::{
    Baskets, LineItem, customer_starts, distinct_products, map_customer_pieces, orders_of,
};
use crate::analytics::AnalysisError;
use crate::analytics::parallel::{KeyMap, fill_blocks};

/// What a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AffinityScope {
    /// One order.
    Basket,
    /// Everything one customer ever bought.
    History,
}

/// Settings of `affinity`. `Default`: support of at least 0.1 %, at most 50 products per
/// transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AffinityOptions {
    /// Pairs with a smaller support are left out, in [0, 1].
    pub min_support: f64,
    /// Transactions with more distinct products add no pairs (see the module).
    pub max_products: usize,
}

impl Default for AffinityOptions {
    fn default() -> Self {
        AffinityOptions {
            min_support: 0.001,
            max_products: 50,
        }
    }
}

/// Two products (a < b) bought in the same transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPair {
    pub a: u32,
    pub b: u32,
    /// n(ab): transactions holding both.
    pub together: u64,
    pub support: f64,
    /// n(ab) / n(a).
    pub confidence_a_to_b: f64,
    /// n(ab) / n(b).
    pub confidence_b_to_a: f64,
    pub lift: f64,
}

/// Every pair of a shop with at least the minimum support.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affinity {
    pub scope: AffinityScope,
    /// N: transactions with at least one product.
    pub transactions: u64,
    /// Transactions over `max_products`, which added no pairs.
    pub capped_transactions: u64,
    /// `product_transactions[p]` = n(p).
    pub product_transactions: Vec<u64>,
    /// By lift (highest first), then together (most first), then (a, b).
    pub pairs: Vec<ProductPair>,
}

/// Pair counts of one piece: a triangular table when the catalogue is small enough, a hash map
/// otherwise.
enum PairCounts {
    Dense(Vec<u32>),
    Sparse(KeyMap<u64, u32>),
}

/// Catalogues up to this many products count pairs in a table (4 bytes a pair: 8 MB).
const DENSE_PRODUCTS: u32 = 2048;

/// Index of the pair (a, b), a < b, in the triangular table; tri(0, p) = pairs below p.
fn tri(a: u32, b: u32) -> usize {
    let b = b as usize;
    b * b.saturating_sub(1) / 2 + a as usize
}

impl PairCounts {
    fn new(products: u32) -> PairCounts {
        if products <= DENSE_PRODUCTS {
            PairCounts::Dense(vec![0; tri(0, products)])
        } else {
            PairCounts::Sparse(KeyMap::with_capacity_and_hasher(
                1 << 16,
                Default::default(),
            ))
        }
    }

    /// Every pair of `set` (ascending, distinct).
    fn add_all(&mut self, set: &[u32]) {
        match self {
            PairCounts::Dense(t) => {
                for (j, &b) in set.iter().enumerate() {
                    let row = tri(0, b);
                    for &a in &set[..j] {
                        t[row + a as usize] += 1;
                    }
                }
            }
            PairCounts::Sparse(m) => {
                for (j, &b) in set.iter().enumerate() {
                    for &a in &set[..j] {
                        *m.entry((u64::from(a) << 32) | u64::from(b)).or_insert(0) += 1;
                    }
                }
            }
        }
    }

    fn merge(&mut self, other: PairCounts) {
        match (self, other) {
            (PairCounts::Dense(t), PairCounts::Dense(o)) => {
                t.iter_mut().zip(o).for_each(|(t, o)| *t += o)
            }
            (PairCounts::Sparse(m), PairCounts::Sparse(o)) => {
                for (k, v) in o {
                    *m.entry(k).or_insert(0) += v;
                }
            }
            _ => unreachable!("one catalogue size, one kind of table"),
        }
    }

    /// (a, b, n(ab)) of every pair with n(ab) >= min.
    fn pairs(self, min: u64) -> Vec<(u32, u32, u64)> {
        let min = min.max(1);
        match self {
            PairCounts::Dense(t) => {
                let mut out = Vec::new();
                let mut b = 1u32;
                let mut row = 0usize;
                while row < t.len() {
                    for (a, &n) in t[row..row + b as usize].iter().enumerate() {
                        if u64::from(n) >= min {
                            out.push((a as u32, b, u64::from(n)));
                        }
                    }
                    row += b as usize;
                    b += 1;
                }
                out
            }
            PairCounts::Sparse(m) => m
                .into_iter()
                .filter(|&(_, n)| u64::from(n) >= min)
                .map(|(k, n)| ((k >> 32) as u32, k as u32, u64::from(n)))
                .collect(),
        }
    }
}

struct Piece {
    transactions: u64,
    capped: u64,
    singles: Vec<u64>,
    pairs: PairCounts,
}

impl Piece {
    fn add(&mut self, set: &[u32], max_products: usize) {
        if set.is_empty() {
            return;
        }
        self.transactions += 1;
        set.iter().for_each(|&p| self.singles[p as usize] += 1);
        if set.len() > max_products {
            self.capped += 1;
        } else {
            self.pairs.add_all(set);
        }
    }
}

/// lift(a, b) from counts; symmetric in (na, nb) because the product na·nb is.
pub fn lift_of(together: u64, n: u64, na: u64, nb: u64) -> f64 {
    together as f64 * n as f64 / (na as f64 * nb as f64)
}

/// Pair affinity of a shop's products over baskets or histories.
pub fn affinity(
    baskets: &Baskets,
    scope: AffinityScope,
    opts: &AffinityOptions,
) -> Result<Affinity, AnalysisError> {
    baskets.validate()?;
    if !(0.0..=1.0).contains(&opts.min_support) {
        return Err(AnalysisError::InvalidOption {
            name: "min_support",
            reason: format!("{} is not in [0, 1]", opts.min_support),
        });
    }
    if opts.max_products < 2 {
        return Err(AnalysisError::InvalidOption {
            name: "max_products",
            reason: "must be at least 2 for any pair".into(),
        });
    }
    let products = baskets.products;
    let parts = map_customer_pieces(&baskets.items, |items| {
        let mut piece = Piece {
            transactions: 0,
            capped: 0,
            singles: vec![0; products as usize],
            pairs: PairCounts::new(products),
        };
        let mut set = Vec::new();
        for mine in items.chunk_by(|a, b| a.customer == b.customer) {
            match scope {
                AffinityScope::History => {
                    distinct_products(mine, &mut set);
                    piece.add(&set, opts.max_products);
                }
                AffinityScope::Basket => {
                    for order in orders_of(mine) {
                        distinct_products(order, &mut set);
                        piece.add(&set, opts.max_products);
                    }
                }
            }
        }
        piece
    });
    let mut parts = parts.into_iter();
    let mut total = parts.next().expect("at least one piece");
    for p in parts {
        total.transactions += p.transactions;
        total.capped += p.capped;
        total
            .singles
            .iter_mut()
            .zip(p.singles)
            .for_each(|(t, s)| *t += s);
        total.pairs.merge(p.pairs);
    }
    let n = total.transactions;
    // The smallest count whose support reaches min_support (support = count / n).
    let mut min = (opts.min_support * n as f64).ceil() as u64;
    while min > 0 && (min - 1) as f64 / n as f64 >= opts.min_support {
        min -= 1;
    }
    while n > 0 && (min as f64 / n as f64) < opts.min_support {
        min += 1;
    }
    let singles = total.singles;
    let mut pairs: Vec<ProductPair> = total
        .pairs
        .pairs(min)
        .into_iter()
        .map(|(a, b, together)| {
            let (na, nb) = (singles[a as usize], singles[b as usize]);
            ProductPair {
                a,
                b,
                together,
                support: together as f64 / n as f64,
                confidence_a_to_b: together as f64 / na as f64,
                confidence_b_to_a: together as f64 / nb as f64,
                lift: lift_of(together, n, na, nb),
            }
        })
        .collect();
    pairs.sort_by(|x, y| {
        y.lift
            .total_cmp(&x.lift)
            .then(y.together.cmp(&x.together))
            .then((x.a, x.b).cmp(&(y.a, y.b)))
    });
    Ok(Affinity {
        scope,
        transactions: n,
        capped_transactions: total.capped,
        product_transactions: singles,
        pairs,
    })
}

/// A product to suggest to a customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NextBest {
    pub product: u32,
    pub lift: f64,
    /// The product the customer bought that it is paired with.
    pub because_of: u32,
    /// n(ab) of that pair.
    pub together: u64,
}

/// Per customer (index = customer), the next best product: among the pairs of `affinity`
/// with lift > 1 (bought together more often than chance) joining a product the customer
/// bought to one they have not, the highest lift; ties go to the larger n(ab), then the
/// smaller product id, then the smaller `because_of`. None when no pair qualifies. A product
/// the customer bought (any line of `baskets`) is never suggested.
pub fn next_best_products(
    baskets: &Baskets,
    affinity: &Affinity,
) -> Result<Vec<Option<NextBest>>, AnalysisError> {
    baskets.validate()?;
    let products = baskets.products as usize;
    if affinity.product_transactions.len() != products {
        return Err(AnalysisError::InvalidOption {
            name: "affinity",
            reason: format!(
                "computed for {} products, the baskets have {products}",
                affinity.product_transactions.len()
            ),
        });
    }
    // Neighbours of each product, best first: (lift, together, product).
    let related: Vec<&ProductPair> = affinity.pairs.iter().filter(|p| p.lift > 1.0).collect();
    let mut starts = vec![0usize; products + 1];
    for p in &related {
        starts[p.a as usize + 1] += 1;
        starts[p.b as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut fill = starts.clone();
    let mut edges = vec![(0.0f64, 0u64, 0u32); starts[products]];
    for p in &related {
        for (from, to) in [(p.a, p.b), (p.b, p.a)] {
            edges[fill[from as usize]] = (p.lift, p.together, to);
            fill[from as usize] += 1;
        }
    }
    for p in 0..products {
        edges[starts[p]..starts[p + 1]]
            .sort_by(|x, y| y.0.total_cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
    }
    let customer = customer_starts(baskets);
    let mut out = vec![None; baskets.customers as usize];
    fill_blocks(&mut out, |offset, block| {
        let mut bought = Vec::new();
        for (i, slot) in block.iter_mut().enumerate() {
            let c = offset + i;
            let mine: &[LineItem] = &baskets.items[customer[c]..customer[c + 1]];
            distinct_products(mine, &mut bought);
            let mut best: Option<NextBest> = None;
            for &a in &bought {
                let first_new = edges[starts[a as usize]..starts[a as usize + 1]]
                    .iter()
                    .find(|e| bought.binary_search(&e.2).is_err());
                let Some(&(lift, together, product)) = first_new else {
                    continue;
                };
                let better = best.is_none_or(|b| {
                    lift.total_cmp(&b.lift)
                        .then(together.cmp(&b.together))
                        .then(b.product.cmp(&product))
                        .is_gt()
                });
                if better {
                    best = Some(NextBest {
                        product,
                        lift,
                        because_of: a,
                        together,
                    });
                }
            }
            *slot = best;
        }
    });
    Ok(out)
}
