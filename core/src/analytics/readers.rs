//! Input files of `lifecycle analyze`: transactions CSV, summary CSV, the CDNOW text files and
//! Shopify's orders export. Every error names the line and what is wrong.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::str::FromStr;

use super::features::CustomerFeatures;
use super::input::{OrderFact, ShopInput, TimeUnit};
use super::products::{Baskets, LineItem};

/// A problem in an input file. `line` is 1-based; None for whole-file problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct ReadError {
    pub line: Option<u64>,
    pub message: String,
}

fn err<T>(line: Option<u64>, message: impl Into<String>) -> Result<T, ReadError> {
    Err(ReadError {
        line,
        message: message.into(),
    })
}

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// CSV `customer_id,date,amount` (ISO dates or datetimes), with optional `order_id`,
    /// `product_id` and `quantity` columns (see `read_transactions`).
    Transactions,
    /// CSV `ID,frequency,recency,T[,monetary_value]`, time in the file's unit.
    Summary,
    /// Whitespace-separated CDNOW master (`id yyyymmdd cds dollars`) or sample
    /// (`master_id sample_id yyyymmdd cds dollars`, customers by sample_id) file, optional
    /// header line.
    Cdnow,
    /// A shop platform's orders export CSV (one row per line item; customers by email), in
    /// the platform's column names.
    OrdersExport(ExportColumns),
}

/// The header names of a platform's orders export. Platforms name their own columns; the
/// reading is the same for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportColumns {
    /// The order's name or number, repeated on each of its line-item rows.
    pub order: &'static str,
    pub email: &'static str,
    pub created_at: &'static str,
    pub total: &'static str,
    pub cancelled_at: &'static str,
    pub refunded: &'static str,
    pub discount_code: &'static str,
}

impl FromStr for InputFormat {
    type Err = crate::types::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "transactions" => Ok(InputFormat::Transactions),
            "summary" => Ok(InputFormat::Summary),
            "cdnow" => Ok(InputFormat::Cdnow),
            _ => Err(crate::types::UnknownValue {
                value: s.to_string(),
                expected: "transactions, summary, cdnow".to_string(),
            }),
        }
    }
}

/// What a file holds: orders, or customers already summarised.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Orders {
        /// External customer id of each dense index.
        ids: Vec<String>,
        input: ShopInput,
        /// Rows left out on purpose (Shopify orders without a customer email).
        skipped_rows: u64,
        /// The line items, when the file names products (transactions with `product_id`).
        products: Option<ProductLines>,
    },
    Summary {
        ids: Vec<String>,
        features: Vec<CustomerFeatures>,
    },
}

/// Line items read from a file, with the external id of each dense product index.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductLines {
    pub product_ids: Vec<String>,
    pub baskets: Baskets,
}

/// Parses an ISO date (`2024-03-01`, `20240301`) or datetime (RFC 3339, `2024-03-01 10:00:00`,
/// `2024-03-01T10:00:00`, Shopify's `2024-03-01 10:00:00 -0500`). Dates without a zone are UTC.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S %z") {
        return Some(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc());
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
        }
    }
    None
}

fn parse_amount(s: &str, column: &str, line: Option<u64>) -> Result<f64, ReadError> {
    let v: f64 = match s.trim().parse() {
        Ok(v) => v,
        Err(_) => {
            return err(
                line,
                format!("unparsable amount `{s}` in column `{column}`"),
            );
        }
    };
    if !v.is_finite() {
        return err(
            line,
            format!("amount `{s}` in column `{column}` is not finite"),
        );
    }
    if v < 0.0 {
        return err(line, format!("negative amount `{s}` in column `{column}`"));
    }
    Ok(v)
}

/// Dense indices for external ids, in first-seen order.
#[derive(Default)]
struct Ids {
    index: HashMap<String, u32>,
    ids: Vec<String>,
}

impl Ids {
    fn get(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.index.insert(id.to_string(), i);
        self.ids.push(id.to_string());
        i
    }
}

