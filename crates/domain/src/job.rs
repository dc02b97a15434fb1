//! Meter batch jobs: what happens to each asset, and what a job's status is.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use strum::{AsRefStr, Display, EnumString, VariantNames};

use crate::ids::MeterId;

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            Serialize, Deserialize, Display, EnumString, AsRefStr, VariantNames,
        )]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }
    };
}

status_enum!(
    /// Status of a meter batch job.
    JobStatus { Processing, Failed, Completed, CompletedWithErrors }
);

status_enum!(
    /// Status of one provisional asset of a job.
    AssetStatus { Processing, Failed, Duplicate, Completed, MultiplePartnerReference }
);

status_enum!(
    /// The precise reason behind an asset's status.
    StatusName {
        AccountMismatch, AddressIncomplete, AddressNotFound, AddressNotRegisteredForEsiid,
        DuplicateMeter, DuplicateRefId, MeterCreated, MeterUpdated, MultipleAccounts,
        UnsupportedAddress, UnsupportedZipCode, ValidationError, ProcessingError,
    }
);

/// What to do with one asset, given the meters of its partner that already carry its
/// `partner_reference` (in creation order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create,
    Update(MeterId),
    Duplicate(Vec<MeterId>),
    Ambiguous(Vec<MeterId>),
}

impl Decision {
    pub fn new(existing: &[MeterId], update_existing: bool) -> Self {
        match (existing, update_existing) {
            ([], _) => Self::Create,
            ([only], true) => Self::Update(*only),
            (many, true) => Self::Ambiguous(many.to_vec()),
            (some, false) => Self::Duplicate(some.to_vec()),
        }
    }
}

/// The final state of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: AssetStatus,
    pub name: StatusName,
    pub description: String,
    pub meter_id: Option<MeterId>,
}

impl StatusName {
    /// The description every outcome of this name has, where it is always the same: a
    /// job keeps it once, here, rather than with each of its assets.
    pub fn fixed_description(self) -> Option<&'static str> {
        match self {
            Self::MeterCreated => Some("A new meter was created."),
            Self::MeterUpdated => {
                Some("The existing meter was updated; all of its data was replaced.")
            }
            _ => None,
        }
    }
}

impl Outcome {
    pub fn created(meter_id: MeterId) -> Self {
        Self::completed(StatusName::MeterCreated, meter_id)
    }

    pub fn updated(meter_id: MeterId) -> Self {
        Self::completed(StatusName::MeterUpdated, meter_id)
    }

    fn completed(name: StatusName, meter_id: MeterId) -> Self {
        Self {
            status: AssetStatus::Completed,
            name,
            description: name.fixed_description().unwrap_or_default().to_owned(),
            meter_id: Some(meter_id),
        }
    }

    /// The description as a job keeps it: none where it is the name's fixed one.
    pub fn kept_description(&self) -> Option<&str> {
        (self.name.fixed_description() != Some(self.description.as_str()))
            .then_some(self.description.as_str())
    }

    pub fn duplicate(existing: &[MeterId]) -> Self {
        Self {
            status: AssetStatus::Duplicate,
            name: StatusName::DuplicateRefId,
            description: format!(
                "Partner reference ID found on meter ID {}. A unique reference ID is required, or upload with update_existing=true to update that meter.",
                join(existing)
            ),
            meter_id: None,
        }
    }

    pub fn ambiguous(existing: &[MeterId]) -> Self {
        Self {
            status: AssetStatus::MultiplePartnerReference,
            name: StatusName::DuplicateRefId,
            description: format!(
                "Partner reference ID found on {} meters ({}); it is not clear which to update, so none was changed.",
                existing.len(),
                join(existing)
            ),
            meter_id: None,
        }
    }

    /// Whether the asset created or updated a meter.
    pub fn succeeded(&self) -> bool {
        self.status == AssetStatus::Completed
    }
}

fn join(ids: &[MeterId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An asset waiting to be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: u64,
    pub partner_reference: String,
}

/// What processing an asset writes to its meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new meter with this id, from the asset's data.
    Create(MeterId),
    /// The meter's data replaced by the asset's.
    Replace(MeterId),
    Nothing,
}

/// The planned processing of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub seq: u64,
    pub outcome: Outcome,
    pub write: Write,
}

