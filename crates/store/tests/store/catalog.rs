//! The catalog, partner programs, participation.

use gridroll_domain::MeterId;
use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::enums::{CreatedBy, ParticipationPreference};
use gridroll_store::PartnerProgramsError;
use gridroll_testkit::Backend;

use crate::{Fixture, NOW, meter};

async fn identifiers(f: &Fixture) -> Vec<String> {
    let programs = f
        .stores
        .catalog
        .partner_programs(f.partner, NOW)
        .await
        .unwrap();
    programs.into_iter().map(|p| p.identifier).collect()
}

async fn a_partners_programs_are_set_only_when_the_partner_and_every_program_exist(
    backend: Backend,
) {
    let f = Fixture::new(backend).await;
    let catalog = &f.stores.catalog;
    let all = identifiers(&f).await;
    assert!(all.len() > 1);
    let nobody = gridroll_domain::PartnerId::new();
    let some = ["CEC-DSGS".to_owned()];
    assert!(matches!(
        catalog.set_partner_programs(nobody, Some(&some)).await,
        Err(PartnerProgramsError::NoSuchPartner)
    ));
    assert!(matches!(
        catalog.set_partner_programs(f.partner, Some(&[])).await,
        Err(PartnerProgramsError::NoProgram)
    ));
    let unknown = ["CEC-DSGS".to_owned(), "NOPE".to_owned()];
    match catalog
        .set_partner_programs(f.partner, Some(&unknown))
        .await
    {
        Err(PartnerProgramsError::UnknownPrograms(names)) => assert_eq!(names, ["NOPE"]),
        other => panic!("expected the unknown program named, got {other:?}"),
    }
    assert_eq!(identifiers(&f).await, all, "a refusal changes nothing");
    catalog
        .set_partner_programs(f.partner, Some(&some))
        .await
        .unwrap();
    assert_eq!(identifiers(&f).await, some);
    catalog.set_partner_programs(f.partner, None).await.unwrap();
    assert_eq!(identifiers(&f).await, all);
}

async fn a_retired_program_is_nobodys_until_it_is_put_again(backend: Backend) {
    let f = Fixture::new(backend).await;
    let catalog = &f.stores.catalog;
    let entry = catalog
        .list_programs()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.program.identifier == "ELRP")
        .unwrap();
    assert!(catalog.retire_program("ELRP", NOW).await.unwrap());
    assert!(!identifiers(&f).await.contains(&"ELRP".to_owned()));
    assert!(!catalog.retire_program("NOPE", NOW).await.unwrap());
    catalog.put_program(&entry.program, NOW).await.unwrap();
    assert!(identifiers(&f).await.contains(&"ELRP".to_owned()));
}

async fn participation_changes_every_meter_named_or_none(backend: Backend) {
    let f = Fixture::new(backend).await;
    let ids = f
        .stores
        .meters
        .import_meters(
            f.partner,
            CreatedBy::Partner,
            vec![meter("p-1"), meter("p-2")],
            NOW,
        )
        .await
        .unwrap();
    let change = PreferenceChange {
        preference: ParticipationPreference::Idle,
        start: NOW,
        end: Some(NOW + 86_400_000),
        reason: Some("renovation".to_owned()),
    };
    let catalog = &f.stores.catalog;
    let missing = MeterId::new();
    let refused = catalog
        .set_participation(f.partner, &[ids[0], missing], &change, NOW)
        .await
        .unwrap();
    assert_eq!(refused, [missing]);
    let untouched = f
        .stores
        .meters
        .get_meter(f.partner, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert!(untouched.abstentions.is_empty(), "nothing is half-applied");
    let done = catalog
        .set_participation(f.partner, &ids, &change, NOW)
        .await
        .unwrap();
    assert!(done.is_empty());
    for id in ids {
        let changed = f
            .stores
            .meters
            .get_meter(f.partner, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.abstentions.len(), 1);
        assert_eq!(changed.updated_at, NOW);
    }
}

gridroll_testkit::backend_tests!(
    a_partners_programs_are_set_only_when_the_partner_and_every_program_exist,
    a_retired_program_is_nobodys_until_it_is_put_again,
    participation_changes_every_meter_named_or_none,
);
