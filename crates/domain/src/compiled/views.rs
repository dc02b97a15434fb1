//! Enrollments borrowed rather than built: from a list of [`Enrollment`]s, or from the
//! outcomes of a compiled evaluation, which hold their missing fields and reasons as
//! indexes and bits. Both read, and serialize, the same way.

use serde::{Serialize, Serializer};

use crate::eligibility::Reason;
use crate::enrollment::Enrollment;
use crate::enums::EnrollmentStatus;

/// One enrollment, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct EnrollmentRef<'e> {
    pub program: &'e str,
    pub status: EnrollmentStatus,
    pub missing: Missing<'e>,
    pub reasons: Reasons<'e>,
    pub activated_at: Option<i64>,
}

impl<'e> From<&'e Enrollment> for EnrollmentRef<'e> {
    fn from(e: &'e Enrollment) -> Self {
        Self {
            program: &e.program,
            status: e.status,
            missing: Missing {
                listed: &e.missing,
                at: &[],
                paths: &[],
            },
            reasons: Reasons {
                listed: &e.reasons,
                set: 0,
            },
            activated_at: e.activated_at,
        }
    }
}

impl EnrollmentRef<'_> {
    pub fn to_enrollment(&self) -> Enrollment {
        Enrollment {
            program: self.program.to_owned(),
            status: self.status,
            missing: self.missing.iter().map(str::to_owned).collect(),
            reasons: self.reasons.iter().collect(),
            activated_at: self.activated_at,
        }
    }
}

/// The fields an enrollment still needs, in order: listed, or paths of a program by
/// index. Serializes as a list of paths.
#[derive(Debug, Clone, Copy)]
pub struct Missing<'e> {
    listed: &'e [String],
    at: &'e [u32],
    paths: &'e [String],
}

impl<'e> Missing<'e> {
    pub(super) const NONE: Self = Self {
        listed: &[],
        at: &[],
        paths: &[],
    };

    pub(super) fn of(at: &'e [u32], paths: &'e [String]) -> Self {
        Self {
            listed: &[],
            at,
            paths,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.listed.len() + self.at.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'e str> + use<'e> {
        let paths = self.paths;
        self.listed
            .iter()
            .map(String::as_str)
            .chain(self.at.iter().map(move |&i| paths[i as usize].as_str()))
    }
}

impl Serialize for Missing<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// The criteria that rule a meter out of a program, in order: listed, or as a set of
/// bits in the order `eligibility::evaluate` checks them. Serializes as a list.
#[derive(Debug, Clone, Copy)]
pub struct Reasons<'e> {
    listed: &'e [Reason],
    set: u8,
}

impl<'e> Reasons<'e> {
    /// The criteria of a set, bit `i` for `CRITERIA[i]`.
    const CRITERIA: [Reason; 5] = [
        Reason::Region,
        Reason::Class,
        Reason::MeterType,
        Reason::LoadTypes,
        Reason::Utility,
    ];
    pub(super) const REGION: u8 = 1;
    pub(super) const CLASS: u8 = 1 << 1;
    pub(super) const METER_TYPE: u8 = 1 << 2;
    pub(super) const LOAD_TYPES: u8 = 1 << 3;
    pub(super) const UTILITY: u8 = 1 << 4;

    pub(super) const NONE: Self = Self {
        listed: &[],
        set: 0,
    };

    pub(super) fn set(set: u8) -> Self {
        Self { listed: &[], set }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty() && self.set == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Reason> + use<'e> {
        let (listed, set) = (self.listed, self.set);
        listed.iter().copied().chain(
            Self::CRITERIA
                .into_iter()
                .enumerate()
                .filter(move |(i, _)| set & (1 << i) != 0)
                .map(|(_, reason)| reason),
        )
    }
}

impl Serialize for Reasons<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}
