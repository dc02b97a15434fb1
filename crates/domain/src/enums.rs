//! The closed vocabularies of the meter API. Wire names are the SCREAMING_SNAKE_CASE
//! spellings of the contract; `VARIANTS` lists them for validation and documentation.

use serde::{Deserialize, Serialize};
use strum::{AsRefStr, Display, EnumString, VariantNames};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            Serialize, Deserialize, Display, EnumString, AsRefStr, VariantNames,
        )]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }
    };
}

wire_enum!(
    /// The grid operator region a meter is in.
    TransmissionRegion { Caiso, Ercot, Nyiso, Isone, Pjm, Serc, WeccSw, WeccPc }
);

wire_enum!(
    /// Residential (home) or commercial (business).
    CustomerClassification { Residential, Commercial }
);

wire_enum!(
    /// A partner-controlled, curtailable load behind the meter.
    LoadType {
        Hvac, EvCharging, BatteryStorage, ColdStorage, Pumping, WaterHeating,
        BuildingAutomation, Generation, Manufacturing, Lighting, Other,
    }
);

wire_enum!(
    /// The kind of asset a meter record describes.
    MeterType { UtilityMeter, Submeter, Device }
);

wire_enum!(
    /// Dispatch strategy used in ConnectedSolutions.
    DispatchOption { Daily, Targeted }
);

wire_enum!(
    /// Type of a device on the premises.
    DeviceType {
        Battery, Generator, Ev, EvCharger, BidirectionalEvCharger, SmartThermostat,
        AirConditioner, HeatPump,
    }
);

wire_enum!(
    /// Fuel source of a generator.
    FuelType { Diesel, NaturalGas, DualFuel, CoGen, EnergyStorage, Other }
);

wire_enum!(
    /// Net energy metering rules a CAISO battery is under.
    NemType { Nem2, Nem3 }
);

wire_enum!(
    /// Customer baseline load verification methodology (NYISO).
    CblMethod { AverageDay, WeatherAdjusted }
);

wire_enum!(
    /// Legal form of the end customer (PSEG Long Island programs).
    CompanyType {
        IndividualOrSoleProprietor, LimitedLiabilityCompany, Partnership, Corporation,
        Other, ExemptPayee,
    }
);

wire_enum!(
    /// EV supply equipment voltage level.
    VoltageLevel {
        #[serde(rename = "EVSE_LEVEL_1")]
        #[strum(serialize = "EVSE_LEVEL_1")]
        EvseLevel1,
        #[serde(rename = "EVSE_LEVEL_2")]
        #[strum(serialize = "EVSE_LEVEL_2")]
        EvseLevel2,
    }
);

wire_enum!(
    /// The utility whose territory the customer is in.
    Utility {
        Pge, Sce, Sdge, Smud, Ladwp, Svp, Cecony, Oru, Psegli, Nys, Rie, Eversource,
        Natgrid, Unitil, Ppl, Capelight, Uplight, UnitedIlluminated, Smt, AepCentral,
        AepNorth, NuecesElectric, Oncor, Centerpoint, EntergyGulf, Swepco, Tnmp, Demo,
        Demo2, LeapTestCaiso, LeapTestNyiso, Comed, Bge, Peco, Meted, Penelec, Pseg,
        Dominion, Westpenn, Pennpower, Pepco, PjmDemo, Other, Nes, Mlgw, Kub, Npu,
        Mtemc, Precc, Hsvu, Srp, Pse, Tva,
    }
);

wire_enum!(
    /// Which kind of actor created a meter.
    CreatedBy { Partner, Leap, Utility }
);

wire_enum!(
    /// Where a meter stands with a program (or, for the global status, overall).
    EnrollmentStatus { Active, Eligible, Ineligible, NotParticipating, Pending }
);

wire_enum!(
    /// Whether a meter takes part in events during a period.
    ParticipationPreference { Participate, Idle, Disenroll }
);

wire_enum!(
    /// A kind of step a meter needs before it can participate.
    ActionType {
        IsAuthorized, DocumentsSigned, HasAmi, NotEnrolledInConflictingProgram, Participating,
        HasMarketRegistration, NoMissingFields, Generator, Address, HasNominations,
        HasBiddingStrategy, IsEligible, IsAssignedToAResource, MeetsExtraProgramRequirements,
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn multi_word_variants_use_the_contract_spelling() {
        assert_eq!(TransmissionRegion::WeccSw.as_ref(), "WECC_SW");
        assert_eq!(LoadType::from_str("EV_CHARGING"), Ok(LoadType::EvCharging));
        assert_eq!(VoltageLevel::EvseLevel1.to_string(), "EVSE_LEVEL_1");
        assert_eq!(Utility::Demo2.as_ref(), "DEMO2");
        assert_eq!(NemType::Nem3.as_ref(), "NEM3");
        assert_eq!(
            serde_json::to_string(&Utility::LeapTestCaiso).unwrap(),
            "\"LEAP_TEST_CAISO\""
        );
    }

    #[test]
    fn every_listed_variant_parses_back() {
        for name in Utility::VARIANTS {
            assert_eq!(Utility::from_str(name).unwrap().as_ref(), *name);
        }
        for name in LoadType::VARIANTS {
            assert_eq!(LoadType::from_str(name).unwrap().as_ref(), *name);
        }
    }
}
