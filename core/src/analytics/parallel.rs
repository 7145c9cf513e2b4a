//! Deterministic data parallelism for the likelihood sums, and a fast hasher for the
//! compression maps.
//!
//! Rows are cut into fixed-size blocks; each block is reduced on whichever thread of rayon's
//! shared pool takes it and the block results come back in block order. The caller adds them in
//! that order, so a sum is bit-identical whatever the number of threads (a fit gives the same
//! parameters on a laptop and on a 64-core server). One pool for the whole process: many shops
//! analysed at once share the machine's cores instead of each starting its own threads. Data
//! of one block runs on the calling thread: handing it over would cost more than it saves.

use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use rayon::prelude::*;

/// Rows per block: large enough that a block costs far more than handing it to a thread,
/// small enough that two threads share the last blocks evenly.
pub const BLOCK: usize = 16_384;

/// Threads of the shared pool.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

fn block(b: usize, len: usize) -> Range<usize> {
    b * BLOCK..((b + 1) * BLOCK).min(len)
}

/// `f` of every block of `0..len`, in block order.
pub fn map_blocks<T: Send>(len: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let blocks = len.div_ceil(BLOCK);
    if blocks <= 1 || threads() <= 1 {
        return (0..blocks).map(|b| f(block(b, len))).collect();
    }
    // An indexed parallel collect keeps block order.
    (0..blocks)
        .into_par_iter()
        .map(|b| f(block(b, len)))
        .collect()
}

/// Fills `out` block by block: `f(offset, block)` gets each `BLOCK`-long piece of `out` and
/// the index of its first element. Writing in place spares the copy (and the second buffer)
/// that joining per-block vectors would cost on million-element outputs.
pub fn fill_blocks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    if out.len() <= BLOCK || threads() <= 1 {
        for (b, chunk) in out.chunks_mut(BLOCK).enumerate() {
            f(b * BLOCK, chunk);
        }
        return;
    }
    out.par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(b, chunk)| f(b * BLOCK, chunk));
}

/// Parts `map_customer_parts` cuts a shop's orders into: a fixed number, so sums added part
/// by part are the same on any number of threads; enough to keep every core busy.
pub const CUSTOMER_PARTS: usize = 16;

/// `f` of each of `CUSTOMER_PARTS` consecutive pieces of `rows` (sorted by the customer
/// `customer` reads from a row), cut where a customer's rows begin so that each customer falls
/// in one piece, in order. For stages that keep a per-part table (cohorts × periods,
/// histograms) too large to keep per `BLOCK`.
pub fn map_customer_parts<R: Sync, K: PartialEq, T: Send>(
    rows: &[R],
    customer: impl Fn(&R) -> K + Sync,
    f: impl Fn(&[R]) -> T + Sync,
) -> Vec<T> {
    let len = rows.len();
    let cut = |i: usize| {
        let mut i = i.min(len);
        while i > 0 && i < len && customer(&rows[i]) == customer(&rows[i - 1]) {
            i += 1;
        }
        i
    };
    let bounds: Vec<usize> = (0..=CUSTOMER_PARTS)
        .map(|k| cut(len * k / CUSTOMER_PARTS))
        .collect();
    let part = |k: usize| f(&rows[bounds[k]..bounds[k + 1]]);
    if len <= BLOCK || threads() <= 1 {
        return (0..CUSTOMER_PARTS).map(part).collect();
    }
    (0..CUSTOMER_PARTS).into_par_iter().map(part).collect()
}

/// Σ over blocks of the `N` sums `f` returns, added in block order.
pub fn sum_blocks<const N: usize>(
    len: usize,
    f: impl Fn(Range<usize>) -> [f64; N] + Sync,
) -> [f64; N] {
    map_blocks(len, f)
        .into_iter()
        .fold([0.0; N], |mut acc, part| {
            acc.iter_mut().zip(part).for_each(|(a, p)| *a += p);
            acc
        })
}

/// A hasher for small keys of integers and f64 bit patterns. std's SipHash resists hash
/// flooding, which these maps (keyed by our own computed numbers) do not need, and costs
/// several times more. The final mix spreads every input bit over the whole word: whole-day
/// times have all-zero low mantissa bits, which a plain multiplicative hash would leave in
/// the bucket index.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(23) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        // SplitMix64's finaliser.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

pub type KeyMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_come_back_in_order_and_cover_everything() {
        let len = BLOCK * 5 + 17;
        let parts = map_blocks(len, |r| (r.start, r.end));
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0].0, 0);
        assert!(parts.windows(2).all(|w| w[0].1 == w[1].0));
        assert_eq!(parts[5].1, len);
        assert!(map_blocks(0, |r| r.len()).is_empty());
    }

    #[test]
    fn fill_blocks_writes_every_element_with_its_index() {
        let mut out = vec![0usize; BLOCK * 3 + 11];
        fill_blocks(&mut out, |offset, block| {
            for (i, v) in block.iter_mut().enumerate() {
                *v = offset + i;
            }
        });
        assert!(out.iter().enumerate().all(|(i, v)| *v == i));
        fill_blocks(&mut [0u8; 0], |_, _| unreachable!());
    }

    #[test]
    fn sums_equal_the_block_ordered_serial_sum() {
        let values: Vec<f64> = (0..BLOCK * 3 + 5).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let sum = sum_blocks(values.len(), |r| {
            [values[r.clone()].iter().sum(), r.len() as f64]
        });
        let serial = values
            .chunks(BLOCK)
            .map(|c| c.iter().sum::<f64>())
            .fold(0.0, |a, b| a + b);
        assert_eq!(sum, [serial, values.len() as f64]);
    }

    #[test]
    fn customer_parts_keep_each_customer_whole_and_cover_every_order() {
        // (customer, order number): customer c has c % 7 orders; some customers straddle the
        // even cut points.
        let orders: Vec<(u32, u32)> = (0..BLOCK as u32)
            .flat_map(|c| (0..c % 7).map(move |i| (c, i)))
            .collect();
        let parts = map_customer_parts(&orders, |o| o.0, |p| p.to_vec());
        assert_eq!(parts.len(), CUSTOMER_PARTS);
        assert_eq!(parts.concat(), orders);
        for w in parts.windows(2) {
            if let (Some(a), Some(b)) = (w[0].last(), w[1].first()) {
                assert_ne!(a.0, b.0);
            }
        }
        let none: [(u32, u32); 0] = [];
        assert!(
            map_customer_parts(&none, |o| o.0, |p| p.len())
                .iter()
                .all(|&n| n == 0)
        );
    }

    #[test]
    fn whole_day_keys_spread_over_buckets() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<KeyHasher>::default();
        let mut low_bits = std::collections::HashSet::new();
        for day in 0..1024u32 {
            low_bits.insert(build.hash_one((1u32, f64::from(day).to_bits())) & 1023);
        }
        // A random function would fill about 63 % of 1024 buckets.
        assert!(low_bits.len() > 550, "{}", low_bits.len());
    }
}
