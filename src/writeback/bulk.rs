//! The bulk path for a large label push, where the platform has one (`BulkLabels`): the adding
//! lines and the removing lines each go as bulk calls, one after the other (a shop may run
//! one at a time), each no larger than the platform's upload limit. A customer is confirmed
//! only by verdicts without errors for all of its writes, through the same record step as the
//! ordinary path; a refused line is recorded as rejected. A call that fails as a whole
//! confirms nothing and fails the push so the job retries: label writes are idempotent and the
//! retry re-plans from the confirmed state, so a crash between a call and its confirmation
//! converges too.

use chrono::{DateTime, Utc};

use super::tags::{TagStats, TagWork, ops_of, record};
use super::{Stop, WritebackError, client_or_stop};
use crate::state::AppState;

fn bulk_error(e: impl std::fmt::Display) -> WritebackError {
    WritebackError::Bulk(e.to_string())
}

/// Pushes `works` as bulk mutations. `Err(Stop)` as in the aliased path: the shop went away
/// between operations.
pub async fn push(
    state: &AppState,
    shop_id: i64,
    run_id: Option<i64>,
    works: &[TagWork],
    now: DateTime<Utc>,
) -> Result<(TagStats, Option<Stop>), WritebackError> {
    let mut stats = TagStats::default();
    // Per customer: writes without a result line yet, and the first refusal.
    let mut outstanding: Vec<usize> = works.iter().map(|w| ops_of(w).len()).collect();
    let mut refused: Vec<Option<String>> = vec![None; works.len()];
    for add in [true, false] {
        let client = match client_or_stop(state, shop_id).await? {
            Ok(c) => c,
            Err(stop) => return Ok((stats, Some(stop))),
        };
        let Some(bulk) = client.bulk_labels() else {
            return Err(bulk_error("the platform has no bulk label writes"));
        };
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (i, w) in works.iter().enumerate() {
            for op in ops_of(w).into_iter().filter(|op| op.add == add) {
                lines.push((i, bulk.line(&op)));
            }
        }
        let limit = bulk.upload_limit();
        drop(client);
        for chunk in chunks(&lines, limit) {
            let client = match client_or_stop(state, shop_id).await? {
                Ok(c) => c,
                Err(stop) => return Ok((stats, Some(stop))),
            };
            let Some(bulk) = client.bulk_labels() else {
                return Err(bulk_error("the platform has no bulk label writes"));
            };
            let texts: Vec<&str> = chunk.iter().map(|(_, l)| l.as_str()).collect();
            let results = bulk
                .run(add, &texts, &mut stats.requests)
                .await
                .map_err(|e| WritebackError::from_bulk(e, shop_id, client.as_ref()))?;
            stats.bulk_operations += 1;
            stats.writes += chunk.len();
            let mut done = Vec::new();
            let mut missing = 0;
            for (pos, (i, _)) in chunk.iter().enumerate() {
                match results.get(pos).cloned().flatten() {
                    Some(outcome) => {
                        if let Err(msg) = outcome {
                            refused[*i].get_or_insert(msg);
                        }
                        outstanding[*i] -= 1;
                        if outstanding[*i] == 0 {
                            done.push(*i);
                        }
                    }
                    None => missing += 1,
                }
            }
            let outcomes: Vec<_> = done
                .iter()
                .map(|&i| (&works[i], refused[i].as_deref()))
                .collect();
            record(state, shop_id, run_id, &outcomes, &mut stats, now).await?;
            if missing > 0 {
                return Err(bulk_error(format!(
                    "{missing} of {} lines have no result line",
                    chunk.len()
                )));
            }
        }
    }
    Ok((stats, None))
}

/// Splits the lines so no operation's file exceeds `limit` bytes (a longer line goes alone).
fn chunks(lines: &[(usize, String)], limit: usize) -> Vec<&[(usize, String)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (k, (_, line)) in lines.iter().enumerate() {
        if bytes + line.len() + 1 > limit && k > start {
            out.push(&lines[start..k]);
            (start, bytes) = (k, 0);
        }
        bytes += line.len() + 1;
    }
    if start < lines.len() {
        out.push(&lines[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_line_once_and_in_order() {
        let lines: Vec<(usize, String)> = (0..5).map(|i| (i, "x".repeat(10))).collect();
        assert_eq!(chunks(&lines, 1000).len(), 1);
        // 11 bytes a line with its newline: two fit in 25 bytes.
        let split = chunks(&lines, 25);
        assert_eq!(split.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 1]);
        let order: Vec<usize> = split
            .iter()
            .flat_map(|c| c.iter().map(|(i, _)| *i))
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
        assert_eq!(chunks(&lines, 5).len(), 5, "an oversized line goes alone");
        assert!(chunks(&[], 25).is_empty());
    }
}