/// Plans a chunk of assets in file order. `existing` holds, per reference, the partner's
/// meters that carry it (oldest first); a meter the chunk creates counts for the assets
/// after it, so a reference repeated in one upload behaves as if uploaded twice.
pub fn plan_chunk(
    pending: &[Pending],
    mut existing: HashMap<String, Vec<MeterId>>,
    update_existing: bool,
) -> Vec<Planned> {
    pending
        .iter()
        .map(|asset| {
            let meters = existing.entry(asset.partner_reference.clone()).or_default();
            let (outcome, write) = match Decision::new(meters, update_existing) {
                Decision::Create => {
                    let id = MeterId::new();
                    meters.push(id);
                    (Outcome::created(id), Write::Create(id))
                }
                Decision::Update(id) => (Outcome::updated(id), Write::Replace(id)),
                Decision::Duplicate(ids) => (Outcome::duplicate(&ids), Write::Nothing),
                Decision::Ambiguous(ids) => (Outcome::ambiguous(&ids), Write::Nothing),
            };
            Planned {
                seq: asset.seq,
                outcome,
                write,
            }
        })
        .collect()
}

/// Running counts of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub assets: u64,
    pub created: u64,
    pub updated: u64,
    pub failed: u64,
}

impl JobCounts {
    pub fn record(&mut self, outcome: &Outcome) {
        match outcome.name {
            StatusName::MeterCreated => self.created += 1,
            StatusName::MeterUpdated => self.updated += 1,
            _ => self.failed += 1,
        }
    }

    pub fn finished(&self) -> u64 {
        self.created + self.updated + self.failed
    }

    /// The job's status: processing until every asset is final, then completed, completed
    /// with errors (some failed) or failed (none succeeded).
    pub fn status(&self) -> JobStatus {
        if self.finished() < self.assets {
            JobStatus::Processing
        } else if self.failed == 0 {
            JobStatus::Completed
        } else if self.created + self.updated == 0 {
            JobStatus::Failed
        } else {
            JobStatus::CompletedWithErrors
        }
    }
}

/// How long a job whose chunk failed `failures` times in a row waits before a worker
/// tries it again; `None` once it has failed too often and is given up. A failure that
/// recurs (a statement that cannot finish, data the release cannot read) ends the job
/// within about a quarter of an hour instead of holding it `PROCESSING` for ever; a
/// database that is unreachable cannot record a failure, so an outage ends no job.
pub fn retry_delay(failures: u32) -> Option<std::time::Duration> {
    const DELAYS: [u64; 5] = [1, 5, 30, 120, 600];
    let index = usize::try_from(failures.checked_sub(1)?).ok()?;
    DELAYS
        .get(index)
        .map(|seconds| std::time::Duration::from_secs(*seconds))
}

