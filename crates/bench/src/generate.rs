//! A deterministic meters CSV with realistic variety: every region, class and meter type,
//! one to three load types, addresses with commas, optional device and utility fields, and
//! 1% of rows that repeat an earlier reference.

use std::io::{self, BufWriter, Write};
use std::path::Path;

const REGIONS: [(&str, &str, &[&str]); 8] = [
    ("CAISO", "CA", &["PGE", "SCE", "SDGE"]),
    ("ERCOT", "TX", &["ONCOR", "CENTERPOINT"]),
    ("NYISO", "NY", &["CECONY", "NATGRID"]),
    ("ISONE", "MA", &["EVERSOURCE", "NATGRID"]),
    ("PJM", "PA", &["PECO", "COMED"]),
    ("SERC", "TN", &["TVA", "NES"]),
    ("WECC_SW", "AZ", &["SRP"]),
    ("WECC_PC", "WA", &["PSE"]),
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

pub const HEADER: &str = "partner_reference,transmission_region,customer_classification,load_types,meter_type,street_1,street_2,postal_code,city,state_or_province_code,country_code,end_customer_name,end_customer_email,device_type,device_serial_number,device_manufacturer,device_model,battery_energy_capacity_kwh,battery_power_capacity_kw,install_date,utility_name,electric_service_account_number,nem_type";

/// xorshift64: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Writes `rows` meters to `path`; returns the size in bytes.
pub fn write_csv(path: &Path, rows: usize) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..rows {
        // 1% of rows repeat an earlier reference: duplicates for the import to report.
        let reference = if i > 100 && rng.below(100) == 0 {
            format!("meter-{:08}", rng.below(i))
        } else {
            format!("meter-{i:08}")
        };
        let (region, state, utilities) = REGIONS[rng.below(REGIONS.len())];
        let mut loads: Vec<&str> = (0..=rng.below(3))
            .map(|_| LOADS[rng.below(LOADS.len())])
            .collect();
        loads.sort_unstable();
        loads.dedup();
        let street_2 = if rng.below(3) == 0 {
            format!("Unit {}", rng.below(400))
        } else {
            String::new()
        };
        let (name, email) = if rng.below(2) == 0 {
            (format!("Customer {i}"), format!("customer{i}@example.com"))
        } else {
            (String::new(), String::new())
        };
        let with_device = rng.below(4) != 0;
        let device = if with_device {
            format!(
                "BATTERY,SN-{i:010},Acme Power,PW-{},{}.5,{}.0,2024-{:02}-{:02}",
                rng.below(9),
                5 + rng.below(20),
                3 + rng.below(8),
                1 + rng.below(12),
                1 + rng.below(28)
            )
        } else {
            ",,,,,,".to_owned()
        };
        let utility = if rng.below(3) != 0 {
            format!(
                "{},ACCT-{:012}",
                utilities[rng.below(utilities.len())],
                rng.below(1 << 40)
            )
        } else {
            ",".to_owned()
        };
        let nem = if region == "CAISO" && rng.below(2) == 0 {
            "NEM3"
        } else {
            ""
        };
        writeln!(
            out,
            "{reference},{region},{},\"{}\",{},\"{} Main Street, Building {}\",{street_2},{:05},{},{state},US,{name},{email},{device},{utility},{nem}",
            CLASSES[rng.below(2)],
            loads.join(","),
            METER_TYPES[rng.below(3)],
            1 + rng.below(9999),
            rng.below(40),
            10000 + rng.below(89999),
            CITIES[rng.below(CITIES.len())],
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}
