//! Reading and importing meters.

use gridroll_domain::enums::CreatedBy;
use gridroll_store::MeterFilter;
use gridroll_testkit::Backend;

use crate::{Fixture, NOW, meter};

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

gridroll_testkit::backend_tests!(
    imported_meters_may_share_a_reference_and_are_read_by_id_and_by_search,
    another_partners_meter_is_not_found,
);
