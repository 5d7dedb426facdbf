//! Attribution rules: matching a call to the session that held the number,
//! grace window, number reuse, static numbers, promo codes, caller history,
//! repeat callers and the credit models.

use proptest::prelude::*;
use ringsource_core::attribution::{
    CallerKind, Chosen, Confidence, Dialled, Facts, Model, PROMO_REASON, Relation, Tenure, caller_kind, credit,
    match_call, path,
};
use ringsource_core::channel::Channel;
use ringsource_core::touch::Touch;

const S: i64 = 1000;

fn tenure(session: &str, from_s: i64, until_s: i64) -> Tenure {
    Tenure { session_id: session.to_owned(), started_at_ms: from_s * S, held_until_ms: until_s * S }
}

fn facts<'a>(ring_s: i64, tenures: &'a [Tenure]) -> Facts<'a> {
    Facts {
        ring_at_ms: ring_s * S,
        dialled: Dialled::Pool { pool_id: "paid", tenures },
        grace_ms: 120 * S,
        promo: None,
        caller_prior: None,
    }
}

fn touch(channel: Channel, source: &str, at_ms: u64) -> Touch {
    Touch {
        channel,
        source: source.to_owned(),
        medium: "m".to_owned(),
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
fn live_lease_at_ring_time_is_high_confidence() {
    let t = [tenure("a", 0, 900)];
    let m = match_call(&facts(300, &t));
    assert_eq!(m.chosen, Chosen::Session("a".into()));
    assert_eq!(m.confidence, Confidence::High);
    assert_eq!(m.candidates.len(), 1);
    assert_eq!(m.candidates[0].relation, Relation::Live);
    assert!(m.reason.contains("at ring time"), "{}", m.reason);
}

#[test]
fn lease_start_is_inclusive_and_end_exclusive() {
    let t = [tenure("a", 100, 200)];
    assert_eq!(match_call(&facts(100, &t)).confidence, Confidence::High);
    // At the expiry instant the lease is over: grace, not live.
    assert_eq!(match_call(&facts(200, &t)).confidence, Confidence::Medium);
    // Before the lease started nobody held it.
    let before = match_call(&facts(99, &t));
    assert_eq!(before.chosen, Chosen::Nobody);
    assert!(before.candidates.is_empty());
    assert!(before.reason.contains("never been leased"), "{}", before.reason);
}

#[test]
fn grace_window_counts_a_late_caller_and_ends_exactly() {
    let t = [tenure("a", 0, 900)];
    let inside = match_call(&facts(900 + 119, &t));
    assert_eq!(inside.chosen, Chosen::Session("a".into()));
    assert_eq!(inside.confidence, Confidence::Medium);
    assert_eq!(inside.candidates[0].relation, Relation::Grace);
    assert!(inside.reason.contains("119 s before the call, within the 120 s grace window"), "{}", inside.reason);

    let outside = match_call(&facts(900 + 120, &t));
    assert_eq!(outside.chosen, Chosen::Nobody);
    assert_eq!(outside.confidence, Confidence::None);
    // The last holder is still listed, to explain the miss.
    assert_eq!(outside.candidates.len(), 1);
    assert_eq!(outside.candidates[0].relation, Relation::Expired);
    assert!(outside.reason.contains("beyond the 120 s grace window"), "{}", outside.reason);
}

#[test]
fn reused_number_goes_to_the_holder_at_ring_time() {
    // a held it 0..900, cooldown, then b from 1500.
    let t = [tenure("b", 1500, 2400), tenure("a", 0, 900)];
    let m = match_call(&facts(1600, &t));
    assert_eq!(m.chosen, Chosen::Session("b".into()));
    assert_eq!(m.confidence, Confidence::High);
    assert!(m.candidates.iter().all(|c| c.session_id == "b"), "a is beyond grace: {:?}", m.candidates);
    // A call during a's time still goes to a, even though b holds it now.
    assert_eq!(match_call(&facts(500, &t)).chosen, Chosen::Session("a".into()));
}

#[test]
fn a_live_holder_beats_a_previous_holder_in_grace() {
    // Take-over: a lost the number at 500 and b got it at once.
    let t = [tenure("a", 0, 500), tenure("b", 500, 1400)];
    let m = match_call(&facts(550, &t));
    assert_eq!(m.chosen, Chosen::Session("b".into()));
    assert_eq!(m.confidence, Confidence::High);
    let rel: Vec<_> = m.candidates.iter().map(|c| (c.session_id.as_str(), c.relation)).collect();
    assert_eq!(rel, vec![("b", Relation::Live), ("a", Relation::Grace)]);
}

#[test]
fn of_two_leases_in_grace_the_latest_ended_wins() {
    let t = [tenure("a", 0, 100), tenure("b", 100, 150)];
    let m = match_call(&facts(200, &t));
    assert_eq!(m.chosen, Chosen::Session("b".into()));
    assert_eq!(m.confidence, Confidence::Medium);
    assert_eq!(m.candidates.len(), 2);
}

#[test]
fn static_number_maps_to_its_source() {
    let f = Facts { dialled: Dialled::Static { label: "Billboard" }, ..facts(10, &[]) };
    let m = match_call(&f);
    assert_eq!(m.chosen, Chosen::Static("Billboard".into()));
    assert_eq!(m.confidence, Confidence::High);
    assert_eq!(m.reason, "static number of Billboard");
}

#[test]
fn promo_code_wins_over_everything() {
    let t = [tenure("a", 0, 900)];
    let f = Facts { promo: Some(("7KM4X", "p")), caller_prior: Some("c"), ..facts(300, &t) };
    let m = match_call(&f);
    assert_eq!(m.chosen, Chosen::Session("p".into()));
    assert_eq!(m.confidence, Confidence::High);
    assert!(m.reason.starts_with(PROMO_REASON), "{}", m.reason);
    assert_eq!(m.candidates[0].relation, Relation::Promo);
    assert!(m.candidates.iter().any(|c| c.session_id == "a" && c.relation == Relation::Live));
    // Over a static number as well.
    let f = Facts { dialled: Dialled::Static { label: "Billboard" }, promo: Some(("7KM4X", "p")), ..facts(10, &[]) };
    assert_eq!(match_call(&f).chosen, Chosen::Session("p".into()));
}

#[test]
fn caller_history_is_a_low_confidence_fallback_only() {
    let t = [tenure("a", 0, 900)];
    let late = Facts { caller_prior: Some("old"), ..facts(5000, &t) };
    let m = match_call(&late);
    assert_eq!(m.chosen, Chosen::Session("old".into()));
    assert_eq!(m.confidence, Confidence::Low);
    assert!(m.candidates.iter().any(|c| c.relation == Relation::CallerHistory));
    // A live lease beats it.
    let live = Facts { caller_prior: Some("old"), ..facts(10, &t) };
    assert_eq!(match_call(&live).chosen, Chosen::Session("a".into()));
    // The original number with history: low; without: none with a reason.
    let orig = Facts { dialled: Dialled::Original, caller_prior: Some("old"), ..facts(10, &[]) };
    assert_eq!(match_call(&orig).confidence, Confidence::Low);
    let orig = Facts { dialled: Dialled::Original, ..facts(10, &[]) };
    let m = match_call(&orig);
    assert_eq!((m.chosen, m.confidence), (Chosen::Nobody, Confidence::None));
    assert!(m.reason.contains("site's own numbers"));
}

#[test]
fn overflow_and_unknown_numbers_are_unattributed_with_reasons() {
    for (dialled, words) in [(Dialled::Overflow, "overflow"), (Dialled::Unknown, "not one of the site's numbers")] {
        let m = match_call(&Facts { dialled, ..facts(10, &[]) });
        assert_eq!(m.chosen, Chosen::Nobody);
        assert!(m.reason.contains(words), "{}", m.reason);
    }
}

#[test]
fn repeat_caller_within_the_window() {
    let day = 86_400_000;
    assert_eq!(caller_kind(true, 100 * day, [], 30), CallerKind::FirstTime);
    assert_eq!(caller_kind(true, 100 * day, [71 * day], 30), CallerKind::Repeat);
    assert_eq!(caller_kind(true, 100 * day, [70 * day], 30), CallerKind::Repeat, "exactly the window");
    assert_eq!(caller_kind(true, 100 * day, [70 * day - 1], 30), CallerKind::FirstTime);
    assert_eq!(caller_kind(false, 100 * day, [99 * day], 30), CallerKind::Anonymous);
}

#[test]
fn models_pick_first_last_non_direct_or_split_evenly() {
    let p = path(vec![
        touch(Channel::Direct, "(direct)", 40),
        touch(Channel::PaidSearch, "google", 10),
        touch(Channel::OrganicSocial, "vk", 30),
        touch(Channel::PaidSearch, "google", 10), // the same visit again
    ]);
    assert_eq!(p.iter().map(|t| t.at_ms).collect::<Vec<_>>(), vec![10, 30, 40]);
    let first = credit(Model::FirstTouch, &p);
    assert_eq!((first.len(), p[first[0].touch].source.as_str()), (1, "google"));
    let last = credit(Model::LastTouch, &p);
    assert_eq!(p[last[0].touch].source, "vk", "a direct return does not take the credit");
    let lin = credit(Model::Linear, &p);
    assert_eq!(lin.len(), 3);
    assert!(lin.iter().all(|c| (c.share - 1.0 / 3.0).abs() < 1e-12));
    assert_eq!(lin.iter().map(|c| c.share).sum::<f64>(), 1.0);
    // All direct: last touch takes the last.
    let direct = path(vec![touch(Channel::Direct, "(direct)", 1), touch(Channel::Direct, "(direct)", 2)]);
    assert_eq!(credit(Model::LastTouch, &direct)[0].touch, 1);
    assert!(credit(Model::Linear, &[]).is_empty());
}

#[test]
fn model_names_round_trip() {
    for m in Model::ALL {
        assert_eq!(m.as_str().parse::<Model>().unwrap(), m);
        assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
    }
    assert!("last".parse::<Model>().is_err());
    assert_eq!(Model::default(), Model::LastTouch);
}

proptest! {
    /// Linear shares always sum to one, whatever the path length.
    #[test]
    fn linear_shares_sum_to_one(n in 1usize..40) {
        let p: Vec<Touch> = (0..n).map(|i| touch(Channel::Referral, "x", i as u64)).collect();
        let c = credit(Model::Linear, &p);
        prop_assert_eq!(c.len(), n);
        prop_assert!((c.iter().map(|c| c.share).sum::<f64>() - 1.0).abs() < 1e-12);
        prop_assert!(c.iter().all(|c| c.share > 0.0));
    }

    /// The choice does not depend on the order the leases are listed in.
    #[test]
    fn matching_ignores_lease_order(
        spans in proptest::collection::vec((0i64..2000, 1i64..900), 1..6),
        ring in 0i64..3500,
    ) {
        let tenures: Vec<Tenure> = spans
            .iter()
            .enumerate()
            .map(|(i, (from, len))| tenure(&format!("s{i}"), *from, from + len))
            .collect();
        let mut reversed = tenures.clone();
        reversed.reverse();
        let a = match_call(&facts(ring, &tenures));
        let b = match_call(&facts(ring, &reversed));
        prop_assert_eq!(a.confidence, b.confidence);
        // Ties on start (or end) may pick either, but never a different kind of match.
        if a.chosen != b.chosen {
            let same_start = |x: &Chosen, y: &Chosen| {
                let span = |c: &Chosen| match c { Chosen::Session(s) => tenures.iter().find(|t| &t.session_id == s).cloned(), _ => None };
                let (x, y) = (span(x).unwrap(), span(y).unwrap());
                x.started_at_ms == y.started_at_ms || x.held_until_ms == y.held_until_ms
            };
            prop_assert!(same_start(&a.chosen, &b.chosen));
        }
    }
}

/// The collector stores these values as text and answers with them as JSON:
/// the two spellings are one, and each reads back as itself.
#[test]
fn stored_values_have_one_spelling() {
    use ringsource_core::attribution::DialledKind;
    use ringsource_core::call::CallStatus;
    fn check<T: serde::Serialize + Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        name: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        for &v in all {
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::from(name(v)), "{v:?}");
            assert_eq!(parse(name(v)), Some(v), "{v:?}");
            assert!(!name(v).contains('_'), "{v:?}: hyphens, not underscores");
        }
    }
    check(&CallStatus::ALL, CallStatus::as_str, CallStatus::from_name);
    check(&DialledKind::ALL, DialledKind::as_str, DialledKind::from_name);
    check(&CallerKind::ALL, CallerKind::as_str, CallerKind::from_name);
    check(&Relation::ALL, Relation::as_str, Relation::from_name);
    check(
        &[Confidence::None, Confidence::Low, Confidence::Medium, Confidence::High],
        Confidence::as_str,
        Confidence::from_name,
    );
    check(&Model::ALL, Model::as_str, |s| s.parse().ok());
    assert_eq!(Dialled::Overflow.kind(), DialledKind::Overflow);
    assert_eq!(Dialled::Static { label: "x" }.kind(), DialledKind::Static);
}
