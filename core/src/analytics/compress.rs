//! Compression of customers into unique (x, t_x, T) rows with weights.
//!
//! The BG/NBD likelihood and all its predictions depend on a customer only through
//! (x, t_x, T), so fitting and predicting per unique row instead of per customer is exact.
//! Times are whole days (see `features`), so customers who share x, first and last purchase
//! day offsets and age share a row. How much that saves depends on the shop: a small shop or
//! a short history collapses to a few thousand rows, while a million customers spread over
//! two years still keep about 646k distinct rows (the benchmark), which is why the fit also
//! indexes times and x per row and runs in parallel (`bgnbd`).

use super::parallel::KeyMap;

/// One distinct (x, t_x, T) triple.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub x: f64,
    pub t_x: f64,
    pub t: f64,
}

/// Unique rows, how many customers each stands for, and each input's row.
#[derive(Debug, Clone, Default)]
pub struct Compressed {
    pub rows: Vec<Row>,
    pub weights: Vec<f64>,
    /// `row_of[i]` is the index into `rows` of the i-th input triple.
    pub row_of: Vec<u32>,
}

impl Compressed {
    /// Groups the triples; rows keep first-seen order, so the result is deterministic.
    pub fn from_triples(triples: impl IntoIterator<Item = (u32, f64, f64)>) -> Compressed {
        let triples = triples.into_iter();
        // Sized for the worst case (all distinct) so the map never rehashes; at day
        // resolution most customers of a large shop do have a triple of their own.
        let bound = triples.size_hint();
        let capacity = bound.1.unwrap_or(bound.0);
        let mut seen: KeyMap<(u32, u64, u64), u32> =
            KeyMap::with_capacity_and_hasher(capacity, Default::default());
        let mut out = Compressed {
            row_of: Vec::with_capacity(capacity),
            ..Compressed::default()
        };
        for (x, t_x, t) in triples {
            // +0.0 normalises −0.0 so equal values share a key.
            let key = (x, (t_x + 0.0).to_bits(), (t + 0.0).to_bits());
            let idx = *seen.entry(key).or_insert_with(|| {
                out.rows.push(Row {
                    x: f64::from(x),
                    t_x,
                    t,
                });
                out.weights.push(0.0);
                (out.rows.len() - 1) as u32
            });
            out.weights[idx as usize] += 1.0;
            out.row_of.push(idx);
        }
        out
    }

    /// Number of customers represented.
    pub fn customers(&self) -> usize {
        self.row_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_equal_triples_and_keeps_the_mapping() {
        let c = Compressed::from_triples([(1, 2.0, 5.0), (0, 0.0, 5.0), (1, 2.0, 5.0)]);
        assert_eq!(c.rows.len(), 2);
        assert_eq!(c.weights, vec![2.0, 1.0]);
        assert_eq!(c.row_of, vec![0, 1, 0]);
        assert_eq!(c.customers(), 3);
    }
}