fn orders_from(ids: Ids, mut orders: Vec<OrderFact>, skipped_rows: u64) -> Parsed {
    // Stable: same-time orders keep file order.
    orders.sort_by_key(|o| (o.customer, o.at));
    Parsed::Orders {
        input: ShopInput {
            customers: ids.ids.len() as u32,
            orders,
            abandoned_checkouts: Vec::new(),
        },
        ids: ids.ids,
        skipped_rows,
        products: None,
    }
}

/// Column positions by (case-insensitive, trimmed) header name.
struct Columns {
    names: Vec<String>,
}

impl Columns {
    fn new<R: Read>(rdr: &mut csv::Reader<R>) -> Result<Columns, ReadError> {
        let headers = match rdr.headers() {
            Ok(h) => h.clone(),
            Err(e) => return err(Some(1), format!("unreadable header: {e}")),
        };
        if headers.iter().all(|h| h.trim().is_empty()) {
            return err(None, "empty file: no header line");
        }
        Ok(Columns {
            names: headers
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
        })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn require(&self, names: &[&str]) -> Result<Vec<usize>, ReadError> {
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.find(n).is_none())
            .collect();
        if !missing.is_empty() {
            return err(
                Some(1),
                format!(
                    "missing column(s) {}; found {}",
                    missing.join(", "),
                    self.names.join(",")
                ),
            );
        }
        Ok(names.iter().filter_map(|n| self.find(n)).collect())
    }
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input)
}

/// Iterates data records with their line numbers; errors carry the line.
fn records<R: Read>(
    rdr: &mut csv::Reader<R>,
) -> impl Iterator<Item = Result<(Option<u64>, csv::StringRecord), ReadError>> + '_ {
    rdr.records().map(|r| match r {
        Ok(rec) => Ok((rec.position().map(|p| p.line()), rec)),
        Err(e) => err(
            e.position().map(|p| p.line()),
            format!("malformed CSV: {e}"),
        ),
    })
}

fn field<'r>(
    rec: &'r csv::StringRecord,
    i: usize,
    name: &str,
    line: Option<u64>,
) -> Result<&'r str, ReadError> {
    match rec.get(i) {
        Some(v) => Ok(v),
        None => err(line, format!("missing value for column `{name}`")),
    }
}

fn date_field(s: &str, name: &str, line: Option<u64>) -> Result<DateTime<Utc>, ReadError> {
    parse_datetime(s).map_or_else(
        || err(line, format!("unparsable date `{s}` in column `{name}`")),
        Ok,
    )
}

fn plain_order(customer: u32, at: DateTime<Utc>, amount: f64) -> OrderFact {
    OrderFact {
        customer,
        at,
        amount,
        refunded: 0.0,
        cancelled: false,
        discounted: false,
    }
}

