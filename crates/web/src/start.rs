//! The full flow against a collector, behind the public `start(options)`:
//! stored number first, then one visit request whose answer carries the site
//! config (originals, consent, show-number) with the number, the swap, the
//! observer for later content, and a heartbeat while visible.
//!
//! Any failure leaves the site's own number on the page (or puts it back):
//! a tracking number that may no longer be ours is worse than none.

use std::cell::RefCell;
use std::rc::Rc;

use ringsource_core::phone::PhoneNumber;
use ringsource_core::touch::classify;
use wasm_bindgen::prelude::*;
use web_sys::Element;

use crate::browser::{self, document, window};
use crate::error::WebError;
use crate::js::{ObjectBuilder, get, get_f64, get_string, numbers, touch_to_js};
use crate::net::{Collector, NetError, Reply};
use crate::session::Session;
use crate::swap::Swap;
use crate::touches::History;
use crate::watch::Watch;

const CONSENT_KEY: &str = "ringsource.consent";
const DEFAULT_TIMEOUT_MS: u32 = 3000;

thread_local! {
    static FLOW: RefCell<Option<Rc<Flow>>> = const { RefCell::new(None) };
}

struct Flow {
    collector: Collector,
    /// The site's CMP already has consent (option `consent: true`).
    consent_given: bool,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    originals: Vec<PhoneNumber>,
    /// The number the page shows now, when it is not the site's own.
    shown: Option<PhoneNumber>,
    watch: Option<Watch>,
    session: Option<Session>,
    heartbeat: Option<i32>,
    waiting_for_consent: bool,
    heartbeat_secs: u32,
}

/// What `start()` resolves to, for the developer and for tests (the
/// package's `.d.ts` calls it `Outcome`).
fn outcome(kind: &str, number: Option<&PhoneNumber>, reason: Option<&str>) -> JsValue {
    outcome_with(kind, number, reason).build()
}

