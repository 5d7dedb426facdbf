use proptest::prelude::*;
use ringsource_core::channel::Channel;
use ringsource_core::touch::{Touch, TouchHistory};

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

fn touch(channel: Channel, source: &str, at_ms: u64) -> Touch {
    Touch {
        channel,
        source: source.to_owned(),
        medium: "x".to_owned(),
        campaign: None,
        term: None,
        content: None,
        utm_id: None,
        click_id: None,
        landing_path: "/".to_owned(),
        referrer_host: None,
        at_ms,
    }
}

#[test]
fn first_visit_fills_both() {
    let mut history = TouchHistory::default();
    let ad = touch(Channel::PaidSearch, "google", 1);
    history.record(ad.clone());
    assert_eq!(history.first.as_ref(), Some(&ad));
    assert_eq!(history.last.as_ref(), Some(&ad));
}

#[test]
fn direct_return_keeps_the_campaign_as_last() {
    let mut history = TouchHistory::default();
    let ad = touch(Channel::PaidSearch, "yandex", 1);
    history.record(ad.clone());
    history.record(touch(Channel::Direct, "(direct)", 2));
    assert_eq!(history.last, Some(ad.clone()));
    assert_eq!(history.first, Some(ad));
}

#[test]
fn direct_is_last_when_there_is_nothing_else() {
    let mut history = TouchHistory::default();
    history.record(touch(Channel::Direct, "(direct)", 1));
    let again = touch(Channel::Direct, "(direct)", 2);
    history.record(again.clone());
    assert_eq!(history.last, Some(again));
    assert_eq!(history.first.map(|t| t.at_ms), Some(1));
}

#[test]
fn a_new_campaign_replaces_the_last_but_not_the_first() {
    let mut history = TouchHistory::default();
    let direct = touch(Channel::Direct, "(direct)", 1);
    let organic = touch(Channel::OrganicSearch, "google", 2);
    let social = touch(Channel::PaidSocial, "vk", 3);
    history.record(direct.clone());
    history.record(organic.clone());
    assert_eq!(history.last, Some(organic));
    history.record(social.clone());
    assert_eq!(history.last, Some(social));
    assert_eq!(history.first, Some(direct));
}

#[test]
fn campaign_expiry_lets_a_late_direct_visit_through() {
    let mut history = TouchHistory::default();
    history.record_with_expiry(touch(Channel::PaidSearch, "google", 0), 30 * DAY_MS);
    history.record_with_expiry(touch(Channel::Direct, "(direct)", 30 * DAY_MS), 30 * DAY_MS);
    assert_eq!(history.last.as_ref().map(|t| t.channel), Some(Channel::PaidSearch), "at the boundary it holds");
    history.record_with_expiry(touch(Channel::Direct, "(direct)", 30 * DAY_MS + 1), 30 * DAY_MS);
    assert_eq!(history.last.as_ref().map(|t| t.channel), Some(Channel::Direct));
    assert_eq!(history.first.map(|t| t.channel), Some(Channel::PaidSearch));
}

#[test]
fn a_clock_that_went_backwards_does_not_expire_the_campaign() {
    let mut history = TouchHistory::default();
    history.record_with_expiry(touch(Channel::Email, "newsletter", 10 * DAY_MS), DAY_MS);
    history.record_with_expiry(touch(Channel::Direct, "(direct)", 0), DAY_MS);
    assert_eq!(history.last.map(|t| t.channel), Some(Channel::Email));
}

#[test]
fn history_round_trips_through_json() {
    let mut history = TouchHistory::default();
    history.record(touch(Channel::Referral, "forum.example.net", 5));
    let json = serde_json::to_string(&history).unwrap();
    assert_eq!(serde_json::from_str::<TouchHistory>(&json).unwrap(), history);
}

fn any_touch() -> impl Strategy<Value = Touch> {
    (prop::sample::select(Channel::ALL.to_vec()), 0u64..1_000_000).prop_map(|(channel, at)| touch(channel, "s", at))
}

proptest! {
    #[test]
    fn direct_never_replaces_a_non_direct_last(touches in prop::collection::vec(any_touch(), 1..40)) {
        let mut history = TouchHistory::default();
        for t in touches {
            let before = history.last.clone();
            history.record(t.clone());
            match before {
                Some(prev) if !prev.is_direct() && t.is_direct() => prop_assert_eq!(history.last.as_ref(), Some(&prev)),
                _ => prop_assert_eq!(history.last.as_ref(), Some(&t)),
            }
        }
    }

    #[test]
    fn first_never_changes_once_set(touches in prop::collection::vec(any_touch(), 1..40), expiry in 0u64..2_000_000) {
        let mut history = TouchHistory::default();
        let first = touches[0].clone();
        for t in touches {
            history.record_with_expiry(t, expiry);
            prop_assert_eq!(history.first.as_ref(), Some(&first));
        }
    }
}
