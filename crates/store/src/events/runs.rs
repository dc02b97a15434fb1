//! Events stored in runs. A row of `events` holds `span` consecutive events of one type,
//! the last numbered `seq`: their stored payloads one a line (a stored payload is JSON
//! text, which never holds a line break), and the id of the first, from which the others'
//! are drawn. A chunk's thousands of `meter.created` events are a few hundred rows
//! instead of one each; events recorded before runs were are runs of one.
//!
//! Readers ask for the rows that overlap the numbers they want ([`overlapping`]) and take
//! the events they want out of them ([`events`]).

use gridroll_domain::{EventId, PartnerId};
use uuid::Uuid;

use super::StoredEvent;
use crate::db::{Db, Row, Value};
use crate::{Result, StoreError, values};

/// The columns of a stored run, as [`events`] reads them.
pub const RUN_COLUMNS: &str = "seq, span, id, event_type, payload, created_at";

/// The most events one row holds. A run is read whole, and a dispatcher sends 64 events
/// a round from wherever it got to: longer runs were read again for each round (a
/// million events took four times as long to deliver with runs of 4,096). Sixteen
/// `meter.created` events are about 1.3 KB, under the size where PostgreSQL compresses
/// a row and SQLite moves part of it to an overflow page, and a chunk's 3,000 events are
/// under 200 rows rather than 3,000. Readers bound their scans by it: it may grow, but
/// never shrink below the runs already stored.
pub const LONGEST_RUN: usize = 16;

/// The id of the event `k` places after the first of a run whose id is `first`: the
/// first's with `k` added to its last 62 bits, which a version 7 id draws at random, so
/// the run's ids are distinct, as time-ordered as the first's, and the same each time
/// they are read.
pub fn nth_id(first: Uuid, k: u64) -> Uuid {
    const RANDOM: u128 = (1 << 62) - 1;
    let bits = first.as_u128();
    let random = (bits & RANDOM).wrapping_add(u128::from(k)) & RANDOM;
    Uuid::from_u128((bits & !RANDOM) | random)
}

/// The condition that picks the runs overlapping the numbers after `after` up to `upto`
/// (two placeholders): bounded on the key from above by the longest run too, so that the
/// scan stops there rather than at the partner's last event.
pub fn overlapping(after: &str, upto: &str) -> String {
    format!("seq > {after} AND seq - span < {upto} AND seq < {upto} + {LONGEST_RUN}")
}

/// The events of a stored run (read with [`RUN_COLUMNS`]) whose numbers are `wanted`, in
/// order, their payloads written out.
pub fn events(row: &Row, wanted: impl Fn(u64) -> bool) -> Result<Vec<StoredEvent>> {
    let last: u64 = row.get(0)?;
    let span: u64 = row.get(1)?;
    let first_id: Uuid = row.get(2)?;
    let event_type: String = row.get(3)?;
    let payloads: String = row.get(4)?;
    let created_at: i64 = row.get(5)?;
    let first = (last + 1)
        .checked_sub(span)
        .filter(|_| span > 0)
        .ok_or_else(|| {
            StoreError::Corrupt(format!("the run of events up to {last} spans {span}"))
        })?;
    let mut found = Vec::new();
    // A run of one is its payload whole, whatever an earlier release wrote in it.
    let mut lines = payloads.splitn(usize::try_from(span).unwrap_or(usize::MAX), '\n');
    for (k, seq) in (first..=last).enumerate() {
        let payload = lines.next().ok_or_else(|| {
            StoreError::Corrupt(format!("the run of events up to {last} lacks event {seq}"))
        })?;
        if !wanted(seq) {
            continue;
        }
        let payload = gridroll_domain::event::payload_json(&event_type, payload.to_owned())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        found.push(StoredEvent {
            seq,
            id: EventId::from_uuid(nth_id(first_id, k as u64)),
            event_type: event_type.clone(),
            payload,
            created_at,
        });
    }
    Ok(found)
}

/// The stored run that holds the partner's event `seq`, if it is still kept: one probe
/// of the key.
pub async fn holding(db: &mut dyn Db, partner: PartnerId, seq: u64) -> Result<Option<Row>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM events WHERE partner_id = $1 AND seq >= $2
         ORDER BY seq LIMIT 1"
    );
    let Some(run) = db.query_opt(&sql, values![partner, seq]).await? else {
        return Ok(None);
    };
    let (last, span): (u64, u64) = (run.get(0)?, run.get(1)?);
    Ok((last - seq < span).then_some(run))
}

