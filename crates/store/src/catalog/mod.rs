//! The program catalog, the programs each partner may use, and the operator's changes to
//! a meter's enrollments (activation, refresh); a partner's participation changes are
//! the meters' own (`meters::changes`).

mod enrollments;
mod programs;

use async_trait::async_trait;
use gridroll_domain::program::Program;
use gridroll_domain::timestamp::from_millis;
use gridroll_domain::{MeterId, PartnerId};

pub(crate) use programs::partner_catalog;

use crate::engine::Engine;
use crate::model::CatalogEntry;
use crate::{Result, StoreError, work};

/// Why a partner's programs were not set.
#[derive(Debug, thiserror::Error)]
pub enum PartnerProgramsError {
    #[error("there is no such partner")]
    NoSuchPartner,
    #[error("a partner needs at least one program")]
    NoProgram,
    #[error("the catalog has no program {}", .0.join(", "))]
    UnknownPrograms(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The catalog, and enrollments as the operator and participation change them.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Adds the programs the catalog does not have yet; answers how many were added.
    async fn seed_programs(&self, programs: &[Program], now: i64) -> Result<usize>;
    /// Every program, retired ones included.
    async fn list_programs(&self) -> Result<Vec<CatalogEntry>>;
    /// Adds a program or replaces its definition (and brings it back if retired).
    async fn put_program(&self, program: &Program, now: i64) -> Result<()>;
    /// Retires a program: no meter is evaluated against it any more. False if unknown.
    async fn retire_program(&self, identifier: &str, now: i64) -> Result<bool>;
    /// Limits the programs a partner may use (`None`: every program). The partner and
    /// every program must exist, and at least one be named.
    async fn set_partner_programs(
        &self,
        partner: PartnerId,
        programs: Option<&[String]>,
    ) -> Result<(), PartnerProgramsError>;
    /// The programs a partner may use.
    async fn partner_programs(&self, partner: PartnerId, now: i64) -> Result<Vec<Program>>;
    /// Makes PENDING enrollments in a program ACTIVE: one meter's, or every meter's of
    /// the partner. Answers how many changed.
    async fn activate_enrollments(
        &self,
        partner: PartnerId,
        program: &str,
        meter: Option<MeterId>,
        now: i64,
    ) -> Result<u64>;
    /// Evaluates every meter of a partner again (after the catalog changed), a batch per
    /// transaction; answers how many meters changed.
    async fn refresh_enrollments(&self, partner: PartnerId, now: i64) -> Result<u64>;
}

#[async_trait]
impl<E: Engine> CatalogStore for E {
    async fn seed_programs(&self, programs: &[Program], now: i64) -> Result<usize> {
        let programs = programs.to_vec();
        self.write(work!(db => async move { programs::seed(db, &programs, now).await }))
            .await
    }

    async fn list_programs(&self) -> Result<Vec<CatalogEntry>> {
        self.read(work!(db => programs::list(db))).await
    }

    async fn put_program(&self, program: &Program, now: i64) -> Result<()> {
        let program = program.clone();
        self.write(work!(db => async move { programs::put(db, &program, now).await }))
            .await
    }

    async fn retire_program(&self, identifier: &str, now: i64) -> Result<bool> {
        let identifier = identifier.to_owned();
        self.write(work!(db => async move { programs::retire(db, &identifier, now).await }))
            .await
    }

    async fn set_partner_programs(
        &self,
        partner: PartnerId,
        programs: Option<&[String]>,
    ) -> Result<(), PartnerProgramsError> {
        let programs = programs.map(<[String]>::to_vec);
        // A refusal is found before anything is written, so committing it is harmless.
        self.write(work!(db => async move {
            match programs::set_partner_programs(db, partner, programs.as_deref()).await {
                Err(PartnerProgramsError::Store(e)) => Err(e),
                decided => Ok(decided),
            }
        }))
        .await?
    }

    async fn partner_programs(&self, partner: PartnerId, now: i64) -> Result<Vec<Program>> {
        self.read(work!(db => async move {
            Ok(partner_catalog(db, partner, from_millis(now)).await?.programs)
        }))
        .await
    }

    async fn activate_enrollments(
        &self,
        partner: PartnerId,
        program: &str,
        meter: Option<MeterId>,
        now: i64,
    ) -> Result<u64> {
        let (program, feed) = (program.to_owned(), self.event_feed());
        self.write(work!(db => async move {
            enrollments::activate(db, partner, &program, meter, feed, now).await
        }))
        .await
    }

    async fn refresh_enrollments(&self, partner: PartnerId, now: i64) -> Result<u64> {
        let (mut after, mut total, feed) = (None, 0, self.event_feed());
        loop {
            let (changed, last) = self
                .write(work!(db => enrollments::refresh_batch(db, partner, after, feed, now)))
                .await?;
            total += changed;
            match last {
                Some(last) => after = Some(last),
                None => return Ok(total),
            }
        }
    }
}
