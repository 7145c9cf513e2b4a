//! A digest of a shop's customers and orders that does not depend on order of iteration, so a
//! mirror of a million orders can be compared with the shop without shipping either whole:
//! each record's canonical line is hashed (FNV-1a, 64 bits) and the hashes are summed.

use serde::Serialize;

/// Counts and digests of one shop's data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Digest {
    pub customers: u64,
    pub orders: u64,
    /// Decimal strings: JSON numbers lose precision above 2^53.
    pub customers_digest: String,
    pub orders_digest: String,
}

/// Sums record hashes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Accumulator {
    pub count: u64,
    pub sum: u64,
}

impl Accumulator {
    pub fn add(&mut self, line: &str) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(fnv1a(line.as_bytes()));
    }
}

/// The canonical line of a customer: its GID.
pub fn customer_line(gid: &str) -> String {
    gid.to_string()
}

/// The canonical line of an order: GID, customer GID (empty for a guest), total and refunded
/// (shop currency, minor units) and whether it is cancelled.
pub fn order_line(
    gid: &str,
    customer: Option<&str>,
    total: i64,
    refunded: i64,
    cancelled: bool,
) -> String {
    format!(
        "{gid}|{}|{total}|{refunded}|{}",
        customer.unwrap_or(""),
        u8::from(cancelled)
    )
}

impl Digest {
    pub fn from(customers: Accumulator, orders: Accumulator) -> Digest {
        Digest {
            customers: customers.count,
            orders: orders.count,
            customers_digest: customers.sum.to_string(),
            orders_digest: orders.sum.to_string(),
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_order_and_sees_every_field() {
        let lines = [
            order_line("o1", Some("c1"), 100, 0, false),
            order_line("o2", None, 250, 50, true),
        ];
        let (mut a, mut b) = (Accumulator::default(), Accumulator::default());
        a.add(&lines[0]);
        a.add(&lines[1]);
        b.add(&lines[1]);
        b.add(&lines[0]);
        assert_eq!(a.sum, b.sum);
        assert_eq!(a.count, 2);
        let mut c = Accumulator::default();
        c.add(&lines[0]);
        c.add(&order_line("o2", None, 250, 50, false));
        assert_ne!(a.sum, c.sum, "a cancellation changes the digest");
    }
}
