//! A partner's meters: reading them one at a time and by search, the overview the
//! dashboard shows, and importing meters that reach the platform by another channel.

pub(crate) mod changes;
mod import;

use async_trait::async_trait;
use gridroll_domain::enums::{CreatedBy, EnrollmentStatus};
use gridroll_domain::{MeterData, MeterId, PartnerId};
use strum::VariantNames;

pub use changes::{Applied, EditError, MeterEdit, Taken, Unknown};

use crate::db::{Db, Row};
use crate::engine::{Engine, Work};
use crate::model::{Meter, MeterFilter, StoredMeter};
use crate::reads::{self, METER_COLUMNS, STORED_METER_COLUMNS};
use crate::{Result, StoreError, rows, values, work};

/// Reading and importing meters.
#[async_trait]
pub trait MeterStore: Send + Sync {
    /// How many meters a partner has, by enrollment status and by region.
    async fn meter_overview(&self, partner: PartnerId) -> Result<MeterOverview>;
    async fn get_meter(&self, partner: PartnerId, meter: MeterId) -> Result<Option<Meter>>;
    /// A meter with its data as stored (JSON text), for the hot read of its details.
    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>>;
    /// A page of a partner's meters in creation order, after `after`.
    async fn search_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<Meter>>;
    /// The same page as [`MeterStore::search_meters`], each meter with its data as stored,
    /// for answering the details of many without decoding them.
    async fn search_stored_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<StoredMeter>>;
    /// Stores meters that reach the platform by another channel than the partner's own
    /// uploads; they may share a `partner_reference` with each other and with the
    /// partner's meters.
    async fn import_meters(
        &self,
        partner: PartnerId,
        created_by: CreatedBy,
        meters: Vec<MeterData>,
        now: i64,
    ) -> Result<Vec<MeterId>>;
    /// Changes meters of a partner (tags, references, archiving, participation), all or
    /// none; meters that are not the partner's are refused or skipped as `unknown` says.
    async fn change_meters(
        &self,
        partner: PartnerId,
        edits: &[MeterEdit],
        unknown: Unknown,
        now: i64,
    ) -> Result<Applied, EditError>;
}

/// A meter with its data as stored, read on `db` (the backends' hot path runs it).
pub async fn stored_meter(
    db: &mut dyn Db,
    partner: PartnerId,
    meter: MeterId,
) -> Result<Option<StoredMeter>> {
    let sql =
        format!("SELECT {STORED_METER_COLUMNS} FROM meters WHERE id = $1 AND partner_id = $2");
    db.query_opt(&sql, values![meter, partner])
        .await?
        .as_ref()
        .map(rows::stored_meter)
        .transpose()
}

/// The read of a page of meters: the search's statement, each row read as `row`.
fn page_of<T: Send + 'static>(query: reads::Query, row: fn(&Row) -> Result<T>) -> Work<Vec<T>> {
    work!(db => async move {
        db.query_built(&query.sql, &query.params)
            .await?
            .iter()
            .map(row)
            .collect()
    })
}

