//! Turning rows into the store's types.

use std::str::FromStr;

use gridroll_domain::enrollment::Enrollment;
use gridroll_domain::{MeterData, MeterId, PartnerId, compact};
use rusqlite::Row;
use rusqlite::types::Type;

use crate::evaluate;
use crate::model::{AssetState, Job, Meter, Partner, ProvisionalAsset};

/// Parses a text column into an enum, failing like any other conversion.
pub fn parsed<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

pub fn parsed_opt<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(_) => parsed(row, index).map(Some),
    }
}

/// Reads a meter's data column (`evaluate::parse_data`).
pub fn meter_data(row: &Row<'_>, index: usize) -> rusqlite::Result<MeterData> {
    let text: String = row.get(index)?;
    evaluate::parse_data(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
}

/// Reads a meter's data column as the JSON object it stands for (`evaluate::object_json`).
pub fn meter_object_json(row: &Row<'_>, index: usize) -> rusqlite::Result<String> {
    evaluate::object_json(row.get(index)?)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
}

/// Reads a job input column (an asset in its compact form).
pub fn job_input(row: &Row<'_>, index: usize) -> rusqlite::Result<MeterData> {
    let text: String = row.get(index)?;
    compact::decode(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
}

pub fn partner(row: &Row<'_>) -> rusqlite::Result<Partner> {
    Ok(Partner {
        id: PartnerId::from_uuid(row.get(0)?),
        name: row.get(1)?,
        created_at: row.get(2)?,
    })
}

/// Columns: those of `reads::METER_COLUMNS`.
pub fn meter(row: &Row<'_>) -> rusqlite::Result<Meter> {
    Ok(Meter {
        id: MeterId::from_uuid(row.get(0)?),
        partner_id: PartnerId::from_uuid(row.get(1)?),
        created_by: parsed(row, 2)?,
        data: meter_data(row, 3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        enrollments: enrollments(row, 6)?,
        abstentions: json(row, 7)?,
        global_status: parsed(row, 8)?,
    })
}

/// Reads a meter's enrollments column (`evaluate::parse_enrollments`).
pub fn enrollments(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<Enrollment>> {
    let text: String = row.get(index)?;
    evaluate::parse_enrollments(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
}

/// Parses a JSON column.
pub fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
}

pub fn job(row: &Row<'_>) -> rusqlite::Result<Job> {
    let regions: String = row.get(9)?;
    Ok(Job {
        id: gridroll_domain::JobId::from_uuid(row.get(0)?),
        partner_id: PartnerId::from_uuid(row.get(1)?),
        status: parsed(row, 2)?,
        file_name: row.get(3)?,
        update_existing: row.get(4)?,
        assets_count: count(row, 5)?,
        created_count: count(row, 6)?,
        updated_count: count(row, 7)?,
        failed_count: count(row, 8)?,
        transmission_regions: regions
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(index)?;
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, n))
}

/// Columns: job_id, seq, partner_reference, status, status_name, status_description,
/// meter_id, created_at, data.
pub fn provisional_asset(row: &Row<'_>) -> rusqlite::Result<ProvisionalAsset> {
    Ok(ProvisionalAsset {
        job_id: gridroll_domain::JobId::from_uuid(row.get(0)?),
        state: AssetState {
            seq: row.get(1)?,
            partner_reference: row.get(2)?,
            status: parsed(row, 3)?,
            status_name: parsed_opt(row, 4)?,
            status_description: row.get(5)?,
            meter_id: row.get::<_, Option<uuid::Uuid>>(6)?.map(MeterId::from_uuid),
            created_at: row.get(7)?,
        },
        data: job_input(row, 8)?,
    })
}
