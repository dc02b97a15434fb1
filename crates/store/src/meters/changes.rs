//! Changes a partner makes to meters after creating them (tags, references, archiving,
//! participation), all or none: the meters are read and locked, every change is decided
//! by the domain's rules (`gridroll_domain::lifecycle`), and only when each meter can take
//! its change are they written, with their enrollments and their events, in one
//! transaction.
//!
//! An archived meter keeps its reference but holds no claim on it: its reference slot is
//! its own id, as an imported meter's is, so that a new upload may create a meter with
//! the reference, and `update_existing` never finds it (the chunk's lookups leave
//! archived meters out). Bringing one back needs its reference free again.

use std::collections::{HashMap, HashSet};

use gridroll_domain::enrollment::Abstention;
use gridroll_domain::enums::CreatedBy;
use gridroll_domain::event::{self, MeterRef};
use gridroll_domain::lifecycle::{self, Change, Effect, MeterState, Refusal};
use gridroll_domain::timestamp::from_millis;
use gridroll_domain::webhook::EventType;
use gridroll_domain::{MeterId, PartnerId, compact};

use crate::catalog::partner_catalog;
use crate::db::{Db, Row, Value};
use crate::evaluate::{self, Catalog, Columns};
use crate::events::{EventTypes, Outbox};
use crate::query::Conditions;
use crate::{Result, StoreError, values};

/// A change for one meter.
#[derive(Debug, Clone)]
pub struct MeterEdit {
    pub meter: MeterId,
    pub change: Change,
}

/// What to do about meters of a request that are not the partner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Nothing is changed; the request names them.
    Refuse,
    /// The others are changed (Leap's "applied if at least one meter can be found").
    Skip,
}

/// What a request changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The meters that changed, in the order of the request.
    pub changed: Vec<MeterId>,
    /// The meters that were already as asked.
    pub unchanged: Vec<MeterId>,
    /// The meters that are not the partner's, left out (with [`Unknown::Skip`]).
    pub unknown: Vec<MeterId>,
}

/// A reference that another of the partner's meters has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub meter: MeterId,
    pub reference: String,
    pub held_by: MeterId,
}

/// Why nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("the partner has no meters {0:?}")]
    NotFound(Vec<MeterId>),
    #[error("{} meters cannot take their change", .0.len())]
    Refused(Vec<(MeterId, Refusal)>),
    #[error("{} references are another meter's", .0.len())]
    ReferenceTaken(Vec<Taken>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What every change reads of a meter, from column 0.
const COLUMNS: &str = "id, created_by, partner_reference, transmission_region, meter_type, data, \
     enrollments, participation, is_archived";

/// A meter as read before its change, and as it becomes.
struct Edited {
    id: MeterId,
    created_by: CreatedBy,
    reference: String,
    region: String,
    meter_type: String,
    enrollments: Vec<gridroll_domain::enrollment::Enrollment>,
    before: MeterState,
    after: MeterState,
    effect: Effect,
}

impl Edited {
    fn read(row: &Row) -> Result<Self> {
        let state = MeterState {
            data: evaluate::parse_data(&row.get::<String>(5)?)?,
            archived: row.get(8)?,
            abstentions: evaluate::parse_abstentions(&row.get::<String>(7)?)?,
        };
        Ok(Self {
            id: row.get(0)?,
            created_by: row.parse(1)?,
            reference: row.get(2)?,
            region: row.get(3)?,
            meter_type: row.get(4)?,
            enrollments: evaluate::parse_enrollments(&row.get::<String>(6)?)?,
            after: state.clone(),
            before: state,
            effect: Effect::default(),
        })
    }

    fn meter(&self) -> MeterRef<'_> {
        MeterRef {
            id: self.id,
            partner_reference: self.after.data.partner_reference(),
            transmission_region: &self.region,
            meter_type: &self.meter_type,
        }
    }

    /// Whether the meter holds its reference after the change, with a new claim on it.
    fn claims_new_reference(&self) -> bool {
        !self.after.archived
            && (self.after.data.partner_reference() != self.reference || self.before.archived)
    }

    /// The meter's enrollment columns after the change.
    fn columns(&self, catalog: &Catalog) -> Columns {
        let (data, abstentions) = (&self.after.data, &self.after.abstentions);
        if self.after.archived {
            let list =
                gridroll_domain::enrollment::withdrawn(&catalog.programs, data, &self.enrollments);
            return evaluate::summarize(catalog, &list, abstentions);
        }
        if self.effect.archived || self.effect.reevaluate {
            evaluate::evaluate(catalog, data, &self.enrollments, abstentions)
        } else {
            evaluate::summarize(catalog, &self.enrollments, abstentions)
        }
    }
}