#[async_trait]
impl<E: Engine> MeterStore for E {
    async fn meter_overview(&self, partner: PartnerId) -> Result<MeterOverview> {
        self.read(work!(db => async move {
            let rows = db.query(&MeterOverview::sql("$1"), values![partner]).await?;
            let rows = rows
                .iter()
                .map(|row| {
                    let counts = (1..row.0.len())
                        .map(|i| row.get::<u64>(i))
                        .collect::<Result<Vec<u64>>>()?;
                    Ok((row.get::<String>(0)?, counts))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(MeterOverview::from_rows(rows))
        }))
        .await
    }

    async fn get_meter(&self, partner: PartnerId, meter: MeterId) -> Result<Option<Meter>> {
        self.read_point(work!(db => async move {
            let sql = format!("SELECT {METER_COLUMNS} FROM meters WHERE id = $1 AND partner_id = $2");
            db.query_opt(&sql, values![meter, partner])
                .await?
                .as_ref()
                .map(rows::meter)
                .transpose()
        }))
        .await
    }

    async fn get_stored_meter(
        &self,
        partner: PartnerId,
        meter: MeterId,
    ) -> Result<Option<StoredMeter>> {
        Engine::get_stored_meter(self, partner, meter).await
    }

    async fn search_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<Meter>> {
        let query =
            reads::search_meters(self.dialect(), METER_COLUMNS, partner, filter, after, limit);
        self.read(page_of(query, rows::meter)).await
    }

    async fn search_stored_meters(
        &self,
        partner: PartnerId,
        filter: &MeterFilter,
        after: Option<MeterId>,
        limit: usize,
    ) -> Result<Vec<StoredMeter>> {
        let query = reads::search_meters(
            self.dialect(),
            STORED_METER_COLUMNS,
            partner,
            filter,
            after,
            limit,
        );
        self.read(page_of(query, rows::stored_meter)).await
    }

    async fn import_meters(
        &self,
        partner: PartnerId,
        created_by: CreatedBy,
        meters: Vec<MeterData>,
        now: i64,
    ) -> Result<Vec<MeterId>> {
        let feed = self.event_feed();
        self.write(work!(db => async move {
            import::import_meters(db, partner, created_by, &meters, feed, now).await
        }))
        .await
    }

    async fn change_meters(
        &self,
        partner: PartnerId,
        edits: &[MeterEdit],
        unknown: Unknown,
        now: i64,
    ) -> Result<Applied, EditError> {
        let (edits, feed) = (edits.to_vec(), self.event_feed());
        // A refusal is decided before anything is written, so committing it is harmless.
        let decided = self
            .write(work!(db => async move {
                match changes::change_meters(db, partner, &edits, unknown, feed, now).await {
                    Err(EditError::Store(e)) => Err(e),
                    decided => Ok(decided),
                }
            }))
            .await;
        match decided {
            Ok(decided) => decided,
            // Another process claimed a reference between the check and the write.
            Err(StoreError::Conflict) => Err(EditError::ReferenceTaken(Vec::new())),
            Err(e) => Err(e.into()),
        }
    }
}

/// Counts of a partner's meters for an overview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterOverview {
    pub total: u64,
    /// Meters that need something from the partner.
    pub action_required: u64,
    /// Global enrollment status and how many meters have it.
    pub by_status: Vec<(String, u64)>,
    /// Transmission region and how many meters are in it.
    pub by_region: Vec<(String, u64)>,
}

impl MeterOverview {
    /// The query of an overview: one scan of the index that pages a region (it carries
    /// the status and the action flag), grouped by region in index order, with the
    /// statuses counted side by side. `$partner` is the dialect's first placeholder.
    pub(crate) fn sql(partner: &str) -> String {
        let statuses: String = EnrollmentStatus::VARIANTS
            .iter()
            .map(|status| {
                format!(", count(*) FILTER (WHERE global_enrollment_status = '{status}')")
            })
            .collect();
        format!(
            "SELECT transmission_region, count(*),
                    count(*) FILTER (WHERE partner_action_required){statuses}
             FROM meters WHERE partner_id = {partner} GROUP BY transmission_region"
        )
    }

    /// Sums the rows of [`MeterOverview::sql`]: region, meters, meters needing an action,
    /// then the meters of each status in the order of `EnrollmentStatus::VARIANTS`.
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (String, Vec<u64>)>) -> Self {
        let mut overview = Self::default();
        let mut by_status = vec![0u64; EnrollmentStatus::VARIANTS.len()];
        for (region, counts) in rows {
            let (total, action) = (counts[0], counts[1]);
            overview.total += total;
            overview.action_required += action;
            for (sum, n) in by_status.iter_mut().zip(&counts[2..]) {
                *sum += n;
            }
            overview.by_region.push((region, total));
        }
        overview.by_status = EnrollmentStatus::VARIANTS
            .iter()
            .zip(by_status)
            .filter(|(_, n)| *n > 0)
            .map(|(status, n)| ((*status).to_owned(), n))
            .collect();
        overview
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridroll_domain::enums::EnrollmentStatus;

    #[test]
    fn an_overview_sums_the_regions_and_lists_only_statuses_that_occur() {
        let statuses = EnrollmentStatus::VARIANTS.len();
        let counts = |total: u64, action: u64, per: &[(&str, u64)]| {
            let mut row = vec![total, action];
            row.extend(
                EnrollmentStatus::VARIANTS
                    .iter()
                    .map(|v| per.iter().find(|(s, _)| s == v).map_or(0, |(_, n)| *n)),
            );
            assert_eq!(row.len(), statuses + 2);
            row
        };
        let overview = MeterOverview::from_rows([
            (
                "CAISO".to_owned(),
                counts(5, 3, &[("ELIGIBLE", 3), ("PENDING", 2)]),
            ),
            ("ERCOT".to_owned(), counts(5, 0, &[("ELIGIBLE", 5)])),
        ]);
        assert_eq!(overview.total, 10);
        assert_eq!(overview.action_required, 3);
        let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
            pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
        };
        assert_eq!(
            overview.by_status,
            owned(&[("ELIGIBLE", 8), ("PENDING", 2)])
        );
        assert_eq!(overview.by_region, owned(&[("CAISO", 5), ("ERCOT", 5)]));
    }

    #[test]
    fn the_overview_query_counts_every_status() {
        let sql = MeterOverview::sql("?1");
        for status in EnrollmentStatus::VARIANTS {
            assert!(sql.contains(&format!("= '{status}'")), "{status}");
        }
    }
}
