//! Reading a partner's provisional assets: each asset from its job's segments, with its
//! outcome once processing gave it one. A listing walks the partner's jobs newest first
//! and each job's assets in upload order, a window of segments at a time, and keeps the
//! assets its filter takes; a filter on the statuses of assets that did not become
//! meters reads those assets' outcomes first, through their own index, and only their
//! segments.

use std::collections::HashMap;

use gridroll_domain::compact::CompactAsset;
use gridroll_domain::job::{self, AssetStatus, StatusName};
use gridroll_domain::{JobId, MeterId, PartnerId};

use super::chunk;
use super::segments::{self, SEGMENT_ASSETS, Segment};
use crate::db::{Db, Row, Value};
use crate::model::{AssetField, AssetFilter, AssetState, ProvisionalAsset};
use crate::{Result, evaluate, values};

/// Assets read per window of a listing.
const WINDOW: u64 = 4 * SEGMENT_ASSETS;

/// Jobs read per statement while a listing walks a partner's jobs.
const JOBS_PER_READ: usize = 100;

/// What processing made of an asset.
struct Outcome {
    status: AssetStatus,
    name: Option<StatusName>,
    description: Option<String>,
    meter_id: Option<MeterId>,
}

impl From<job::Outcome> for Outcome {
    fn from(outcome: job::Outcome) -> Self {
        Self {
            status: outcome.status,
            name: Some(outcome.name),
            description: (!outcome.description.is_empty()).then_some(outcome.description),
            meter_id: outcome.meter_id,
        }
    }
}

/// One asset as a listing sees it.
struct Listed {
    seq: u64,
    asset: CompactAsset,
    outcome: Option<Outcome>,
    created_at: i64,
}

impl Listed {
    fn status(&self) -> AssetStatus {
        self.outcome
            .as_ref()
            .map_or(AssetStatus::Processing, |o| o.status)
    }

    fn state(&self) -> AssetState {
        let outcome = self.outcome.as_ref();
        AssetState {
            seq: self.seq,
            partner_reference: self.asset.partner_reference.clone(),
            status: self.status(),
            status_name: outcome.and_then(|o| o.name),
            status_description: outcome.and_then(|o| o.description.clone()),
            meter_id: outcome.and_then(|o| o.meter_id),
            created_at: self.created_at,
        }
    }

    fn provisional(self, job: JobId) -> Result<ProvisionalAsset> {
        let state = self.state();
        Ok(ProvisionalAsset {
            job_id: job,
            state,
            data: evaluate::parse_input(&self.asset.data)?,
        })
    }
}