/// Applies each edit to its meter, all or none. Unknown meters are refused or skipped as
/// `unknown` says; with [`Unknown::Skip`], a request none of whose meters is the partner's
/// is [`EditError::NotFound`] still.
pub async fn change_meters(
    db: &mut dyn Db,
    partner: PartnerId,
    edits: &[MeterEdit],
    unknown: Unknown,
    feed: EventTypes,
    now: i64,
) -> Result<Applied, EditError> {
    let mut meters = load(db, partner, edits).await?;
    let missing: Vec<MeterId> = unique(edits.iter().map(|e| e.meter))
        .filter(|id| !meters.contains_key(id))
        .collect();
    if !missing.is_empty() && (unknown == Unknown::Refuse || meters.is_empty()) {
        return Err(EditError::NotFound(missing));
    }
    let mut refusals = Vec::new();
    for edit in edits {
        let Some(meter) = meters.get_mut(&edit.meter) else {
            continue;
        };
        match lifecycle::apply(&edit.change, &mut meter.after, now) {
            Ok(effect) => merge(&mut meter.effect, effect),
            Err(refusal) => refusals.push((edit.meter, refusal)),
        }
    }
    if !refusals.is_empty() {
        return Err(EditError::Refused(refusals));
    }
    let taken = taken_references(db, partner, &meters).await?;
    if !taken.is_empty() {
        return Err(EditError::ReferenceTaken(taken));
    }
    let catalog = partner_catalog(db, partner, from_millis(now)).await?;
    let mut outbox = Outbox::open(db, partner, feed).await?;
    let mut applied = Applied {
        unknown: missing,
        ..Applied::default()
    };
    let order: Vec<MeterId> = unique(edits.iter().map(|e| e.meter)).collect();
    let mut claiming = Vec::new();
    for id in order {
        let Some(meter) = meters.get(&id) else {
            continue;
        };
        if !meter.effect.changed() {
            applied.unchanged.push(id);
            continue;
        }
        let columns = meter.columns(&catalog);
        // An evaluation that finds what was there is no change (nor a sync's business).
        let only_evaluated = Effect {
            reevaluate: true,
            ..Effect::default()
        } == meter.effect;
        if only_evaluated && columns.list == meter.enrollments {
            applied.unchanged.push(id);
            continue;
        }
        write(db, partner, meter, &columns, now).await?;
        if meter.claims_new_reference() && meter.created_by == CreatedBy::Partner {
            claiming.push(id);
        }
        note_events(&mut outbox, &catalog, meter, &columns);
        applied.changed.push(id);
    }
    claim_references(db, partner, &claiming).await?;
    outbox.record(db, now).await?;
    Ok(applied)
}

fn unique(ids: impl Iterator<Item = MeterId>) -> impl Iterator<Item = MeterId> {
    let mut seen = HashSet::new();
    ids.filter(move |id| seen.insert(*id))
}

fn merge(into: &mut Effect, effect: Effect) {
    into.data |= effect.data;
    into.archived ^= effect.archived;
    into.reevaluate |= effect.reevaluate;
    into.participation.extend(effect.participation);
}

/// The meters of the edits that are the partner's, locked (on PostgreSQL) until the
/// transaction ends.
async fn load(
    db: &mut dyn Db,
    partner: PartnerId,
    edits: &[MeterEdit],
) -> Result<HashMap<MeterId, Edited>> {
    let mut c = Conditions::new(db.dialect());
    c.eq("partner_id", partner.into());
    c.one_of("id", unique(edits.iter().map(|e| e.meter)).map(Value::from));
    let sql = format!(
        "SELECT {COLUMNS} FROM meters WHERE {} ORDER BY id{}",
        c.sql(),
        db.dialect().for_update()
    );
    db.query_built(&sql, &c.params)
        .await?
        .iter()
        .map(|row| Edited::read(row).map(|m| (m.id, m)))
        .collect()
}