/// `customer_id,date,amount` CSV, one order a row; or, with the optional columns, one line
/// item a row:
/// - `order_id`: rows of one customer with the same order id are one order, its amount the
///   sum of theirs and its time the first row's;
/// - `product_id`: each row is a line of that product, its `amount` the net line amount
///   (in the currency's units; kept in minor units as amount × 100, rounded), which the
///   product analyses read (`Parsed::Orders::products`);
/// - `quantity`: units on the line (a positive integer; 1 when the column is absent or the
///   cell empty). Read only with `product_id`.
pub fn read_transactions(input: impl Read) -> Result<Parsed, ReadError> {
    let mut rdr = csv_reader(input);
    let columns = Columns::new(&mut rdr)?;
    let cols = columns.require(&["customer_id", "date", "amount"])?;
    let (order_col, product_col) = (columns.find("order_id"), columns.find("product_id"));
    let quantity_col = columns.find("quantity");
    let (mut ids, mut orders) = (Ids::default(), Vec::<OrderFact>::new());
    let mut products = Ids::default();
    let mut order_index: HashMap<(u32, String), usize> = HashMap::new();
    let mut lines: Vec<LineItem> = Vec::new();
    for r in records(&mut rdr) {
        let (line, rec) = r?;
        let id = field(&rec, cols[0], "customer_id", line)?;
        if id.is_empty() {
            return err(line, "empty customer_id");
        }
        let at = date_field(field(&rec, cols[1], "date", line)?, "date", line)?;
        let amount = parse_amount(field(&rec, cols[2], "amount", line)?, "amount", line)?;
        let customer = ids.get(id);
        let order = match order_col {
            Some(c) => {
                let order_id = field(&rec, c, "order_id", line)?;
                if order_id.is_empty() {
                    return err(line, "empty order_id");
                }
                match order_index.get(&(customer, order_id.to_string())) {
                    Some(&o) => {
                        orders[o].amount += amount;
                        o
                    }
                    None => {
                        order_index.insert((customer, order_id.to_string()), orders.len());
                        orders.push(plain_order(customer, at, amount));
                        orders.len() - 1
                    }
                }
            }
            None => {
                orders.push(plain_order(customer, at, amount));
                orders.len() - 1
            }
        };
        if let Some(c) = product_col {
            let product_id = field(&rec, c, "product_id", line)?;
            if product_id.is_empty() {
                return err(line, "empty product_id");
            }
            let quantity = match quantity_col.map(|q| field(&rec, q, "quantity", line)) {
                None => 1,
                Some(q) => match q? {
                    "" => 1,
                    q => match q.parse::<u32>() {
                        Ok(n) if n > 0 => n,
                        _ => return err(line, format!("quantity `{q}` is not a positive integer")),
                    },
                },
            };
            lines.push(LineItem {
                customer,
                order: order as u32,
                product: products.get(product_id),
                quantity,
                at: orders[order].at,
                net_minor: (amount * 100.0).round() as i64,
            });
        }
    }
    if orders.is_empty() {
        return err(None, "no data rows");
    }
    let mut parsed = orders_from(ids, orders, 0);
    if product_col.is_some()
        && let Parsed::Orders {
            input,
            products: slot,
            ..
        } = &mut parsed
    {
        lines.sort_by_key(|l| (l.customer, l.at, l.order));
        *slot = Some(ProductLines {
            baskets: Baskets {
                customers: input.customers,
                products: products.ids.len() as u32,
                items: lines,
            },
            product_ids: products.ids,
        });
    }
    Ok(parsed)
}

/// `ID,frequency,recency,T[,monetary_value]` CSV; `unit` is the file's time unit.
///
/// Without order history, R comes from T − t_x, F from x + 1 and M from the total estimated
/// as monetary_value × (x + 1) (the first purchase valued at the repeat mean).
pub fn read_summary(input: impl Read, unit: TimeUnit) -> Result<Parsed, ReadError> {
    let mut rdr = csv_reader(input);
    let columns = Columns::new(&mut rdr)?;
    let id_col = if columns.find("id").is_some() {
        "id"
    } else {
        "customer_id"
    };
    let cols = columns.require(&[id_col, "frequency", "recency", "t"])?;
    let money = columns.find("monetary_value");
    let (mut ids, mut features) = (Ids::default(), Vec::new());
    for r in records(&mut rdr) {
        let (line, rec) = r?;
        let id = field(&rec, cols[0], id_col, line)?;
        let number = |i: usize, name: &str| -> Result<f64, ReadError> {
            let s = field(&rec, i, name, line)?;
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                Ok(_) => err(
                    line,
                    format!("`{s}` in column `{name}` must be a non-negative number"),
                ),
                Err(_) => err(line, format!("unparsable number `{s}` in column `{name}`")),
            }
        };
        let x = number(cols[1], "frequency")?;
        if x.fract() != 0.0 || x > f64::from(u32::MAX) {
            return err(line, format!("frequency `{x}` must be a whole number"));
        }
        let (t_x, t) = (number(cols[2], "recency")?, number(cols[3], "T")?);
        if t_x > t {
            return err(line, format!("recency {t_x} is after T {t}"));
        }
        let m = match money {
            Some(i) => number(i, "monetary_value")?,
            None => 0.0,
        };
        if ids.index.contains_key(id) {
            return err(line, format!("duplicate customer id `{id}`"));
        }
        let customer = ids.get(id);
        let mut f = CustomerFeatures::prospect(customer);
        f.orders = x as u32 + 1;
        f.frequency = x as u32;
        f.recency = t_x;
        f.age = t;
        f.monetary_value = m;
        f.total_value = m * (x + 1.0);
        f.average_order_value = m;
        f.days_since_last_order = Some((t - t_x) * unit.days());
        features.push(f);
    }
    if features.is_empty() {
        return err(None, "no data rows");
    }
    Ok(Parsed::Summary {
        ids: ids.ids,
        features,
    })
}

