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
    ///
    /// Distinct times are few at day resolution (two years are 731 days), so each time gets a
    /// small id and a triple becomes one 64-bit key (x, id of t_x, id of T), grouped by
    /// `group_keys`. With more than 65,536 distinct times (continuous times from a summary
    /// file) the triples are grouped in one map keyed by the full values instead.
    pub fn from_triples(triples: impl IntoIterator<Item = (u32, f64, f64)>) -> Compressed {
        // +0.0 normalises −0.0 so equal values share a key.
        let triples: Vec<(u32, f64, f64)> = triples
            .into_iter()
            .map(|(x, t_x, t)| (x, t_x + 0.0, t + 0.0))
            .collect();
        let mut time_ids: KeyMap<u64, u32> = KeyMap::default();
        let mut keys = Vec::with_capacity(triples.len());
        for &(x, t_x, t) in &triples {
            let mut id = |v: f64| {
                let next = time_ids.len() as u64;
                *time_ids.entry(v.to_bits()).or_insert(next as u32)
            };
            let (a, b) = (id(t_x), id(t));
            keys.push(u64::from(x) << 32 | u64::from(a) << 16 | u64::from(b));
        }
        let (row_of, first) = if time_ids.len() <= 1 << 16 {
            group_keys(&keys)
        } else {
            let wide: Vec<(u32, u64, u64)> = triples
                .iter()
                .map(|&(x, t_x, t)| (x, t_x.to_bits(), t.to_bits()))
                .collect();
            group_in_one_map(&wide)
        };
        drop(keys);
        let mut out = Compressed {
            rows: first
                .iter()
                .map(|&i| {
                    let (x, t_x, t) = triples[i as usize];
                    Row {
                        x: f64::from(x),
                        t_x,
                        t,
                    }
                })
                .collect(),
            weights: vec![0.0; first.len()],
            row_of,
        };
        for &r in &out.row_of {
            out.weights[r as usize] += 1.0;
        }
        out
    }

    /// Number of customers represented.
    pub fn customers(&self) -> usize {
        self.row_of.len()
    }
}

/// Groups equal keys: the group of every key, groups numbered in order of first appearance,
/// and the index of each group's first key.
pub(crate) fn group_in_one_map<K: std::hash::Hash + Eq + Copy>(keys: &[K]) -> (Vec<u32>, Vec<u32>) {
    let mut ids: KeyMap<K, u32> = KeyMap::default();
    let mut first = Vec::new();
    let group_of = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            *ids.entry(*k).or_insert_with(|| {
                first.push(i as u32);
                (first.len() - 1) as u32
            })
        })
        .collect();
    (group_of, first)
}

/// `group_in_one_map` for many keys, cache-friendly: one map over a million mostly distinct
/// keys is tens of megabytes, and every lookup is a cache (and TLB) miss. Instead the keys
/// are scattered by hash into partitions of a few thousand, each grouped with a small map
/// that stays in cache, and the groups are renumbered in order of first appearance in one
/// sequential pass.
pub(crate) fn group_keys(keys: &[u64]) -> (Vec<u32>, Vec<u32>) {
    const PER_PARTITION: usize = 4096;
    let n = keys.len();
    let partitions = (n / PER_PARTITION).next_power_of_two();
    if partitions <= 1 {
        return group_in_one_map(keys);
    }
    let shift = 64 - partitions.trailing_zeros();
    // Not the maps' own hash: keys of one partition would then share its top bits, which
    // the map uses as tags, and every probe would compare all keys.
    let part_of =
        |k: &u64| (k.wrapping_mul(0xD6E8_FEB8_6659_FD93).rotate_left(17) >> shift) as usize;
    // Counting sort of the indices by partition; indices stay ascending within each.
    let mut start = vec![0usize; partitions + 1];
    for k in keys {
        start[part_of(k) + 1] += 1;
    }
    for p in 0..partitions {
        start[p + 1] += start[p];
    }
    let mut fill = start.clone();
    // The key travels with its index, so the grouping below reads memory in order.
    let mut order = vec![(0u64, 0u32); n];
    for (i, k) in keys.iter().enumerate() {
        let p = part_of(k);
        order[fill[p]] = (*k, i as u32);
        fill[p] += 1;
    }
    // Group within each partition; a group's first key is its smallest index.
    let mut group_of = vec![0u32; n];
    let mut first: Vec<u32> = Vec::new();
    let mut local: KeyMap<u64, u32> = KeyMap::default();
    for p in 0..partitions {
        local.clear();
        for &(key, i) in &order[start[p]..start[p + 1]] {
            group_of[i as usize] = *local.entry(key).or_insert_with(|| {
                first.push(i);
                (first.len() - 1) as u32
            });
        }
    }
    drop(order);
    // Renumber groups in order of first appearance.
    let mut rank = vec![u32::MAX; first.len()];
    let mut next = 0u32;
    let mut ordered_first = vec![0u32; first.len()];
    for (i, g) in group_of.iter_mut().enumerate() {
        let r = &mut rank[*g as usize];
        if *r == u32::MAX {
            *r = next;
            ordered_first[next as usize] = i as u32;
            next += 1;
        }
        *g = *r;
    }
    (group_of, ordered_first)
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

    #[test]
    fn continuous_times_beyond_the_id_space_still_group_exactly() {
        // 70,000 distinct ages exhaust the time ids; every triple comes twice, the second
        // time in reverse order, and −0.0 equals 0.0.
        let n = 70_000u32;
        let triple = |i: u32| {
            (
                i % 3,
                if i.is_multiple_of(2) { -0.0 } else { 0.5 },
                f64::from(i) / 7.0,
            )
        };
        let c = Compressed::from_triples((0..n).map(triple).chain((0..n).rev().map(triple)));
        assert_eq!(c.rows.len(), n as usize);
        assert!(c.weights.iter().all(|&w| w == 2.0));
        for i in 0..n as usize {
            assert_eq!(c.row_of[i], i as u32);
            assert_eq!(c.row_of[2 * n as usize - 1 - i], i as u32);
        }
        assert_eq!(c.rows[0].t_x.to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn partitioned_grouping_equals_one_map() {
        // Enough keys for many partitions, with repeats near and far apart.
        let keys: Vec<u64> = (0..100_000u64)
            .map(|i| ((i % 20_011) * 7919 % 30_011) << 16 | (i % 3))
            .collect();
        let partitioned = group_keys(&keys);
        assert_eq!(partitioned, group_in_one_map(&keys));
        let (group_of, first) = partitioned;
        assert!(first.len() < keys.len() && first.windows(2).all(|w| w[0] < w[1]));
        for (i, g) in group_of.iter().enumerate() {
            assert_eq!(keys[first[*g as usize] as usize], keys[i]);
        }
    }
}
