//! A meter's time zone, and its local dates as instants. Leap takes the dates of idle
//! periods, disenrollments and participation "in the timezone the meter is in"; a meter
//! has no zone of its own, so it is derived from where it is: its state or province, or
//! where that is not known, its transmission region.
//!
//! A state that spans zones takes the zone where most of its people live (Texas is
//! Central, Florida, Indiana, Kentucky and Michigan Eastern, Tennessee, Kansas, Nebraska
//! and the Dakotas Central, Idaho Mountain, Oregon Pacific): a meter's dates never depend
//! on a county table that the partner cannot see.

use jiff::Timestamp;
use jiff::civil::Date as CivilDate;
use jiff::tz::TimeZone;
use time::Date;

use crate::enums::TransmissionRegion;
use crate::meter::MeterData;

/// States and provinces (by their two-letter code) and the zone of each.
const BY_STATE: &[(&str, &str)] = &[
    ("AL", "America/Chicago"),
    ("AK", "America/Anchorage"),
    ("AZ", "America/Phoenix"),
    ("AR", "America/Chicago"),
    ("CA", "America/Los_Angeles"),
    ("CO", "America/Denver"),
    ("CT", "America/New_York"),
    ("DE", "America/New_York"),
    ("DC", "America/New_York"),
    ("FL", "America/New_York"),
    ("GA", "America/New_York"),
    ("HI", "Pacific/Honolulu"),
    ("ID", "America/Boise"),
    ("IL", "America/Chicago"),
    ("IN", "America/Indiana/Indianapolis"),
    ("IA", "America/Chicago"),
    ("KS", "America/Chicago"),
    ("KY", "America/New_York"),
    ("LA", "America/Chicago"),
    ("ME", "America/New_York"),
    ("MD", "America/New_York"),
    ("MA", "America/New_York"),
    ("MI", "America/Detroit"),
    ("MN", "America/Chicago"),
    ("MS", "America/Chicago"),
    ("MO", "America/Chicago"),
    ("MT", "America/Denver"),
    ("NE", "America/Chicago"),
    ("NV", "America/Los_Angeles"),
    ("NH", "America/New_York"),
    ("NJ", "America/New_York"),
    ("NM", "America/Denver"),
    ("NY", "America/New_York"),
    ("NC", "America/New_York"),
    ("ND", "America/Chicago"),
    ("OH", "America/New_York"),
    ("OK", "America/Chicago"),
    ("OR", "America/Los_Angeles"),
    ("PA", "America/New_York"),
    ("RI", "America/New_York"),
    ("SC", "America/New_York"),
    ("SD", "America/Chicago"),
    ("TN", "America/Chicago"),
    ("TX", "America/Chicago"),
    ("UT", "America/Denver"),
    ("VT", "America/New_York"),
    ("VA", "America/New_York"),
    ("WA", "America/Los_Angeles"),
    ("WV", "America/New_York"),
    ("WI", "America/Chicago"),
    ("WY", "America/Denver"),
    ("PR", "America/Puerto_Rico"),
    ("GU", "Pacific/Guam"),
    ("VI", "America/St_Thomas"),
    ("AB", "America/Edmonton"),
    ("BC", "America/Vancouver"),
    ("MB", "America/Winnipeg"),
    ("NB", "America/Moncton"),
    ("NL", "America/St_Johns"),
    ("NS", "America/Halifax"),
    ("NT", "America/Yellowknife"),
    ("NU", "America/Iqaluit"),
    ("ON", "America/Toronto"),
    ("PE", "America/Halifax"),
    ("QC", "America/Toronto"),
    ("SK", "America/Regina"),
    ("YT", "America/Whitehorse"),
];

/// The zone of a region's grid operator, for a meter whose state is not in the table.
fn by_region(region: TransmissionRegion) -> &'static str {
    match region {
        TransmissionRegion::Caiso | TransmissionRegion::WeccPc => "America/Los_Angeles",
        TransmissionRegion::Ercot | TransmissionRegion::Serc => "America/Chicago",
        TransmissionRegion::Nyiso | TransmissionRegion::Isone | TransmissionRegion::Pjm => {
            "America/New_York"
        }
        TransmissionRegion::WeccSw => "America/Phoenix",
    }
}

/// The time zone a meter's dates are taken in.
#[derive(Debug, Clone)]
pub struct MeterZone {
    name: &'static str,
    zone: TimeZone,
}

impl MeterZone {
    /// The zone of a meter: its state's, or its region's.
    pub fn of(meter: &MeterData) -> Self {
        let state = meter
            .get("customer.state_or_province_code")
            .and_then(|v| v.as_str())
            .map(str::to_ascii_uppercase);
        let name = state
            .and_then(|code| BY_STATE.iter().find(|(s, _)| *s == code).map(|(_, z)| *z))
            .unwrap_or_else(|| by_region(meter.transmission_region()));
        Self::named(name)
    }