/// The description of the assets of a job that was given up.
pub fn given_up_description(failures: u32, reference: &str) -> String {
    format!(
        "The server could not process this asset: processing its job failed {failures} times in a row \
         (reference {reference} in the server's log). Nothing was created or changed for it; upload it again."
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_completed_outcome_keeps_no_description_and_any_other_keeps_its_own() {
        let id = MeterId::new();
        for outcome in [Outcome::created(id), Outcome::updated(id)] {
            assert_eq!(outcome.kept_description(), None);
            assert_eq!(
                outcome.name.fixed_description(),
                Some(outcome.description.as_str())
            );
        }
        let duplicate = Outcome::duplicate(&[id]);
        assert_eq!(
            duplicate.kept_description(),
            Some(duplicate.description.as_str())
        );
        assert_eq!(duplicate.name.fixed_description(), None);
    }

    use super::*;
    use proptest::prelude::*;

    use crate::testing::pending;

    #[test]
    fn a_failing_job_is_retried_later_each_time_and_then_given_up() {
        let delays: Vec<_> = (1..=6).map(retry_delay).collect();
        assert!(delays[..5].windows(2).all(|w| w[0] < w[1]), "{delays:?}");
        assert_eq!(delays[0], Some(std::time::Duration::from_secs(1)));
        assert_eq!(delays[5], None);
        assert_eq!(retry_delay(0), None);
    }

    #[test]
    fn the_decision_follows_the_matches_and_update_existing() {
        let a = MeterId::new();
        let b = MeterId::new();
        assert_eq!(Decision::new(&[], false), Decision::Create);
        assert_eq!(Decision::new(&[], true), Decision::Create);
        assert_eq!(Decision::new(&[a], true), Decision::Update(a));
        assert_eq!(Decision::new(&[a], false), Decision::Duplicate(vec![a]));
        assert_eq!(
            Decision::new(&[a, b], true),
            Decision::Ambiguous(vec![a, b])
        );
        assert_eq!(
            Decision::new(&[a, b], false),
            Decision::Duplicate(vec![a, b])
        );
    }

    #[test]
    fn outcome_descriptions_name_the_existing_meters() {
        let a = MeterId::new();
        let b = MeterId::new();
        assert!(
            Outcome::duplicate(&[a])
                .description
                .contains(&a.to_string())
        );
        let ambiguous = Outcome::ambiguous(&[a, b]);
        assert_eq!(ambiguous.status, AssetStatus::MultiplePartnerReference);
        assert!(ambiguous.description.contains(&b.to_string()));
        assert!(!ambiguous.succeeded());
    }

    #[test]
    fn job_status_is_derived_from_the_counts() {
        let counts = |assets, created, updated, failed| JobCounts {
            assets,
            created,
            updated,
            failed,
        };
        assert_eq!(counts(3, 1, 0, 1).status(), JobStatus::Processing);
        assert_eq!(counts(3, 2, 1, 0).status(), JobStatus::Completed);
        assert_eq!(counts(3, 2, 0, 1).status(), JobStatus::CompletedWithErrors);
        assert_eq!(counts(3, 0, 0, 3).status(), JobStatus::Failed);
    }

    #[test]
    fn a_repeated_reference_is_created_once_then_duplicate_or_updated() {
        let plan = plan_chunk(&pending(&["a", "b", "a"]), HashMap::new(), false);
        let Write::Create(first) = plan[0].write else {
            panic!("{plan:?}")
        };
        assert!(matches!(plan[1].write, Write::Create(_)));
        assert_eq!(plan[2].outcome, Outcome::duplicate(&[first]));

        let plan = plan_chunk(&pending(&["a", "a", "a"]), HashMap::new(), true);
        let Write::Create(first) = plan[0].write else {
            panic!("{plan:?}")
        };
        assert_eq!(plan[1].write, Write::Replace(first));
        assert_eq!(plan[2].write, Write::Replace(first));
    }

    #[test]
    fn existing_meters_decide_the_plan() {
        let one = MeterId::new();
        let (x, y) = (MeterId::new(), MeterId::new());
        let existing = HashMap::from([
            ("one".to_owned(), vec![one]),
            ("two".to_owned(), vec![x, y]),
        ]);
        let plan = plan_chunk(&pending(&["one", "two", "new"]), existing, true);
        assert_eq!(plan[0].write, Write::Replace(one));
        assert_eq!(plan[1].outcome, Outcome::ambiguous(&[x, y]));
        assert_eq!(plan[1].write, Write::Nothing);
        assert!(matches!(plan[2].write, Write::Create(_)));
    }

    proptest! {
        #[test]
        fn recording_every_outcome_finishes_the_job(kinds in proptest::collection::vec(0u8..4, 1..50)) {
            let id = MeterId::new();
            let outcomes: Vec<Outcome> = kinds.iter().map(|k| match k {
                0 => Outcome::created(id),
                1 => Outcome::updated(id),
                2 => Outcome::duplicate(&[id]),
                _ => Outcome::ambiguous(&[id, id]),
            }).collect();
            let mut counts = JobCounts { assets: outcomes.len() as u64, ..JobCounts::default() };
            for outcome in &outcomes {
                prop_assert_eq!(counts.status(), JobStatus::Processing);
                counts.record(outcome);
            }
            let succeeded = outcomes.iter().filter(|o| o.succeeded()).count();
            let expected = if succeeded == outcomes.len() {
                JobStatus::Completed
            } else if succeeded == 0 {
                JobStatus::Failed
            } else {
                JobStatus::CompletedWithErrors
            };
            prop_assert_eq!(counts.status(), expected);
        }
    }
}