fn outcome_with(kind: &str, number: Option<&PhoneNumber>, reason: Option<&str>) -> ObjectBuilder {
    let session_id = FLOW
        .with(|f| f.borrow().as_ref().and_then(|f| f.state.borrow().session.as_ref().map(|s| s.session_id.clone())));
    ObjectBuilder::new()
        .set("kind", kind)
        .set_opt("number", number.map(PhoneNumber::e164))
        .set_opt("session_id", session_id)
        .set_opt("reason", reason)
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The outcome, or the promise of it once the collector has answered.
pub fn start(options: JsValue) -> Result<JsValue, JsValue> {
    let site = get_string(&options, "site").filter(|s| !s.is_empty()).ok_or(WebError::Option {
        name: "site",
        reason: "is required: the site id from the collector's configuration",
    })?;
    let base = get_string(&options, "collector").filter(|s| !s.is_empty()).ok_or(WebError::Option {
        name: "collector",
        reason: "is required: the collector's base URL, e.g. https://calls.example.com",
    })?;
    let timeout_ms = get_f64(&options, "timeoutMs").map_or(DEFAULT_TIMEOUT_MS, |t| t as u32);
    // `true` from a developer, "granted" from a script tag's data-consent.
    let consent = get(&options, "consent");
    let consent_given = consent.as_bool() == Some(true) || consent.as_string().as_deref() == Some("granted");

    // Crawlers are told apart by the collector, which answers them with the
    // site's own number: its list is the one kept up to date, and checking
    // here as well cost the bundle 261 B gzip.

    let flow = Rc::new(Flow {
        collector: Collector { base, site, timeout_ms },
        consent_given,
        state: RefCell::new(State::default()),
    });
    if let Some(old) = FLOW.with(|f| f.replace(Some(flow.clone()))) {
        old.stop();
    }

    // A returning visitor sees their number before any network call.
    if let Some(stored) = Session::load(&flow.collector.site) {
        let shown = stored.showable_at(now_ms()).cloned();
        {
            let mut state = flow.state.borrow_mut();
            state.originals = stored.originals.clone();
            state.session = Some(stored);
        }
        if let Some(number) = shown {
            flow.show(number);
        }
    }

    // One request: its answer carries the site config with the number. A
    // number already on show was revealed before (show-number sites).
    let revealed = flow.state.borrow().shown.is_some();
    Ok(flow.visit(revealed))
}

/// The visitor (or the site's consent banner) granted consent: store that,
/// and continue a flow that was waiting for it.
pub fn grant_consent() {
    browser::store(CONSENT_KEY, &JsValue::from_str("granted"));
    let flow = FLOW.with(|f| f.borrow().clone());
    if let Some(flow) = flow {
        let waiting = std::mem::take(&mut flow.state.borrow_mut().waiting_for_consent);
        if waiting {
            flow.visit(false);
        }
    }
}

/// Consent withdrawn: forget everything stored and show the site's own number.
pub fn revoke_consent() {
    browser::forget(CONSENT_KEY);
    crate::touches::forget();
    if let Some(flow) = FLOW.with(|f| f.borrow().clone()) {
        Session::forget(&flow.collector.site);
        flow.revert();
        flow.stop();
    }
}

/// `pageView(url, title?)`: a page of a single-page app, after a route
/// change. The values stay JS values all the way into the request body, and
/// the caller passes the URL: decoding them into Rust strings, and reading
/// `location.href` here when none was given, cost the bundle 160 B gzip.
pub fn page_view(url: JsValue, title: JsValue) -> JsValue {
    let Some(flow) = FLOW.with(|f| f.borrow().clone()) else { return JsValue::FALSE };
    let body = ObjectBuilder::new().set("url", url).set("title", title);
    flow.on_session("/pageviews", body, Box::new(|answer| JsValue::from_bool(answer.is_ok()))).unwrap_or(JsValue::FALSE)
}

impl Flow {
    fn consent(&self) -> bool {
        self.consent_given || browser::load(CONSENT_KEY).as_deref() == Some("granted")
    }

    fn failed(&self, error: &NetError) -> JsValue {
        // One console line. For a refused origin it carries the collector's
        // message, which names the origin and the setting to change.
        let mut line = String::from("ringsource: kept the page's number: ");
        line.push_str(&error.message());
        web_sys::console::warn_1(&line.into());
        if matches!(error, NetError::Status { code, .. } if code == "origin_not_allowed") {
            // A stored number dates from when the origin was allowed.
            self.revert();
            return outcome("original", None, Some("origin not allowed"));
        }
        let shown = self.state.borrow().shown.clone();
        let kind = if shown.is_some() { "stored" } else { "original" };
        outcome(kind, shown.as_ref(), Some("collector unavailable"))
    }

    /// Shows `number` everywhere the site's number (or the number shown
    /// before) appears, now and in content added later.
    fn show(&self, number: PhoneNumber) {
        let Some(body) = document().and_then(|d| d.body()) else { return };
        let mut state = self.state.borrow_mut();
        let mut find = state.originals.clone();
        if let Some(previous) = state.shown.take() {
            find.push(previous);
        }
        find.retain(|n| *n != number);
        let swap = Rc::new(Swap::new(&find, number.clone()));
        swap.apply(&body);
        state.watch = Watch::start(&body, swap).ok();
        state.shown = Some(number);
    }

    /// Puts the site's own number back.
    fn revert(&self) {
        let (shown, original) = {
            let mut state = self.state.borrow_mut();
            state.watch = None;
            (state.shown.take(), state.originals.first().cloned())
        };
        if let (Some(shown), Some(original), Some(body)) = (shown, original, document().and_then(|d| d.body())) {
            Swap::new(&[shown], original).apply(&body);
        }
    }

    fn stop(&self) {
        let mut state = self.state.borrow_mut();
        state.watch = None;
        if let (Some(id), Some(w)) = (state.heartbeat.take(), window()) {
            w.clear_interval_with_handle(id);
        }
    }

    /// Asks the collector what this visitor should see, and shows it; returns
    /// the promise of the outcome.
    fn visit(self: &Rc<Self>, reveal: bool) -> JsValue {
        let consent = self.consent();
        let Some((body, history)) = self.visit_request(reveal, consent) else {
            return outcome("original", None, Some("cannot read the page"));
        };
        let flow = self.clone();
        self.collector.post("/visits", &body, Box::new(move |answer| flow.visited(answer, history, reveal, consent)))
    }

    fn visited(
        self: &Rc<Self>,
        answer: Result<JsValue, NetError>,
        history: History,
        reveal: bool,
        consent: bool,
    ) -> JsValue {
        let answer = match answer {
            Ok(a) => a,
            Err(e) => return self.failed(&e),
        };
        let config = get(&answer, "site");
        let originals = numbers(&get(&config, "originals"));
        {
            let mut state = self.state.borrow_mut();
            state.originals = originals;
            state.heartbeat_secs = get_f64(&answer, "heartbeat_secs").map_or(60, |s| s as u32);
        }
        if get(&config, "consent_required").as_bool() == Some(true) && !consent {
            // The collector kept nothing of this request; neither does the page.
            Session::forget(&self.collector.site);
            self.revert();
            self.state.borrow_mut().waiting_for_consent = true;
            return outcome("original", None, Some("waiting for consent"));
        }
        // The collector's touch, from its full table of sources, is the one to remember.
        let decided = get(&answer, "touch");
        let history = if decided.is_object() { crate::touches::with(decided) } else { history };
        crate::touches::save(&history);
        let (Some(session_id), Some(kind)) = (get_string(&answer, "session_id"), get_string(&answer, "kind")) else {
            return self.failed(&NetError::Malformed);
        };
        let number = get_string(&answer, "number").and_then(|n| PhoneNumber::parse(&n).ok());
        let expires_at_ms = get_f64(&answer, "expires_at_ms");
        let session = Session {
            session_id,
            number: number.clone().filter(|_| kind == "lease" || kind == "static"),
            expires_at_ms,
            originals: self.state.borrow().originals.clone(),
        };
        session.save(&self.collector.site);
        self.state.borrow_mut().session = Some(session);

        let show_number = get(&config, "show_number");
        if kind == "original" && show_number.is_object() && !reveal {
            self.revert();
            self.mask(&show_number);
            return outcome("original", None, Some("behind the show-number button"));
        }
        match (kind.as_str(), number) {
            ("lease" | "static", Some(number)) => {
                self.show(number.clone());
                if expires_at_ms.is_some() {
                    self.start_heartbeat();
                }
                // The pool ran out: a tracked number still, but the site's
                // overflow number, which no visit holds alone.
                let overflow = get(&answer, "overflow").as_bool() == Some(true);
                outcome_with(&kind, Some(&number), None).set_opt("overflow", overflow.then_some(true)).build()
            }
            ("promo", _) => {
                let code = get_string(&answer, "promo_code").unwrap_or_default();
                show_promo(&code);
                ObjectBuilder::new().set("kind", "promo").set("promo_code", code).build()
            }
            _ => {
                self.revert();
                outcome("original", None, None)
            }
        }
    }

    /// The visit's body, and the touch history it implies, which is stored
    /// only once the answer says that the page may store.
    fn visit_request(&self, reveal: bool, consent: bool) -> Option<(JsValue, History)> {
        let window = window()?;
        let document = window.document()?;
        let href = get_string(&get(&window, "location"), "href")?;
        // Reading `cookie` throws in sandboxed frames: then there are none.
        let cookies = get_string(&document, "cookie").unwrap_or_default();
        let referrer = get_string(&document, "referrer").unwrap_or_default();
        let visit = crate::visit::read(&href, &referrer, &cookies).ok()?;
        // The browser's own touch comes from a compact table of sources; the
        // collector reclassifies the raw referrer with its full table and
        // answers the touch it decided (see `visited`).
        let touch = touch_to_js(&classify(&visit, now_ms() as u64));
        let history = crate::touches::with(touch);

        let session_id = self.state.borrow().session.as_ref().map(|s| s.session_id.clone());
        let page = ObjectBuilder::new().set("url", href).set("title", get(&document, "title")).build();
        let body = ObjectBuilder::new()
            .set_opt("session_id", session_id)
            .set_opt("client_id", visit.ga_client_id.as_deref())
            .set_opt("ym_uid", visit.ym_uid.as_deref())
            .set("touch", history.last.clone())
            // A first touch that is this page view's own is not sent twice.
            .set_opt("first_touch", (!history.first_is_last).then(|| history.first.clone()))
            .set("page", page)
            .set("reveal", reveal)
            .set("consent", consent)
            .set("referrer", referrer)
            .build();
        Some((body, history))
    }

    /// Renews the lease while the page is visible; a hidden tab lets it
    /// lapse, which frees the number for the next visitor.
    fn start_heartbeat(self: &Rc<Self>) {
        let Some(w) = window() else { return };
        let mut state = self.state.borrow_mut();
        if state.heartbeat.is_some() {
            return;
        }
        let flow = Rc::downgrade(self);
        let tick = Closure::<dyn FnMut()>::new(move || {
            let Some(flow) = flow.upgrade() else { return };
            let visible = document().is_some_and(|d| !d.hidden());
            if visible {
                flow.heartbeat();
            }
        });
        let period = (state.heartbeat_secs.max(5) * 1000) as i32;
        state.heartbeat =
            w.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), period).ok();
        // The interval lives as long as the page (or until stop()).
        tick.forget();
    }

    fn heartbeat(self: &Rc<Self>) {
        let flow = self.clone();
        self.on_session(
            "/heartbeat",
            ObjectBuilder::new(),
            Box::new(move |answer| match answer {
                Ok(answer) => {
                    let mut state = flow.state.borrow_mut();
                    if let Some(session) = state.session.as_mut() {
                        session.expires_at_ms = get_f64(&answer, "expires_at_ms");
                        session.save(&flow.collector.site);
                    }
                    JsValue::UNDEFINED
                }
                // The lease is gone (expired while hidden, or taken over): ask
                // again rather than keep showing a number that is someone else's.
                Err(NetError::Status { status: 404 | 409 | 410, .. }) => flow.visit(false),
                Err(_) => JsValue::UNDEFINED,
            }),
        );
    }

    /// POSTs `body` with the session id to `path`; `None` without a session.
    fn on_session(&self, path: &str, body: ObjectBuilder, reply: Reply) -> Option<JsValue> {
        let session_id = self.state.borrow().session.as_ref().map(|s| s.session_id.clone())?;
        Some(self.collector.post(path, &body.set("session_id", session_id).build(), reply))
    }

    /// Show-number mode: hide each number block behind a button, and take a
    /// lease only when one is clicked.
    fn mask(self: &Rc<Self>, show_number: &JsValue) {
        let (Some(selector), Some(document)) = (get_string(show_number, "selector"), document()) else {
            return;
        };
        let label = get_string(show_number, "label").unwrap_or_else(|| "Show number".to_owned());
        let Ok(targets) = document.query_selector_all(&selector) else { return };
        let mut masked: Vec<(Element, Element)> = Vec::new();
        for i in 0..targets.length() {
            let Some(target) = targets.item(i).and_then(|n| n.dyn_into::<Element>().ok()) else { continue };
            let Ok(button) = document.create_element("button") else { continue };
            let _ = button.set_attribute("type", "button");
            let _ = button.set_attribute("class", "ringsource-show-number");
            button.set_text_content(Some(&label));
            let _ = target.set_attribute("hidden", "");
            if target.before_with_node_1(&button).is_ok() {
                masked.push((target, button));
            }
        }
        let masked = Rc::new(masked);
        let flow = self.clone();
        let on_click = Closure::<dyn FnMut()>::new(move || {
            // Unmask first: if the lease request fails the visitor still
            // gets the site's own number.
            for (target, button) in masked.iter() {
                let _ = target.remove_attribute("hidden");
                button.remove();
            }
            flow.visit(true);
        });
        let buttons = document.query_selector_all("button.ringsource-show-number");
        if let Ok(buttons) = buttons {
            for i in 0..buttons.length() {
                if let Some(b) = buttons.item(i) {
                    let _ = b.add_event_listener_with_callback("click", on_click.as_ref().unchecked_ref());
                }
            }
        }
        on_click.forget();
    }
}

/// Promo-code mode: the page shows a short code where it asks for one.
fn show_promo(code: &str) {
    let Some(document) = document() else { return };
    if let Ok(slots) = document.query_selector_all("[data-ringsource-promo]") {
        for i in 0..slots.length() {
            if let Some(slot) = slots.item(i) {
                slot.set_text_content(Some(code));
            }
        }
    }
}