/// The outcomes of a job's assets from `from_seq` to before `to_seq`, by sequence: those
/// kept a row each, and those of the assets that became meters, kept a row per chunk.
async fn outcomes(
    db: &mut dyn Db,
    job: JobId,
    from_seq: u64,
    to_seq: u64,
) -> Result<HashMap<u64, Outcome>> {
    let rows = db
        .query(
            "SELECT seq, status, status_name, status_description, meter_id FROM asset_outcomes
             WHERE job_id = $1 AND seq >= $2 AND seq < $3",
            values![job, from_seq, to_seq],
        )
        .await?;
    let mut found: HashMap<u64, Outcome> = rows
        .iter()
        .map(|row| Ok((row.get(0)?, outcome(row)?)))
        .collect::<Result<_>>()?;
    let chunks = db
        .query(
            "SELECT first_seq, kinds, meter_ids FROM chunk_outcomes
             WHERE job_id = $1 AND first_seq < $3 AND first_seq + assets > $2",
            values![job, from_seq, to_seq],
        )
        .await?;
    for row in chunks {
        let (first, kinds, ids): (u64, String, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        for (seq, outcome) in chunk::chunk_outcomes(first, &kinds, &ids)? {
            if (from_seq..to_seq).contains(&seq) {
                found.insert(seq, outcome.into());
            }
        }
    }
    Ok(found)
}

fn outcome(row: &Row) -> Result<Outcome> {
    let name: Option<StatusName> = row.parse_opt(2)?;
    let kept: Option<String> = row.get(3)?;
    Ok(Outcome {
        status: row.parse(1)?,
        name,
        // A completed asset's description is its name's, kept once (see
        // `Outcome::kept_description`).
        description: kept.or_else(|| {
            name.and_then(StatusName::fixed_description)
                .map(str::to_owned)
        }),
        meter_id: row.get(4)?,
    })
}

/// A job's assets from `from_seq` to before `to_seq`, with their outcomes.
async fn window(db: &mut dyn Db, job: JobId, from_seq: u64, to_seq: u64) -> Result<Vec<Listed>> {
    let segments = segments::covering(db, job, from_seq, to_seq).await?;
    let mut outcomes = outcomes(db, job, from_seq, to_seq).await?;
    let mut listed = Vec::new();
    for segment in &segments {
        for (seq, asset) in segment.assets(from_seq, to_seq)? {
            listed.push(Listed {
                seq,
                asset,
                outcome: outcomes.remove(&seq),
                created_at: segment.created_at,
            });
        }
    }
    Ok(listed)
}

/// The number of assets of a job of the partner's that has been received, if it is one.
async fn job_size(db: &mut dyn Db, partner: PartnerId, job: JobId) -> Result<Option<u64>> {
    db.query_opt(
        "SELECT assets_count FROM jobs WHERE id = $1 AND partner_id = $2 AND status <> 'RECEIVING'",
        values![job, partner],
    )
    .await?
    .map(|row| row.get(0))
    .transpose()
}

/// The state of up to `limit` assets of a job from `from_seq` on, in upload order.
pub async fn of_job(
    db: &mut dyn Db,
    partner: PartnerId,
    job: JobId,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<AssetState>> {
    let Some(size) = job_size(db, partner, job).await? else {
        return Ok(Vec::new());
    };
    let to_seq = size.min(from_seq.saturating_add(limit as u64));
    let mut states = Vec::with_capacity(limit.min(1 << 16));
    let mut at = from_seq;
    while at < to_seq {
        let end = to_seq.min(at + WINDOW);
        states.extend(window(db, job, at, end).await?.iter().map(Listed::state));
        at = end;
    }
    Ok(states)
}

/// One asset of a job, with its data.
pub async fn one(
    db: &mut dyn Db,
    partner: PartnerId,
    job: JobId,
    seq: u64,
) -> Result<Option<ProvisionalAsset>> {
    if job_size(db, partner, job)
        .await?
        .is_none_or(|size| seq >= size)
    {
        return Ok(None);
    }
    window(db, job, seq, seq + 1)
        .await?
        .pop()
        .map(|listed| listed.provisional(job))
        .transpose()
}

/// Whether the filter takes an asset.
fn takes(filter: &AssetFilter, listed: &Listed) -> Result<bool> {
    let asset = &listed.asset;
    let holds = filter
        .statuses
        .as_ref()
        .is_none_or(|s| s.contains(&listed.status()))
        && filter
            .transmission_regions
            .as_ref()
            .is_none_or(|r| r.contains(&asset.transmission_region))
        && filter
            .customer_classifications
            .as_ref()
            .is_none_or(|c| c.contains(&asset.customer_classification))
        && filter
            .meter_types
            .as_ref()
            .is_none_or(|t| t.contains(&asset.meter_type))
        && filter
            .partner_references
            .as_ref()
            .is_none_or(|r| r.contains(&asset.partner_reference));
    match &filter.search {
        Some(search) if holds => matches_search(&search.terms, &search.fields, asset),
        _ => Ok(holds),
    }
}

/// Whether any of `terms` occurs, whatever its case, in any of `fields` of the asset.
fn matches_search(terms: &[String], fields: &[AssetField], asset: &CompactAsset) -> Result<bool> {
    let terms: Vec<String> = terms.iter().map(|t| t.to_lowercase()).collect();
    let data = if fields.iter().any(|f| f.path().is_some()) {
        Some(evaluate::parse_input(&asset.data)?)
    } else {
        None
    };
    let value = |field: &AssetField| -> Option<String> {
        match field.path() {
            None if *field == AssetField::PartnerReference => Some(asset.partner_reference.clone()),
            None => asset.customer_group.clone(),
            Some(path) => data.as_ref()?.get(path).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    };
    Ok(fields.iter().filter_map(value).any(|text| {
        let text = text.to_lowercase();
        terms.iter().any(|t| text.contains(t.as_str()))
    }))
}

/// Whether the filter asks only for assets that did not become meters: those are found
/// from their outcomes rather than by reading every asset.
fn only_unmade(filter: &AssetFilter) -> Option<Vec<String>> {
    let statuses = filter.statuses.as_ref()?;
    if statuses
        .iter()
        .any(|s| matches!(s, AssetStatus::Completed | AssetStatus::Processing))
    {
        return None;
    }
    Some(statuses.iter().map(ToString::to_string).collect())
}

/// The partner's jobs a listing walks, newest first from `from` (inclusive), a read at a
/// time.
struct Jobs<'f> {
    partner: PartnerId,
    filter: &'f AssetFilter,
    next: Option<JobId>,
    inclusive: bool,
    read: std::vec::IntoIter<(JobId, u64)>,
    done: bool,
}

impl<'f> Jobs<'f> {
    fn new(partner: PartnerId, filter: &'f AssetFilter, from: Option<JobId>) -> Self {
        Self {
            partner,
            filter,
            next: from,
            inclusive: true,
            read: Vec::new().into_iter(),
            done: false,
        }
    }

    async fn next(&mut self, db: &mut dyn Db) -> Result<Option<(JobId, u64)>> {
        if let Some(job) = self.read.next() {
            return Ok(Some(job));
        }
        if self.done {
            return Ok(None);
        }
        let mut c = crate::query::Conditions::new(db.dialect());
        c.eq("partner_id", Value::from(self.partner));
        c.push("status <> 'RECEIVING'");
        if let Some(ids) = &self.filter.job_ids {
            c.one_of("id", ids.iter().map(|id| Value::from(*id)));
        }
        if let Some(from) = self.next {
            let p = c.bind(Value::from(from));
            c.push(format!(
                "id {} {p}",
                if self.inclusive { "<=" } else { "<" }
            ));
        }
        let limit = c.bind(Value::Int(JOBS_PER_READ as i64));
        let sql = format!(
            "SELECT id, assets_count FROM jobs WHERE {} ORDER BY id DESC LIMIT {limit}",
            c.sql()
        );
        let jobs: Vec<(JobId, u64)> = db
            .query_built(&sql, &c.params)
            .await?
            .iter()
            .map(|row| Ok((row.get(0)?, row.get(1)?)))
            .collect::<Result<_>>()?;
        self.done = jobs.len() < JOBS_PER_READ;
        self.next = jobs.last().map(|(id, _)| *id);
        self.inclusive = false;
        self.read = jobs.into_iter();
        Ok(self.read.next())
    }
}

/// Calls `visit` with each asset the filter takes, newest job first and in upload order,
/// after `after` (job, seq), until it answers false.
async fn walk(
    db: &mut dyn Db,
    partner: PartnerId,
    filter: &AssetFilter,
    after: Option<(JobId, u64)>,
    visit: &mut (dyn FnMut(JobId, Listed) -> Result<bool> + Send),
) -> Result<()> {
    let unmade = only_unmade(filter);
    let mut jobs = Jobs::new(partner, filter, after.map(|(job, _)| job));
    while let Some((job, size)) = jobs.next(db).await? {
        let from_seq = match after {
            Some((first, seq)) if first == job => seq + 1,
            _ => 0,
        };
        let more = match &unmade {
            Some(statuses) => walk_unmade(db, job, from_seq, statuses, filter, visit).await?,
            None => walk_job(db, job, from_seq, size, filter, visit).await?,
        };
        if !more {
            return Ok(());
        }
    }
    Ok(())
}

/// Every asset of one job from `from_seq` on, a window at a time.
async fn walk_job(
    db: &mut dyn Db,
    job: JobId,
    from_seq: u64,
    size: u64,
    filter: &AssetFilter,
    visit: &mut (dyn FnMut(JobId, Listed) -> Result<bool> + Send),
) -> Result<bool> {
    let mut at = from_seq;
    while at < size {
        let end = size.min(at + WINDOW);
        for listed in window(db, job, at, end).await? {
            if takes(filter, &listed)? && !visit(job, listed)? {
                return Ok(false);
            }
        }
        at = end;
    }
    Ok(true)
}

/// The assets of one job with one of `statuses` (none of them a meter's), from their
/// outcomes, a page at a time, then the segments that hold them.
async fn walk_unmade(
    db: &mut dyn Db,
    job: JobId,
    from_seq: u64,
    statuses: &[String],
    filter: &AssetFilter,
    visit: &mut (dyn FnMut(JobId, Listed) -> Result<bool> + Send),
) -> Result<bool> {
    let mut from_seq = from_seq;
    loop {
        let found = unmade_outcomes(db, job, from_seq, statuses).await?;
        let Some((last, _)) = found.last() else {
            return Ok(true);
        };
        let (next, full) = (last + 1, found.len() == OUTCOMES_PER_READ);
        let mut found = found.into_iter().peekable();
        while let Some((seq, _)) = found.peek() {
            // The segment that holds the next one, and those of it that it holds.
            let segment: Segment = segments::covering(db, job, *seq, seq + 1)
                .await?
                .pop()
                .ok_or_else(|| {
                    crate::StoreError::Corrupt(format!("job {job}: no segment for {seq}"))
                })?;
            let lines: Vec<&str> = segment.lines().map(|(_, line)| line).collect();
            while let Some((seq, _)) = found.peek() {
                let Some(line) = seq
                    .checked_sub(segment.first_seq)
                    .and_then(|at| lines.get(at as usize))
                else {
                    break;
                };
                let line = *line;
                let (seq, outcome) = found.next().expect("peeked");
                let listed = Listed {
                    seq,
                    asset: segments::read(line)?,
                    outcome: Some(outcome),
                    created_at: segment.created_at,
                };
                if takes(filter, &listed)? && !visit(job, listed)? {
                    return Ok(false);
                }
            }
        }
        if !full {
            return Ok(true);
        }
        from_seq = next;
    }
}

/// Outcomes of failures read per statement.
const OUTCOMES_PER_READ: usize = 1000;

/// The next outcomes of a job with one of `statuses` (none of them a meter's), from
/// `from_seq` on, through the index that holds only those.
async fn unmade_outcomes(
    db: &mut dyn Db,
    job: JobId,
    from_seq: u64,
    statuses: &[String],
) -> Result<Vec<(u64, Outcome)>> {
    let mut c = crate::query::Conditions::new(db.dialect());
    c.eq("job_id", Value::from(job));
    c.push("status <> 'COMPLETED'");
    c.one_of("status", statuses.iter().map(|s| Value::Text(s.clone())));
    let from = c.bind(Value::from(from_seq));
    c.push(format!("seq >= {from}"));
    let limit = c.bind(Value::from(OUTCOMES_PER_READ));
    let sql = format!(
        "SELECT seq, status, status_name, status_description, meter_id FROM asset_outcomes
         WHERE {} ORDER BY seq LIMIT {limit}",
        c.sql()
    );
    db.query_built(&sql, &c.params)
        .await?
        .iter()
        .map(|row| Ok((row.get(0)?, outcome(row)?)))
        .collect()
}

/// A page of a partner's provisional assets: newest job first, each job's assets in
/// upload order, after `after` (job, seq).
pub async fn list(
    db: &mut dyn Db,
    partner: PartnerId,
    filter: &AssetFilter,
    after: Option<(JobId, u64)>,
    limit: usize,
) -> Result<Vec<ProvisionalAsset>> {
    let mut page = Vec::new();
    if limit == 0 {
        return Ok(page);
    }
    walk(db, partner, filter, after, &mut |job, listed| {
        page.push(listed.provisional(job)?);
        Ok(page.len() < limit)
    })
    .await?;
    Ok(page)
}

/// The most site devices any asset the filter takes has.
pub async fn max_site_devices(
    db: &mut dyn Db,
    partner: PartnerId,
    filter: &AssetFilter,
) -> Result<usize> {
    let mut most = 0;
    walk(db, partner, filter, None, &mut |_, listed| {
        let data = evaluate::parse_input(&listed.asset.data)?;
        let devices = data
            .get("site.site_devices")
            .and_then(serde_json::Value::as_array)
            .map_or(0, Vec::len);
        most = most.max(devices);
        Ok(true)
    })
    .await?;
    Ok(most)
}

/// The statuses a partner's assets have: those of the assets that did not become meters
/// from their outcomes, `COMPLETED` and `PROCESSING` from the jobs' counts.
pub async fn statuses(db: &mut dyn Db, partner: PartnerId) -> Result<Vec<String>> {
    let mut found: Vec<String> = db
        .query(
            "SELECT DISTINCT o.status FROM jobs j
             JOIN asset_outcomes o ON o.job_id = j.id AND o.status <> 'COMPLETED'
             WHERE j.partner_id = $1",
            values![partner],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect::<Result<_>>()?;
    let row = db
        .query_one(
            "SELECT
                 coalesce(max(CASE WHEN created_count + updated_count > 0 THEN 1 ELSE 0 END), 0),
                 coalesce(max(CASE WHEN status = 'PROCESSING' THEN 1 ELSE 0 END), 0)
             FROM jobs WHERE partner_id = $1",
            values![partner],
        )
        .await?;
    let (completed, processing): (i64, i64) = (row.get(0)?, row.get(1)?);
    if completed > 0 {
        found.push(AssetStatus::Completed.as_ref().to_owned());
    }
    if processing > 0 {
        found.push(AssetStatus::Processing.as_ref().to_owned());
    }
    Ok(found)
}
