//! The catalog and partner programs.

use gridroll_store::PartnerProgramsError;
use gridroll_testkit::Backend;

use crate::{Fixture, NOW};

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

gridroll_testkit::backend_tests!(
    a_partners_programs_are_set_only_when_the_partner_and_every_program_exist,
    a_retired_program_is_nobodys_until_it_is_put_again,
);
