//! What a partner does to a meter after creating it: tags, its reference, archiving, and
//! its participation in Leap's v1.1 terms (idle periods, disenrollment, participating
//! again) as well as Gridroll's own. Each is a [`Change`] applied to a meter's
//! [`MeterState`] by [`apply`], which refuses what the meter cannot take; the store loads
//! the meters, applies the changes and writes them, all or none.
//!
//! Participation is one model whatever the call: periods of not taking part
//! ([`Abstention`]s, kept as instants). Leap's calls take dates, both inclusive, in the
//! meter's local time ([`MeterZone`]): an idle period from June 1 to June 30 is the
//! meter's local midnight of June 1 up to its local midnight of July 1.

use time::Date;
use time::macros::date;

use crate::enrollment::{self, Abstention, PreferenceChange};
use crate::enums::{MeterType, ParticipationPreference, TransmissionRegion};
use crate::meter::{MeterData, check_text, parse_date};
use crate::schema::{self, Kind, MAX_TAGS, TAG_TEXT};
use crate::zone::MeterZone;

/// The most characters a reason for idling or disenrolling has.
pub const MAX_REASON: usize = 500;

/// The most idle and disenrolled periods a meter keeps: decades of seasons, and a bound
/// on what every read and change of the meter goes through.
pub const MAX_PERIODS: usize = 500;

/// A tag, valid by the model's rule for one (see `schema::TAG`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(text: &str) -> Result<Self, String> {
        check_text(&TAG_TEXT, text)?;
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A partner's reference for a meter, valid by the model's rule for one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartnerReference(String);

impl PartnerReference {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rule = schema::field_at("partner_reference").map(|f| &f.kind);
        if let Some(Kind::Text(rule)) = rule {
            check_text(rule, text)?;
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A period of local dates, both inclusive, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPeriod {
    pub start: Date,
    pub end: Date,
    pub reason: Option<String>,
}

/// The first date a participation change may name: the local days of the zones' rules
/// as kept since 1970, and instants the wire shows as they are.
pub const FIRST_DATE: Date = date!(1970 - 01 - 01);

/// The last date a participation change may name: the end of its local day (the next
/// midnight) is an instant in every zone, which it would not be for 9999-12-31.
pub const LAST_DATE: Date = date!(9998 - 12 - 31);

/// Why a period or a date given by a client is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("{field} must be a date as YYYY-MM-DD, not {value:?}")]
    NotADate { field: &'static str, value: String },
    #[error("{field} must be from {FIRST_DATE} to {LAST_DATE}, not {date}")]
    OutOfRange { field: &'static str, date: Date },
    #[error("the period ends ({end}) before it starts ({start})")]
    Inverted { start: Date, end: Date },
    #[error("the periods from {first} and from {second} overlap")]
    Overlapping { first: Date, second: Date },
    #[error("reason {0}")]
    Reason(String),
    #[error("at least one period is needed")]
    None,
}

/// A date a client gave: `YYYY-MM-DD` exactly (a signed or longer year is not one), from
/// [`FIRST_DATE`] to [`LAST_DATE`].
pub fn parse_local_date(field: &'static str, text: &str) -> Result<Date, PeriodError> {
    let four_digit_year = text.len() == 10 && text.bytes().take(4).all(|b| b.is_ascii_digit());
    let date = parse_date(text)
        .filter(|_| four_digit_year)
        .ok_or_else(|| PeriodError::NotADate {
            field,
            value: text.chars().take(40).collect(),
        })?;
    if !(FIRST_DATE..=LAST_DATE).contains(&date) {
        return Err(PeriodError::OutOfRange { field, date });
    }
    Ok(date)
}

/// A reason a client gave: at most [`MAX_REASON`] characters, no control characters;
/// blank is none.
pub fn parse_reason(text: Option<&str>) -> Result<Option<String>, PeriodError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_REASON {
        return Err(PeriodError::Reason(format!(
            "must be at most {MAX_REASON} characters long"
        )));
    }
    if let Some(c) = crate::text::control_character(text) {
        return Err(PeriodError::Reason(crate::text::control_character_message(
            c,
        )));
    }
    Ok(Some(text.to_owned()))
}

impl LocalPeriod {
    /// A period from its two dates, the end not before the start.
    pub fn parse(start: &str, end: &str, reason: Option<&str>) -> Result<Self, PeriodError> {
        let start = parse_local_date("start_date", start)?;
        let end = parse_local_date("end_date", end)?;
        if end < start {
            return Err(PeriodError::Inverted { start, end });
        }
        Ok(Self {
            start,
            end,
            reason: parse_reason(reason)?,
        })
    }

    /// The periods of one request: at least one, and none overlapping another (which of
    /// two overlapping periods was meant is not for the server to guess).
    pub fn check_all(periods: &[LocalPeriod]) -> Result<(), PeriodError> {
        if periods.is_empty() {
            return Err(PeriodError::None);
        }
        let mut sorted: Vec<&LocalPeriod> = periods.iter().collect();
        sorted.sort_by_key(|p| p.start);
        for pair in sorted.windows(2) {
            if pair[1].start <= pair[0].end {
                return Err(PeriodError::Overlapping {
                    first: pair[0].start,
                    second: pair[1].start,
                });
            }
        }
        Ok(())
    }

    fn instants(&self, zone: &MeterZone) -> (i64, i64) {
        (zone.start_of(self.start), zone.end_of(self.end))
    }
}

/// A meter's idle periods as local dates.
pub fn idle_periods(abstentions: &[Abstention], zone: &MeterZone) -> Vec<LocalPeriod> {
    abstentions
        .iter()
        .filter(|a| a.preference == ParticipationPreference::Idle)
        .filter_map(|a| {
            Some(LocalPeriod {
                start: zone.date_of(a.start),
                end: zone.last_date_before(a.end?),
                reason: a.reason.clone(),
            })
        })
        .collect()
}

/// One change to one meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Adds the tags the meter lacks.
    AddTags(Vec<Tag>),
    /// Removes the tags the meter has.
    RemoveTags(Vec<Tag>),
    Reference(PartnerReference),
    Archive,
    Unarchive,
    /// A participation preference over instants (`/v2/.../participation`).
    Preference(PreferenceChange),
    /// Idle periods added, each overriding what held in its dates.
    AddIdle(Vec<LocalPeriod>),
    /// Idle periods removed; each must be one the meter has, to the day.
    RemoveIdle(Vec<LocalPeriod>),
    /// Disenrolled from a local date after today, for good.
    Disenroll {
        date: Date,
        reason: Option<String>,
    },
    /// Taking part from a local date on, lifting idle periods and disenrollment.
    Participate {
        start: Date,
    },
    /// The meter evaluated again, as a market registration refresh asks.
    RefreshRegistration,
}

/// What a change works on: a meter as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterState {
    pub data: MeterData,
    pub archived: bool,
    pub abstentions: Vec<Abstention>,
}