    fn named(name: &'static str) -> Self {
        // Every name of the tables is in the compiled-in database (a test checks).
        let zone = TimeZone::get(name).unwrap_or(TimeZone::UTC);
        Self { name, zone }
    }

    /// The zone's IANA name, e.g. `America/Los_Angeles`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The instant a local date begins, in milliseconds since the epoch.
    pub fn start_of(&self, date: Date) -> i64 {
        let civil = civil(date);
        civil
            .to_zoned(self.zone.clone())
            .map(|z| z.timestamp().as_millisecond())
            // A date the zone cannot place (out of jiff's range) starts at midnight UTC.
            .unwrap_or_else(|_| crate::timestamp::to_millis(date.midnight().assume_utc()))
    }

    /// The instant after a local date ends: the start of the next day.
    pub fn end_of(&self, date: Date) -> i64 {
        date.next_day().map_or(i64::MAX, |next| self.start_of(next))
    }

    /// The local date of an instant.
    pub fn date_of(&self, millis: i64) -> Date {
        let day = Timestamp::from_millisecond(millis)
            .map(|t| t.to_zoned(self.zone.clone()).date())
            .unwrap_or(CivilDate::MAX);
        Date::from_calendar_date(
            i32::from(day.year()),
            time::Month::try_from(day.month() as u8).unwrap_or(time::Month::January),
            day.day() as u8,
        )
        .unwrap_or(Date::MAX)
    }

    /// The last local date before an instant that ends a period.
    pub fn last_date_before(&self, millis: i64) -> Date {
        self.date_of(millis.saturating_sub(1))
    }
}

fn civil(date: Date) -> CivilDate {
    CivilDate::new(
        date.year() as i16,
        u8::from(date.month()) as i8,
        date.day() as i8,
    )
    .unwrap_or(CivilDate::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::{date, datetime};

    use super::*;
    use crate::timestamp::to_millis;

    fn meter(state: &str, region: &str) -> MeterData {
        MeterData::parse(json!({
            "partner_reference": "zone-1",
            "transmission_region": region,
            "customer_classification": "RESIDENTIAL",
            "load_types": ["HVAC"],
            "meter_type": "DEVICE",
            "customer": {"street_1": "1 Main St", "postal_code": "94105", "city": "Somewhere",
                         "state_or_province_code": state, "country_code": "US"}
        }))
        .unwrap()
    }

    #[test]
    fn every_zone_of_the_tables_is_in_the_compiled_in_database() {
        for (state, name) in BY_STATE {
            assert!(TimeZone::get(name).is_ok(), "{state}: {name}");
        }
        for region in [
            TransmissionRegion::Caiso,
            TransmissionRegion::Ercot,
            TransmissionRegion::Nyiso,
            TransmissionRegion::Isone,
            TransmissionRegion::Pjm,
            TransmissionRegion::Serc,
            TransmissionRegion::WeccSw,
            TransmissionRegion::WeccPc,
        ] {
            assert!(TimeZone::get(by_region(region)).is_ok(), "{region}");
        }
    }

    #[test]
    fn a_meter_takes_its_states_zone_and_else_its_regions() {
        assert_eq!(
            MeterZone::of(&meter("CA", "CAISO")).name(),
            "America/Los_Angeles"
        );
        assert_eq!(
            MeterZone::of(&meter("tx", "ERCOT")).name(),
            "America/Chicago"
        );
        assert_eq!(
            MeterZone::of(&meter("FL", "SERC")).name(),
            "America/New_York"
        );
        assert_eq!(
            MeterZone::of(&meter("ZZ", "WECC_SW")).name(),
            "America/Phoenix"
        );
    }

    #[test]
    fn a_local_day_spans_the_daylight_saving_change() {
        let zone = MeterZone::of(&meter("CA", "CAISO"));
        // 2027-03-14 is the day California's clocks go forward: a day of 23 hours.
        let start = zone.start_of(date!(2027 - 03 - 14));
        let end = zone.end_of(date!(2027 - 03 - 14));
        assert_eq!(start, to_millis(datetime!(2027-03-14 08:00 UTC)));
        assert_eq!(end, to_millis(datetime!(2027-03-15 07:00 UTC)));
        assert_eq!(end - start, 23 * 3_600_000);
        // In November the day they go back has 25.
        let day = date!(2027 - 11 - 07);
        assert_eq!(zone.end_of(day) - zone.start_of(day), 25 * 3_600_000);
        assert_eq!(zone.date_of(start), date!(2027 - 03 - 14));
        assert_eq!(zone.last_date_before(end), date!(2027 - 03 - 14));
    }

    #[test]
    fn arizona_keeps_standard_time_all_year() {
        let zone = MeterZone::of(&meter("AZ", "WECC_SW"));
        let day = date!(2027 - 07 - 01);
        assert_eq!(
            zone.start_of(day),
            to_millis(datetime!(2027-07-01 07:00 UTC))
        );
        assert_eq!(zone.end_of(day) - zone.start_of(day), 24 * 3_600_000);
    }
}
