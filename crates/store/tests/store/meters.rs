//! Reading and importing meters, and a partner's changes to them.

use gridroll_domain::enrollment::PreferenceChange;
use gridroll_domain::enums::{CreatedBy, ParticipationPreference};
use gridroll_domain::lifecycle::{Change, PartnerReference, Refusal, Tag};
use gridroll_domain::{MeterId, PartnerId};
use gridroll_store::{EditError, MeterEdit, MeterFilter, Unknown};
use gridroll_testkit::Backend;

use crate::{Fixture, NOW, committed, meter, process, set_participation};

fn edit(meter: MeterId, change: Change) -> MeterEdit {
    MeterEdit { meter, change }
}

fn reference(text: &str) -> Change {
    Change::Reference(PartnerReference::parse(text).unwrap())
}

async fn partner_meters(f: &Fixture, references: &[&str]) -> Vec<MeterId> {
    let job = committed(f, references, false).await;
    process(f, job, 100).await;
    let filter = MeterFilter::default();
    let meters = f
        .stores
        .meters
        .search_meters(f.partner, &filter, None, 100)
        .await
        .unwrap();
    references
        .iter()
        .map(|r| {
            meters
                .iter()
                .find(|m| m.data.partner_reference() == *r)
                .unwrap()
                .id
        })
        .collect()
}

async fn reference_of(f: &Fixture, partner: PartnerId, id: MeterId) -> String {
    let meter = f
        .stores
        .meters
        .get_meter(partner, id)
        .await
        .unwrap()
        .unwrap();
    meter.data.partner_reference().to_owned()
}

async fn changes_are_all_or_none_and_references_may_be_swapped(backend: Backend) {
    let f = Fixture::new(backend).await;
    let ids = partner_meters(&f, &["swap-a", "swap-b"]).await;
    let meters = &f.stores.meters;
    // A refusal for one meter leaves the other untouched.
    let tag = Change::AddTags(vec![Tag::parse("north").unwrap()]);
    meters
        .change_meters(
            f.partner,
            &[edit(ids[0], Change::Archive)],
            Unknown::Refuse,
            NOW,
        )
        .await
        .unwrap();
    let refused = meters
        .change_meters(
            f.partner,
            &[edit(ids[1], tag.clone()), edit(ids[0], Change::Archive)],
            Unknown::Refuse,
            NOW,
        )
        .await;
    assert!(
        matches!(&refused, Err(EditError::Refused(r)) if r == &[(ids[0], Refusal::AlreadyArchived)]),
        "{refused:?}"
    );
    let b = meters.get_meter(f.partner, ids[1]).await.unwrap().unwrap();
    assert!(b.data.as_map().get("tags").is_none());
    meters
        .change_meters(
            f.partner,
            &[edit(ids[0], Change::Unarchive)],
            Unknown::Refuse,
            NOW,
        )
        .await
        .unwrap();

    let swap = [
        edit(ids[0], reference("swap-b")),
        edit(ids[1], reference("swap-a")),
    ];
    let applied = meters
        .change_meters(f.partner, &swap, Unknown::Refuse, NOW + 1)
        .await
        .unwrap();
    assert_eq!(applied.changed, ids);
    assert_eq!(reference_of(&f, f.partner, ids[0]).await, "swap-b");
    assert_eq!(reference_of(&f, f.partner, ids[1]).await, "swap-a");
    let clash = [edit(ids[0], reference("swap-a"))];
    assert!(matches!(
        meters.change_meters(f.partner, &clash, Unknown::Refuse, NOW).await,
        Err(EditError::ReferenceTaken(t)) if t[0].held_by == ids[1]
    ));
    let unknown = MeterId::new();
    let skipped = meters
        .change_meters(
            f.partner,
            &[edit(ids[0], tag.clone()), edit(unknown, tag.clone())],
            Unknown::Skip,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        (skipped.changed, skipped.unknown),
        (vec![ids[0]], vec![unknown])
    );
    assert!(matches!(
        meters.change_meters(f.partner, &[edit(unknown, tag)], Unknown::Skip, NOW).await,
        Err(EditError::NotFound(missing)) if missing == [unknown]
    ));
}