/// What a change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// The meter's data changed (tags, reference).
    pub data: bool,
    /// The meter was archived or brought back.
    pub archived: bool,
    /// The participation changes that changed the meter's periods, in order.
    pub participation: Vec<PreferenceChange>,
    /// The meter's enrollments are to be evaluated again from its data.
    pub reevaluate: bool,
}

impl Effect {
    /// Whether the meter changed at all.
    pub fn changed(&self) -> bool {
        self.data || self.archived || !self.participation.is_empty() || self.reevaluate
    }
}

/// Why a meter cannot take a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the meter would have {count} tags; a meter has at most {MAX_TAGS}")]
    TooManyTags { count: usize },
    #[error(
        "the meter would have {count} idle and disenrolled periods; a meter has at most {MAX_PERIODS} (remove some first)"
    )]
    TooManyPeriods { count: usize },
    #[error("the meter is archived already")]
    AlreadyArchived,
    #[error("the meter is not archived")]
    NotArchived,
    #[error("the meter has no idle period from {} to {}", .0.start, .0.end)]
    NoSuchIdlePeriod(LocalPeriod),
    #[error("the disenrollment date must be after the meter's today ({today}), not {date}")]
    DisenrollNotInFuture { date: Date, today: Date },
    #[error(
        "a market registration refresh is for CAISO utility meters; this meter is a {meter_type} in {region}"
    )]
    RegistrationNotApplicable {
        meter_type: MeterType,
        region: TransmissionRegion,
    },
    #[error("the meter is archived: unarchive it first")]
    Archived,
}