/// CDNOW master or sample text file.
pub fn read_cdnow(input: impl Read) -> Result<Parsed, ReadError> {
    let (mut ids, mut orders) = (Ids::default(), Vec::new());
    for (i, line) in BufReader::new(input).lines().enumerate() {
        let n = Some(i as u64 + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => return err(n, format!("unreadable line: {e}")),
        };
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() {
            continue;
        }
        let is_header = cols[0].parse::<u64>().is_err();
        if is_header && i == 0 {
            continue;
        }
        let (id, rest) = match cols.len() {
            4 => (cols[0], &cols[1..]),
            // The sample's own id (column 2) is what the CDNOW summary files use.
            5 => (cols[1], &cols[2..]),
            k => {
                return err(
                    n,
                    format!("expected 4 (master) or 5 (sample) columns, found {k}"),
                );
            }
        };
        let at = date_field(rest[0], "date", n)?;
        let amount = parse_amount(rest[2], "dollar_value", n)?;
        orders.push(plain_order(ids.get(id), at, amount));
    }
    if orders.is_empty() {
        return err(None, "empty file: no transactions");
    }
    Ok(orders_from(ids, orders, 0))
}

/// A platform's orders export. Needs the order, email, created and total columns; uses the
/// cancelled, refunded and discount-code columns when present (header names compared without
/// case). Only the first row of an order carries its totals; further line-item rows of the
/// same order are skipped. Orders without an email cannot be tied to a customer and are
/// skipped (counted in `skipped_rows`).
pub fn read_orders_export(input: impl Read, names: &ExportColumns) -> Result<Parsed, ReadError> {
    let mut rdr = csv_reader(input);
    let columns = Columns::new(&mut rdr)?;
    let lower = |s: &str| s.to_ascii_lowercase();
    let cols = columns.require(&[
        &lower(names.order),
        &lower(names.email),
        &lower(names.created_at),
        &lower(names.total),
    ])?;
    let cancelled_col = columns.find(&lower(names.cancelled_at));
    let refunded_col = columns.find(&lower(names.refunded));
    let discount_col = columns.find(&lower(names.discount_code));
    let (mut ids, mut orders) = (Ids::default(), Vec::new());
    let mut last_name = String::new();
    let mut skipped = 0u64;
    for r in records(&mut rdr) {
        let (line, rec) = r?;
        let name = field(&rec, cols[0], names.order, line)?;
        if name == last_name {
            continue;
        }
        last_name = name.to_string();
        let total = field(&rec, cols[3], names.total, line)?;
        if total.is_empty() {
            return err(
                line,
                format!("order {name}: empty `{}` on its first row", names.total),
            );
        }
        let amount = parse_amount(total, names.total, line)?;
        let at = date_field(
            field(&rec, cols[2], names.created_at, line)?,
            names.created_at,
            line,
        )?;
        let optional = |c: Option<usize>| c.and_then(|i| rec.get(i)).unwrap_or("");
        let refunded = match optional(refunded_col) {
            "" => 0.0,
            s => parse_amount(s, names.refunded, line)?,
        };
        let email = field(&rec, cols[1], names.email, line)?.to_ascii_lowercase();
        if email.is_empty() {
            skipped += 1;
            continue;
        }
        orders.push(OrderFact {
            customer: ids.get(&email),
            at,
            amount,
            refunded,
            cancelled: !optional(cancelled_col).is_empty(),
            discounted: !optional(discount_col).is_empty(),
        });
    }
    if orders.is_empty() && skipped == 0 {
        return err(None, "no data rows");
    }
    Ok(orders_from(ids, orders, skipped))
}

