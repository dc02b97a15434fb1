//! A meter's life after its creation, written once below the API and the portal: tags,
//! references, archiving, and participation (Leap's idle periods, disenrollment and
//! participate, and Gridroll's own preferences). Each use case answers its own
//! [`LifecycleError`], which the API renders as JSON and the portal as a sentence.

use std::collections::HashSet;

use gridroll_domain::MeterId;
use gridroll_domain::PartnerId;
use gridroll_domain::lifecycle::{Change, LocalPeriod, Refusal, idle_periods};
use gridroll_domain::zone::MeterZone;
use gridroll_store::{Applied, EditError, MeterEdit, MeterFilter, StoreError, Taken, Unknown};

use crate::AppState;

/// The most meters one request changes or reads.
pub const MAX_METERS: usize = 1000;

/// Why a change of meters was not made. Nothing was changed, whatever the reason.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The request itself is not valid: a field named, and what is wrong with it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Meters that are not the partner's.
    #[error("the partner has no meter {}", ids(.0))]
    NotFound(Vec<MeterId>),
    /// Meters that cannot take their change, each with why.
    #[error("{}", refusals(.0))]
    Refused(Vec<(MeterId, Refusal)>),
    /// References that other meters of the partner have (none listed: another change
    /// took one while this one was made; it may be sent again).
    #[error("{}", taken(.0))]
    ReferenceTaken(Vec<Taken>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn ids(ids: &[MeterId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn refusals(refusals: &[(MeterId, Refusal)]) -> String {
    refusals
        .iter()
        .map(|(id, r)| format!("meter {id}: {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn taken(taken: &[Taken]) -> String {
    if taken.is_empty() {
        return "another change took one of the references meanwhile; nothing was changed, send the request again".to_owned();
    }
    taken
        .iter()
        .map(|t| {
            format!(
                "meter {}: the reference {} is meter {}'s",
                t.meter, t.reference, t.held_by
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl LifecycleError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<EditError> for LifecycleError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::NotFound(ids) => Self::NotFound(ids),
            EditError::Refused(refusals) => Self::Refused(refusals),
            EditError::ReferenceTaken(taken) => Self::ReferenceTaken(taken),
            EditError::Store(e) => Self::Store(e),
        }
    }
}

/// Meter ids as a client gave them: 1 to [`MAX_METERS`], each a UUID, repeats dropped.
pub fn meter_ids(field: &str, raw: &[String]) -> Result<Vec<MeterId>, LifecycleError> {
    meter_ids_up_to(field, raw, MAX_METERS)
}

/// Meter ids as a client gave them: 1 to `max`, each a UUID, repeats dropped.
pub fn meter_ids_up_to(
    field: &str,
    raw: &[String],
    max: usize,
) -> Result<Vec<MeterId>, LifecycleError> {
    if raw.is_empty() || raw.len() > max {
        return Err(LifecycleError::invalid(
            field,
            format!("must list from 1 to {max} meters, not {}", raw.len()),
        ));
    }
    let mut seen = HashSet::new();
    let mut ids = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let id: MeterId = text.parse().map_err(|_| {
            LifecycleError::invalid(format!("{field}.{i}"), "must be a meter id (a UUID)")
        })?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Makes the changes, all or none; meters that are not the partner's are refused or
/// skipped as `unknown` says.
pub async fn change(
    state: &AppState,
    partner: PartnerId,
    edits: Vec<MeterEdit>,
    unknown: Unknown,
) -> Result<Applied, LifecycleError> {
    Ok(state
        .meters
        .change_meters(partner, &edits, unknown, state.now_millis())
        .await?)
}

/// The same change for each of `meters`, all or none.
pub async fn change_each(
    state: &AppState,
    partner: PartnerId,
    meters: &[MeterId],
    change: Change,
) -> Result<Applied, LifecycleError> {
    let edits = meters
        .iter()
        .map(|&meter| MeterEdit {
            meter,
            change: change.clone(),
        })
        .collect();
    self::change(state, partner, edits, Unknown::Refuse).await
}

/// A meter's idle periods in its local dates, and the zone they are in.
#[derive(Debug, Clone)]
pub struct IdlePeriods {
    pub meter: MeterId,
    pub zone: &'static str,
    pub periods: Vec<LocalPeriod>,
}

/// The idle periods of meters of the partner; every meter must be the partner's.
pub async fn idle_periods_of(
    state: &AppState,
    partner: PartnerId,
    meters: &[MeterId],
) -> Result<Vec<IdlePeriods>, LifecycleError> {
    let filter = MeterFilter {
        meter_ids: Some(meters.to_vec()),
        ..MeterFilter::default()
    };
    let found = state
        .meters
        .search_meters(partner, &filter, None, meters.len())
        .await?;
    let missing: Vec<MeterId> = meters
        .iter()
        .filter(|id| !found.iter().any(|m| m.id == **id))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(LifecycleError::NotFound(missing));
    }
    Ok(meters
        .iter()
        .filter_map(|id| found.iter().find(|m| m.id == *id))
        .map(|m| {
            let zone = MeterZone::of(&m.data);
            IdlePeriods {
                meter: m.id,
                zone: zone.name(),
                periods: idle_periods(&m.abstentions, &zone),
            }
        })
        .collect())
}
