//! A deterministic meters CSV shaped like what partners bring: nine meters in ten in the
//! five market regions where programs run (CAISO, ERCOT, NYISO, ISO-NE, PJM), each with
//! a state, a ZIP code and a utility of that region; the rest in the regions of a single
//! utility program. One to three load types, addresses with commas, and the fields
//! programs ask for beyond the global ones (device details, service account and meter
//! numbers, NEM type, baseline method, dispatch option, company name) present on part of
//! the rows, so that eligibility, missing fields and enrollments are worked out as for a
//! real inventory. 1% of rows repeat an earlier reference.

use std::io::{self, BufWriter, Write};
use std::path::Path;

/// A region, its state, the ZIP codes of that state, its utilities, and how many rows
/// in a thousand fall in it.
struct Region {
    name: &'static str,
    state: &'static str,
    zips: (u32, u32),
    utilities: &'static [&'static str],
    per_mille: usize,
}

const REGIONS: [Region; 8] = [
    Region {
        name: "CAISO",
        state: "CA",
        zips: (90001, 96162),
        utilities: &["PGE", "SCE", "SDGE", "SMUD"],
        per_mille: 300,
    },
    Region {
        name: "ERCOT",
        state: "TX",
        zips: (75001, 79999),
        utilities: &["ONCOR", "CENTERPOINT", "AEP_CENTRAL", "TNMP"],
        per_mille: 180,
    },
    Region {
        name: "NYISO",
        state: "NY",
        zips: (10001, 14925),
        utilities: &["CECONY", "NATGRID", "PSEGLI", "ORU"],
        per_mille: 160,
    },
    Region {
        name: "PJM",
        state: "PA",
        zips: (15001, 19640),
        utilities: &["PECO", "COMED", "PPL", "METED"],
        per_mille: 150,
    },
    Region {
        name: "ISONE",
        state: "MA",
        zips: (1001, 2791),
        utilities: &["EVERSOURCE", "NATGRID", "UNITIL"],
        per_mille: 110,
    },
    Region {
        name: "SERC",
        state: "TN",
        zips: (37010, 38589),
        utilities: &["TVA", "NES", "MLGW"],
        per_mille: 40,
    },
    Region {
        name: "WECC_SW",
        state: "AZ",
        zips: (85001, 86556),
        utilities: &["SRP"],
        per_mille: 30,
    },
    Region {
        name: "WECC_PC",
        state: "WA",
        zips: (98001, 99403),
        utilities: &["PSE"],
        per_mille: 30,
    },
];
const CLASSES: [&str; 2] = ["RESIDENTIAL", "COMMERCIAL"];
const METER_TYPES: [&str; 3] = ["DEVICE", "UTILITY_METER", "SUBMETER"];
const LOADS: [&str; 6] = [
    "HVAC",
    "EV_CHARGING",
    "BATTERY_STORAGE",
    "WATER_HEATING",
    "LIGHTING",
    "OTHER",
];
const CITIES: [&str; 6] = [
    "Springfield",
    "Riverside",
    "Fairview",
    "Salem",
    "Georgetown",
    "San José",
];

pub const HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,street_2,postal_code,city,state_or_province_code,country_code,end_customer_name,end_customer_company_name,device_type,device_serial_number,device_manufacturer,device_model,battery_energy_capacity_kwh,battery_power_capacity_kw,install_date,permission_to_operate_date,number_of_devices,utility_name,electric_service_account_number,utility_meter_serial_number,nem_type,cbl_method,dispatch_option";

/// xorshift64: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn region(&mut self) -> &'static Region {
        let mut n = self.below(1000);
        for region in &REGIONS {
            if n < region.per_mille {
                return region;
            }
            n -= region.per_mille;
        }
        &REGIONS[0]
    }
}

/// Writes `rows` meters to `path`; returns the size in bytes.
pub fn write_csv(path: &Path, rows: usize) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..rows {
        write_row(&mut out, &mut rng, i)?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn write_row(out: &mut impl Write, rng: &mut Rng, i: usize) -> io::Result<()> {
    // 1% of rows repeat an earlier reference: duplicates for the import to report.
    let reference = if i > 100 && rng.chance(1) {
        format!("meter-{:08}", rng.below(i))
    } else {
        format!("meter-{i:08}")
    };
    let region = rng.region();
    let class = rng.pick(&CLASSES);
    let commercial = class == "COMMERCIAL";
    let mut loads: Vec<&str> = (0..=rng.below(3)).map(|_| rng.pick(&LOADS)).collect();
    loads.sort_unstable();
    loads.dedup();
    let street_2 = if rng.chance(30) {
        format!("Unit {}", rng.below(400))
    } else {
        String::new()
    };
    let name = if rng.chance(50) {
        format!("Customer {i}")
    } else {
        String::new()
    };
    let company = if commercial && rng.chance(70) {
        format!("Company {}", rng.below(50_000))
    } else {
        String::new()
    };
    let device = device(rng, i, loads.contains(&"BATTERY_STORAGE"));
    let utility = if rng.chance(90) {
        rng.pick(region.utilities)
    } else {
        ""
    };
    let account = if rng.chance(60) {
        format!("ACCT-{:012}", rng.below(1 << 40))
    } else {
        String::new()
    };
    let meter_serial = if rng.chance(30) {
        format!("MS-{:09}", rng.below(1 << 30))
    } else {
        String::new()
    };
    let (nem, cbl, dispatch) = (
        region_field(rng, region, "CAISO", &["NEM2", "NEM3"]),
        region_field(rng, region, "NYISO", &["AVERAGE_DAY", "WEATHER_ADJUSTED"]),
        region_field(rng, region, "ISONE", &["DAILY", "TARGETED"]),
    );
    writeln!(
        out,
        "{reference},{},{class},\"{}\",{},\"{} Main Street, Building {}\",{street_2},{:05},{},{},US,{name},{company},{device},{utility},{account},{meter_serial},{nem},{cbl},{dispatch}",
        region.name,
        loads.join(","),
        rng.pick(&METER_TYPES),
        1 + rng.below(9999),
        rng.below(40),
        region.zips.0 as usize + rng.below((region.zips.1 - region.zips.0) as usize),
        rng.pick(&CITIES),
        region.state,
    )
}

/// The device's columns: a battery's details on most rows with a battery, some details
/// of another device on a few others, none on the rest.
fn device(rng: &mut Rng, i: usize, battery: bool) -> String {
    if battery && rng.chance(70) {
        let permission = if rng.chance(70) {
            format!("2024-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28))
        } else {
            String::new()
        };
        let devices = if rng.chance(50) {
            (1 + rng.below(3)).to_string()
        } else {
            String::new()
        };
        format!(
            "BATTERY,SN-{i:010},Acme Power,PW-{},{}.5,{}.0,2023-{:02}-{:02},{permission},{devices}",
            rng.below(9),
            5 + rng.below(20),
            3 + rng.below(8),
            1 + rng.below(12),
            1 + rng.below(28)
        )
    } else if rng.chance(20) {
        format!(
            "SMART_THERMOSTAT,TS-{i:010},Acme Climate,T-{},,,,,",
            rng.below(5)
        )
    } else {
        ",,,,,,,,".to_owned()
    }
}

/// A value for a field of one region's programs, on half of that region's rows.
fn region_field(
    rng: &mut Rng,
    region: &Region,
    wanted: &str,
    values: &[&'static str],
) -> &'static str {
    if region.name == wanted && rng.chance(50) {
        rng.pick(values)
    } else {
        ""
    }
}