/// Reads `input` in `format`.
pub fn read(input: impl Read, format: InputFormat, unit: TimeUnit) -> Result<Parsed, ReadError> {
    match format {
        InputFormat::Transactions => read_transactions(input),
        InputFormat::Summary => read_summary(input, unit),
        InputFormat::Cdnow => read_cdnow(input),
        InputFormat::OrdersExport(names) => read_orders_export(input, &names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_err(r: Result<Parsed, ReadError>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn parses_the_documented_date_forms() {
        let expect = parse_datetime("2024-03-01T10:00:00Z").unwrap();
        assert_eq!(parse_datetime("2024-03-01 10:00:00"), Some(expect));
        assert_eq!(parse_datetime("2024-03-01 05:00:00 -0500"), Some(expect));
        assert_eq!(parse_datetime("2024-03-01T12:00:00+02:00"), Some(expect));
        assert_eq!(parse_datetime("20240301"), parse_datetime("2024-03-01"));
        assert_eq!(parse_datetime("2024-02-30"), None);
    }

    #[test]
    fn transactions_are_grouped_by_customer_and_sorted() {
        let csv = "customer_id,date,amount\nb,2024-01-05,10\na,2024-01-02,5\nb,2024-01-01,7\n";
        let Parsed::Orders { ids, input, .. } = read_transactions(csv.as_bytes()).unwrap() else {
            panic!("orders expected")
        };
        assert_eq!(ids, ["b", "a"]);
        let seq: Vec<(u32, f64)> = input
            .orders
            .iter()
            .map(|o| (o.customer, o.amount))
            .collect();
        assert_eq!(seq, [(0, 7.0), (0, 10.0), (1, 5.0)]);
        input.validate().unwrap();
    }

    #[test]
    fn transaction_lines_make_orders_and_baskets() {
        // b's order 7 has two lines (coffee twice over two rows is one product twice); a's
        // order 7 is another order (ids are per customer); no quantity cell means 1.
        let csv = "customer_id,order_id,date,amount,product_id,quantity\n\
                   b,7,2024-01-05,10.50,coffee,2\n\
                   a,7,2024-01-02,5,mug,\n\
                   b,7,2024-01-05,4.25,filter,1\n\
                   b,8,2024-01-01,7,coffee,1\n";
        let Parsed::Orders {
            ids,
            input,
            products: Some(lines),
            ..
        } = read_transactions(csv.as_bytes()).unwrap()
        else {
            panic!("orders with products expected")
        };
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(lines.product_ids, ["coffee", "mug", "filter"]);
        let orders: Vec<(u32, f64)> = input
            .orders
            .iter()
            .map(|o| (o.customer, o.amount))
            .collect();
        assert_eq!(orders, [(0, 7.0), (0, 14.75), (1, 5.0)]);
        let items: Vec<(u32, u32, u32, u32, i64)> = lines
            .baskets
            .items
            .iter()
            .map(|l| (l.customer, l.order, l.product, l.quantity, l.net_minor))
            .collect();
        // Orders numbered in file order: b/7 = 0, a/7 = 1, b/8 = 2; b's Jan 1 order first.
        assert_eq!(
            items,
            [
                (0, 2, 0, 1, 700),
                (0, 0, 0, 2, 1050),
                (0, 0, 2, 1, 425),
                (1, 1, 1, 1, 500)
            ]
        );
        lines.baskets.validate().unwrap();
        assert_eq!(lines.baskets.products, 3);

        // Without order_id each row is an order; bad quantities name their line.
        let csv = "customer_id,date,amount,product_id\na,2024-01-01,1,x\na,2024-01-01,2,y\n";
        let Parsed::Orders {
            input, products, ..
        } = read_transactions(csv.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(input.orders.len(), 2);
        assert_eq!(products.unwrap().baskets.items.len(), 2);
        let bad = "customer_id,date,amount,product_id,quantity\na,2024-01-01,1,x,0\n";
        assert_eq!(
            read_err(read_transactions(bad.as_bytes())),
            "line 2: quantity `0` is not a positive integer"
        );
        // A plain file has no products.
        let plain = "customer_id,date,amount\na,2024-01-01,1\n";
        let Parsed::Orders { products, .. } = read_transactions(plain.as_bytes()).unwrap() else {
            panic!()
        };
        assert!(products.is_none());
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let e = read_err(read_transactions("customer_id,date\n".as_bytes()));
        assert!(
            e.contains("line 1") && e.contains("missing column(s) amount"),
            "{e}"
        );
        let e = read_err(read_transactions(
            "customer_id,date,amount\na,2024-01-01,1\na,yesterday,2\n".as_bytes(),
        ));
        assert_eq!(e, "line 3: unparsable date `yesterday` in column `date`");
        let e = read_err(read_transactions(
            "customer_id,date,amount\na,2024-01-01,-3\n".as_bytes(),
        ));
        assert_eq!(e, "line 2: negative amount `-3` in column `amount`");
        let e = read_err(read_transactions(
            "customer_id,date,amount\na,2024-01-01,ten\n".as_bytes(),
        ));
        assert_eq!(e, "line 2: unparsable amount `ten` in column `amount`");
        assert_eq!(
            read_err(read_transactions("".as_bytes())),
            "empty file: no header line"
        );
        assert_eq!(
            read_err(read_transactions("customer_id,date,amount\n".as_bytes())),
            "no data rows"
        );
        let e = read_err(read_summary(
            "ID,frequency,recency,T\n1,2,40,38\n".as_bytes(),
            TimeUnit::Weeks,
        ));
        assert_eq!(e, "line 2: recency 40 is after T 38");
        let e = read_err(read_cdnow(" 00001 19970101 1\n".as_bytes()));
        assert!(e.starts_with("line 1: expected 4"), "{e}");
    }

    #[test]
    fn cdnow_accepts_master_and_sample_layouts() {
        let master = " customer_id  date number_of_cds  dollar_value\n 00001 19970101  1   11.77\n";
        let sample = " 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n";
        for (text, n) in [(master, 1), (sample, 2)] {
            let Parsed::Orders { input, .. } = read_cdnow(text.as_bytes()).unwrap() else {
                panic!()
            };
            assert_eq!(input.orders.len(), n);
        }
    }

    #[test]
    fn an_orders_export_uses_the_first_row_of_each_order() {
        const EXPORT: ExportColumns = ExportColumns {
            order: "Name",
            email: "Email",
            created_at: "Created at",
            total: "Total",
            cancelled_at: "Cancelled at",
            refunded: "Refunded Amount",
            discount_code: "Discount Code",
        };
        let csv = "Name,Email,Financial Status,Total,Discount Code,Created at,Lineitem name,Cancelled at,Refunded Amount\n\
#1001,A@x.com,paid,50.00,WELCOME,2024-01-02 10:00:00 -0500,Mug,,0\n\
#1001,A@x.com,,,,2024-01-02 10:00:00 -0500,Cup,,\n\
#1002,a@x.com,refunded,20.00,,2024-02-02 10:00:00 -0500,Mug,,20.00\n\
#1003,,paid,9.00,,2024-02-03 10:00:00 -0500,Mug,,\n\
#1004,b@x.com,voided,30.00,,2024-02-04 10:00:00 -0500,Mug,2024-02-05 10:00:00 -0500,\n";
        let Parsed::Orders {
            ids,
            input,
            skipped_rows,
            ..
        } = read_orders_export(csv.as_bytes(), &EXPORT).unwrap()
        else {
            panic!()
        };
        assert_eq!(ids, ["a@x.com", "b@x.com"]);
        assert_eq!(skipped_rows, 1);
        assert_eq!(input.orders.len(), 3);
        assert!(input.orders[0].discounted && input.orders[0].amount == 50.0);
        assert_eq!(input.orders[1].refunded, 20.0);
        assert!(input.orders[2].cancelled);
    }
}