/// The references the changed meters claim that another active meter of the partner
/// holds after the request: a meter of the request that moves to another reference
/// frees its own, so two meters may swap theirs in one request.
async fn taken_references(
    db: &mut dyn Db,
    partner: PartnerId,
    meters: &HashMap<MeterId, Edited>,
) -> Result<Vec<Taken>> {
    let claiming: Vec<&Edited> = meters
        .values()
        .filter(|m| m.claims_new_reference())
        .collect();
    if claiming.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = Conditions::new(db.dialect());
    c.eq("partner_id", partner.into());
    c.one_of(
        "partner_reference",
        claiming
            .iter()
            .map(|m| Value::from(m.after.data.partner_reference())),
    );
    c.push(format!("is_archived = {}", false_literal(db)));
    let sql = format!(
        "SELECT id, partner_reference FROM meters WHERE {} ORDER BY id",
        c.sql()
    );
    let mut holders: Vec<(MeterId, String)> = Vec::new();
    for row in db.query_built(&sql, &c.params).await? {
        let id: MeterId = row.get(0)?;
        // A meter of the request holds what it holds after the request.
        if !meters.contains_key(&id) {
            holders.push((id, row.get(1)?));
        }
    }
    for m in meters.values().filter(|m| !m.after.archived) {
        holders.push((m.id, m.after.data.partner_reference().to_owned()));
    }
    let mut taken = Vec::new();
    for m in &claiming {
        let reference = m.after.data.partner_reference();
        if let Some((held_by, _)) = holders.iter().find(|(id, r)| *id != m.id && r == reference) {
            taken.push(Taken {
                meter: m.id,
                reference: reference.to_owned(),
                held_by: *held_by,
            });
        }
    }
    taken.sort_by_key(|t| t.meter);
    Ok(taken)
}

fn false_literal(db: &dyn Db) -> &'static str {
    match db.dialect() {
        crate::db::Dialect::Sqlite => "0",
        crate::db::Dialect::Postgres => "false",
    }
}

/// Writes a changed meter. Its reference slot is its own id for now: a reference it
/// takes over from another meter of the request is claimed once every meter is written
/// ([`claim_references`]), so that a swap never meets the unique index halfway.
async fn write(
    db: &mut dyn Db,
    partner: PartnerId,
    meter: &Edited,
    c: &Columns,
    now: i64,
) -> Result<()> {
    let data = &meter.after.data;
    let slot: Vec<u8> = if meter.after.archived
        || meter.claims_new_reference()
        || meter.created_by != CreatedBy::Partner
    {
        meter.id.as_uuid().as_bytes().to_vec()
    } else {
        Vec::new()
    };
    let participation = serde_json::to_string::<[Abstention]>(&meter.after.abstentions)
        .map_err(|e| StoreError::Corrupt(format!("participation: {e}")))?;
    db.execute(
        "UPDATE meters SET partner_reference = $3, reference_slot = $4, data = $5,
             is_archived = $6, participation = $7, enrollments = $8,
             global_enrollment_status = $9, partner_action_required = $10,
             partner_action_types = $11, pending_programs = $12, updated_at = $13
         WHERE partner_id = $1 AND id = $2",
        values![
            partner,
            meter.id,
            data.partner_reference(),
            slot.as_slice(),
            compact::encode(data),
            meter.after.archived,
            participation,
            &c.enrollments,
            &c.global_status,
            c.action_required,
            &c.action_types,
            &c.pending_programs,
            now
        ],
    )
    .await?;
    Ok(())
}

/// Gives partner-created meters that took a reference their claim on it. Another
/// process that created a meter with the reference meanwhile makes this a conflict.
async fn claim_references(
    db: &mut dyn Db,
    partner: PartnerId,
    meters: &[MeterId],
) -> Result<(), EditError> {
    if meters.is_empty() {
        return Ok(());
    }
    let mut c = Conditions::new(db.dialect());
    c.eq("partner_id", partner.into());
    c.one_of("id", meters.iter().map(|&m| Value::from(m)));
    let empty = c.bind(Value::Bytes(Vec::new()));
    let sql = format!(
        "UPDATE meters SET reference_slot = {empty} WHERE {}",
        c.sql()
    );
    // A conflict (another process took a reference meanwhile, on PostgreSQL) fails the
    // transaction; the store answers it as a taken reference once it is rolled back.
    db.execute_built(&sql, &c.params).await?;
    Ok(())
}

/// The events of a meter's change: `meter.updated` when its data or its archiving
/// changed, the participation event for each period change, and the enrollment events.
fn note_events(outbox: &mut Outbox, catalog: &Catalog, meter: &Edited, after: &Columns) {
    if meter.effect.data || meter.effect.archived {
        outbox.add(EventType::MeterUpdated, || {
            event::meter_updated(meter.meter())
        });
    }
    for change in &meter.effect.participation {
        outbox.add(EventType::EnrollmentParticipationStatusUpdated, || {
            event::participation_updated(meter.meter(), change)
        });
    }
    outbox.enrollments_changed(
        catalog,
        meter.meter(),
        (&meter.enrollments, &meter.before.abstentions),
        (&after.list, &meter.after.abstentions),
    );
}