/// Applies a change to a meter at `now` (ms): what it did, or why the meter cannot take it
/// (the state is then as it was).
pub fn apply(change: &Change, state: &mut MeterState, now: i64) -> Result<Effect, Refusal> {
    let mut effect = Effect::default();
    match change {
        Change::AddTags(tags) => {
            let mut current = tags_of(&state.data);
            for tag in tags {
                if !current.iter().any(|t| t == tag.as_str()) {
                    current.push(tag.as_str().to_owned());
                }
            }
            if current.len() > MAX_TAGS {
                return Err(Refusal::TooManyTags {
                    count: current.len(),
                });
            }
            effect.data = set_tags(&mut state.data, current);
        }
        Change::RemoveTags(tags) => {
            let mut current = tags_of(&state.data);
            current.retain(|t| !tags.iter().any(|gone| gone.as_str() == t));
            effect.data = set_tags(&mut state.data, current);
        }
        Change::Reference(reference) => {
            if state.data.partner_reference() != reference.as_str() {
                let mut map = state.data.clone().into_map();
                map.insert(
                    "partner_reference".to_owned(),
                    reference.as_str().to_owned().into(),
                );
                state.data = MeterData::from_stored(map);
                effect.data = true;
            }
        }
        Change::Archive if state.archived => return Err(Refusal::AlreadyArchived),
        Change::Unarchive if !state.archived => return Err(Refusal::NotArchived),
        Change::Archive | Change::Unarchive => {
            state.archived = !state.archived;
            effect.archived = true;
        }
        Change::RefreshRegistration => {
            let (meter_type, region) = (state.data.meter_type(), state.data.transmission_region());
            if meter_type != MeterType::UtilityMeter || region != TransmissionRegion::Caiso {
                return Err(Refusal::RegistrationNotApplicable { meter_type, region });
            }
            if state.archived {
                return Err(Refusal::Archived);
            }
            effect.reevaluate = true;
        }
        participation => {
            let kept = state.abstentions.clone();
            for preference in preferences(participation, state, now)? {
                let before = state.abstentions.clone();
                // Every change built here is valid: its end follows its start.
                if enrollment::apply_preference(&mut state.abstentions, preference.clone()).is_ok()
                    && state.abstentions != before
                {
                    effect.participation.push(preference);
                }
            }
            // A meter that holds more already (from before the limit) may still change
            // what it holds, but not hold more.
            let count = state.abstentions.len();
            if count > MAX_PERIODS && count > kept.len() {
                state.abstentions = kept;
                return Err(Refusal::TooManyPeriods { count });
            }
        }
    }
    Ok(effect)
}

/// A participation change as the preferences it sets, in the meter's zone.
fn preferences(
    change: &Change,
    state: &MeterState,
    now: i64,
) -> Result<Vec<PreferenceChange>, Refusal> {
    let zone = MeterZone::of(&state.data);
    let preference =
        |preference, (start, end): (i64, Option<i64>), reason: &Option<String>| PreferenceChange {
            preference,
            start,
            end,
            reason: reason.clone(),
        };
    Ok(match change {
        Change::Preference(change) => vec![change.clone()],
        Change::AddIdle(periods) => periods
            .iter()
            .map(|p| {
                let (start, end) = p.instants(&zone);
                preference(ParticipationPreference::Idle, (start, Some(end)), &p.reason)
            })
            .collect(),
        Change::RemoveIdle(periods) => {
            let mut lifted = Vec::new();
            for p in periods {
                let (start, end) = p.instants(&zone);
                let found = state.abstentions.iter().any(|a| {
                    a.preference == ParticipationPreference::Idle
                        && a.start == start
                        && a.end == Some(end)
                });
                if !found {
                    return Err(Refusal::NoSuchIdlePeriod(p.clone()));
                }
                lifted.push(preference(
                    ParticipationPreference::Participate,
                    (start, Some(end)),
                    &None,
                ));
            }
            lifted
        }
        Change::Disenroll { date, reason } => {
            let today = zone.date_of(now);
            if *date <= today {
                return Err(Refusal::DisenrollNotInFuture { date: *date, today });
            }
            vec![preference(
                ParticipationPreference::Disenroll,
                (zone.start_of(*date), None),
                reason,
            )]
        }
        Change::Participate { start } => vec![preference(
            ParticipationPreference::Participate,
            (zone.start_of(*start), None),
            &None,
        )],
        _ => Vec::new(),
    })
}

/// The meter's tags.
pub fn tags_of(data: &MeterData) -> Vec<String> {
    data.as_map()
        .get("tags")
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets the meter's tags (none: the field is left out); whether they changed.
fn set_tags(data: &mut MeterData, tags: Vec<String>) -> bool {
    if tags == tags_of(data) {
        return false;
    }
    let mut map = std::mem::replace(data, MeterData::from_stored(Default::default())).into_map();
    if tags.is_empty() {
        map.remove("tags");
    } else {
        map.insert("tags".to_owned(), tags.into());
    }
    *data = MeterData::from_stored(map);
    true
}

#[cfg(test)]
mod tests;