/// The rows a run of events is written as: the events, numbered from `first` on, cut
/// into runs of one type (at most [`LONGEST_RUN`] long), each its row's values
/// (`partner` and `now` around [`RUN_COLUMNS`]' order: partner, seq, span, id, type,
/// payload, created_at).
pub fn rows(partner: Value, first: u64, events: &[(&str, String)], now: i64) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let event_type = events[start].0;
        let run = events[start..]
            .iter()
            .take(LONGEST_RUN)
            .take_while(|(t, _)| *t == event_type)
            .count();
        let payloads: Vec<&str> = events[start..start + run]
            .iter()
            .map(|(_, p)| p.as_str())
            .collect();
        let last = first + (start + run) as u64 - 1;
        rows.push(vec![
            partner.clone(),
            Value::from(last),
            Value::from(run),
            Value::Uuid(Uuid::now_v7()),
            Value::from(event_type),
            Value::Text(payloads.join("\n")),
            now.into(),
        ]);
        start += run;
    }
    rows
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::{LONGEST_RUN, events, nth_id, rows};
    use crate::db::{Row, Value};

    #[test]
    fn a_run_is_read_back_as_its_events_and_a_run_of_one_as_its_payload_whole() {
        let first = Uuid::now_v7();
        let run = Row(vec![
            Value::Int(12),
            Value::Int(3),
            Value::Uuid(first),
            Value::from("job.completed"),
            Value::from("{\"n\":10}\n{\"n\":11}\n{\"n\":12}"),
            Value::Int(7),
        ]);
        let read = events(&run, |seq| seq >= 11).unwrap();
        let seqs: Vec<(u64, &str)> = read.iter().map(|e| (e.seq, e.payload.as_str())).collect();
        assert_eq!(seqs, [(11, "{\"n\":11}"), (12, "{\"n\":12}")]);
        assert_eq!(*read[0].id.as_uuid(), nth_id(first, 1));
        let mut one = run.clone();
        one.0[0] = Value::Int(4);
        one.0[1] = Value::Int(1);
        one.0[4] = Value::from("{\n  \"written\": \"pretty\"\n}");
        let read = events(&one, |_| true).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].payload, "{\n  \"written\": \"pretty\"\n}");
        assert_eq!(*read[0].id.as_uuid(), first);
        let mut short = run;
        short.0[4] = Value::from("{}");
        assert!(
            events(&short, |_| true).is_err(),
            "a run lacking events is corrupt"
        );
    }

    #[test]
    fn events_are_cut_into_runs_of_one_type_no_longer_than_the_longest() {
        let mut events: Vec<(&str, String)> = (0..LONGEST_RUN * 2 + 8)
            .map(|n| ("meter.created", format!("[{n}]")))
            .collect();
        events.push(("job.completed", "{}".to_owned()));
        let rows = rows(Value::Int(0), 101, &events, 7);
        let runs: Vec<(&Value, &Value, &Value)> =
            rows.iter().map(|r| (&r[1], &r[2], &r[4])).collect();
        let longest = LONGEST_RUN as i64;
        let last = 100 + 2 * longest + 8;
        assert_eq!(
            runs,
            [
                (
                    &Value::Int(100 + longest),
                    &Value::Int(longest),
                    &Value::from("meter.created")
                ),
                (
                    &Value::Int(100 + 2 * longest),
                    &Value::Int(longest),
                    &Value::from("meter.created")
                ),
                (
                    &Value::Int(last),
                    &Value::Int(8),
                    &Value::from("meter.created")
                ),
                (
                    &Value::Int(last + 1),
                    &Value::Int(1),
                    &Value::from("job.completed")
                ),
            ]
        );
        let payloads = |row: &[Value]| match &row[5] {
            Value::Text(t) => t.lines().count(),
            other => panic!("a payload as {other:?}"),
        };
        assert_eq!(payloads(&rows[0]), LONGEST_RUN);
        assert_eq!(payloads(&rows[2]), 8);
    }

    #[test]
    fn the_ids_of_a_run_are_distinct_version_seven_ids() {
        let first = Uuid::now_v7();
        let ids: Vec<Uuid> = (0..5000).map(|k| nth_id(first, k)).collect();
        assert_eq!(ids[0], first);
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(
            ids.iter()
                .all(|id| id.get_variant() == uuid::Variant::RFC4122)
        );
        // Wrapping within the random bits keeps the timestamp.
        let last = Uuid::from_u128(first.as_u128() | ((1 << 62) - 1));
        assert_eq!(nth_id(last, 1).get_timestamp(), last.get_timestamp());
    }
}