async fn an_archived_meter_is_found_by_no_upload(backend: Backend) {
    let f = Fixture::new(backend).await;
    let ids = partner_meters(&f, &["gone-1"]).await;
    f.stores
        .meters
        .change_meters(
            f.partner,
            &[edit(ids[0], Change::Archive)],
            Unknown::Refuse,
            NOW,
        )
        .await
        .unwrap();
    let job = committed(&f, &["gone-1"], true).await;
    process(&f, job, 100).await;
    let filter = MeterFilter {
        partner_references: Some(vec!["gone-1".to_owned()]),
        ..MeterFilter::default()
    };
    let found = f
        .stores
        .meters
        .search_meters(f.partner, &filter, None, 10)
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        2,
        "the upload created a meter beside the archived one"
    );
    assert!(found.iter().any(|m| m.id == ids[0] && m.archived));
    assert!(found.iter().any(|m| m.id != ids[0] && !m.archived));
}

async fn imported_meters_may_share_a_reference_and_are_read_by_id_and_by_search(backend: Backend) {
    let f = Fixture::new(backend).await;
    let meters = &f.stores.meters;
    let ids = meters
        .import_meters(
            f.partner,
            CreatedBy::Utility,
            vec![meter("shared"), meter("shared"), meter("own")],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    let one = meters.get_meter(f.partner, ids[0]).await.unwrap().unwrap();
    assert_eq!(one.data.partner_reference(), "shared");
    assert_eq!((one.created_by, one.created_at), (CreatedBy::Utility, NOW));
    let stored = meters
        .get_stored_meter(f.partner, ids[1])
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.data_json.contains(r#""partner_reference":"shared""#),
        "{}",
        stored.data_json
    );
    let filter = MeterFilter {
        partner_references: Some(vec!["shared".to_owned()]),
        ..MeterFilter::default()
    };
    let found = meters
        .search_meters(f.partner, &filter, None, 10)
        .await
        .unwrap();
    assert_eq!(found.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..2]);
    let page = meters
        .search_meters(f.partner, &MeterFilter::default(), Some(ids[0]), 1)
        .await
        .unwrap();
    assert_eq!(page[0].id, ids[1], "pages follow creation order");
    let since = MeterFilter {
        modified_since: Some(NOW + 1),
        ..MeterFilter::default()
    };
    assert!(
        meters
            .search_meters(f.partner, &since, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn another_partners_meter_is_not_found(backend: Backend) {
    let f = Fixture::new(backend).await;
    let other = f
        .stores
        .accounts
        .create_partner("Other", NOW)
        .await
        .unwrap()
        .id;
    let meters = &f.stores.meters;
    let ids = meters
        .import_meters(other, CreatedBy::Utility, vec![meter("theirs")], NOW)
        .await
        .unwrap();
    assert!(meters.get_meter(f.partner, ids[0]).await.unwrap().is_none());
    assert!(
        meters
            .get_stored_meter(f.partner, ids[0])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(meters.meter_overview(f.partner).await.unwrap().total, 0);
    assert_eq!(meters.meter_overview(other).await.unwrap().total, 1);
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
    let missing = MeterId::new();
    let refused = set_participation(&f, &[ids[0], missing], &change).await;
    assert!(matches!(refused, Err(EditError::NotFound(m)) if m == [missing]));
    let untouched = f
        .stores
        .meters
        .get_meter(f.partner, ids[0])
        .await
        .unwrap()
        .unwrap();
    assert!(untouched.abstentions.is_empty(), "nothing is half-applied");
    let done = set_participation(&f, &ids, &change).await.unwrap();
    assert_eq!(done.changed, ids);
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
    participation_changes_every_meter_named_or_none,
    imported_meters_may_share_a_reference_and_are_read_by_id_and_by_search,
    another_partners_meter_is_not_found,
    changes_are_all_or_none_and_references_may_be_swapped,
    an_archived_meter_is_found_by_no_upload,
);
