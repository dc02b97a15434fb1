//! The job input: an upload's validated assets kept in segments of consecutive assets,
//! each segment one row holding its assets' compact forms a line each, written once when
//! the upload is received. The workers read a chunk's segments; the listings read the
//! segments of the assets they show. The chunk that processes assets records their
//! outcomes: those that became meters in one row for the chunk (`chunk_outcomes`), each
//! other outcome a row of its own (`asset_outcomes`), which the listing of failed rows
//! reads through an index of its own.

use gridroll_domain::compact::{self, CompactAsset};
use gridroll_domain::{JobId, MeterData};

use crate::db::{Db, Value};
use crate::{Result, StoreError, values};

/// The most assets a segment holds: small enough that a page of a listing or one asset
/// reads little more than it shows, large enough that a million assets are a thousand
/// rows.
pub const SEGMENT_ASSETS: u64 = 1000;

/// Validated assets of an upload, in its order, in their compact form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetBatch {
    /// The position in the upload of the first asset.
    pub first_seq: u64,
    lines: Vec<String>,
    references: Vec<String>,
}

impl AssetBatch {
    pub fn new(first_seq: u64) -> Self {
        Self {
            first_seq,
            ..Self::default()
        }
    }

    /// A batch of these meters, from `first_seq` on.
    pub fn of_meters<'m>(first_seq: u64, meters: impl IntoIterator<Item = &'m MeterData>) -> Self {
        let mut batch = Self::new(first_seq);
        for meter in meters {
            batch.push(CompactAsset::of(meter));
        }
        batch
    }

    /// Adds the next asset. Its compact form is one line (JSON escapes line breaks), and
    /// so is its reference (a reference holds no control character).
    pub fn push(&mut self, asset: CompactAsset) {
        debug_assert!(!asset.data.contains('\n') && !asset.partner_reference.contains('\n'));
        self.lines.push(asset.data);
        self.references.push(asset.partner_reference);
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The batch as segments, cut so that a segment never spans a multiple of
    /// [`SEGMENT_ASSETS`] (segments line up whatever the batches).
    fn segments(&self) -> Vec<NewSegment> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < self.lines.len() {
            let first_seq = self.first_seq + at as u64;
            let room = (SEGMENT_ASSETS - first_seq % SEGMENT_ASSETS) as usize;
            let end = self.lines.len().min(at + room);
            out.push(NewSegment {
                first_seq,
                assets: (end - at) as u64,
                body: self.lines[at..end].join("\n"),
                references: self.references[at..end].join("\n"),
            });
            at = end;
        }
        out
    }
}

/// A segment about to be written. `references` holds its assets' references a line each:
/// what a search of jobs by reference looks in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NewSegment {
    first_seq: u64,
    assets: u64,
    body: String,
    references: String,
}

/// Writes a batch of a job's assets as segments, in the transaction open on `db`.
pub async fn write(db: &mut dyn Db, job: JobId, batch: &AssetBatch, now: i64) -> Result<()> {
    for s in batch.segments() {
        db.execute(
            "INSERT INTO job_segments (job_id, first_seq, assets, body, refs, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            values![job, s.first_seq, s.assets, s.body, s.references, now],
        )
        .await?;
    }
    Ok(())
}

/// A segment as stored.
#[derive(Debug, Clone)]
pub struct Segment {
    pub first_seq: u64,
    pub created_at: i64,
    body: String,
}

impl Segment {
    /// Each asset's position and compact form.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &str)> {
        (self.first_seq..).zip(self.body.split('\n'))
    }

    /// The assets from `from_seq` to before `to_seq`, read back.
    pub fn assets(&self, from_seq: u64, to_seq: u64) -> Result<Vec<(u64, CompactAsset)>> {
        self.lines()
            .skip_while(|(seq, _)| *seq < from_seq)
            .take_while(|(seq, _)| *seq < to_seq)
            .map(|(seq, line)| Ok((seq, read(line)?)))
            .collect()
    }
}

/// An asset's compact form read back, its searched values taken out.
pub fn read(line: &str) -> Result<CompactAsset> {
    compact::read_asset(line.to_owned()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The segments of a job that hold any of its assets from `from_seq` to before `to_seq`,
/// in order.
pub async fn covering(
    db: &mut dyn Db,
    job: JobId,
    from_seq: u64,
    to_seq: u64,
) -> Result<Vec<Segment>> {
    // A segment never holds more than SEGMENT_ASSETS assets, so the one holding from_seq
    // starts after from_seq - SEGMENT_ASSETS: the key bounds the range on both sides.
    let earliest = i64::try_from(from_seq).unwrap_or(i64::MAX) - SEGMENT_ASSETS as i64;
    let rows = db
        .query(
            "SELECT first_seq, assets, body, created_at FROM job_segments
             WHERE job_id = $1 AND first_seq > $2 AND first_seq < $3
             ORDER BY first_seq",
            &[Value::from(job), Value::Int(earliest), Value::from(to_seq)],
        )
        .await?;
    let mut segments = Vec::with_capacity(rows.len());
    for row in rows {
        let first_seq: u64 = row.get(0)?;
        let assets: u64 = row.get(1)?;
        if first_seq + assets <= from_seq {
            continue;
        }
        segments.push(Segment {
            first_seq,
            body: row.get(2)?,
            created_at: row.get(3)?,
        });
    }
    Ok(segments)
}

/// Removes the segments of jobs that are gone.
pub async fn remove(db: &mut dyn Db, jobs: &[Value]) -> Result<()> {
    let mut c = crate::query::Conditions::new(db.dialect());
    c.one_of("job_id", jobs.iter().cloned());
    let sql = format!("DELETE FROM job_segments WHERE {}", c.sql());
    db.execute_built(&sql, &c.params).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first_seq: u64, n: usize) -> AssetBatch {
        let mut batch = AssetBatch::new(first_seq);
        for i in 0..n {
            batch.lines.push(format!("[\"m-{i}\"]"));
            batch.references.push(format!("m-{i}"));
        }
        batch
    }

    #[test]
    fn a_batch_is_cut_into_segments_at_every_multiple_of_the_segment_size() {
        let cuts: Vec<(u64, u64)> = batch(1500, 2700)
            .segments()
            .iter()
            .map(|s| (s.first_seq, s.assets))
            .collect();
        assert_eq!(cuts, [(1500, 500), (2000, 1000), (3000, 1000), (4000, 200)]);
    }

    #[test]
    fn a_segment_holds_its_assets_a_line_each_in_order() {
        let segments = batch(0, 3).segments();
        assert_eq!(segments[0].body, "[\"m-0\"]\n[\"m-1\"]\n[\"m-2\"]");
        assert_eq!(segments[0].references, "m-0\nm-1\nm-2");
        let segment = Segment {
            first_seq: 7,
            created_at: 0,
            body: segments[0].body.clone(),
        };
        let lines: Vec<(u64, &str)> = segment.lines().collect();
        assert_eq!(lines[2], (9, "[\"m-2\"]"));
    }
}
