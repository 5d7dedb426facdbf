//! What every dashboard view is held to, at a laptop's and a phone's size:
//! the window sized so the page is exactly that wide, a check that nothing
//! is wider than the screen or hidden behind a scrollbar, an axe-core scan,
//! and a full-page screenshot in `target/screenshots/`.

use std::path::PathBuf;

use ringsource_tests::Browser;
use serde_json::{Value, json};

/// A page size in CSS pixels.
#[derive(Clone, Copy, Debug)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

pub const LAPTOP: Viewport = Viewport { width: 1440, height: 900 };
pub const PHONE: Viewport = Viewport { width: 390, height: 844 };
/// Between the two, where panes stack but tables are still tables.
pub const TABLETS: [Viewport; 2] = [Viewport { width: 1024, height: 768 }, Viewport { width: 820, height: 1180 }];

/// Sizes the window so the page's own width and height are `size`'s (the
/// window's frame, if any, is added on top).
pub async fn set_viewport(browser: &Browser, size: Viewport) {
    let (mut w, mut h) = (size.width, size.height);
    let mut inner = (0, 0);
    for _ in 0..4 {
        browser.client.set_window_size(w, h).await.expect("window size");
        // The page learns its new size a moment after the window has it.
        for _ in 0..20 {
            inner = inner_size(browser).await;
            if inner == (size.width, size.height) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The window's frame is whatever the page lacks.
        w = (i64::from(w) + i64::from(size.width) - i64::from(inner.0)).max(1) as u32;
        h = (i64::from(h) + i64::from(size.height) - i64::from(inner.1)).max(1) as u32;
    }
    panic!("cannot size the page to {size:?}: it is {inner:?}");
}

async fn inner_size(browser: &Browser) -> (u32, u32) {
    let inner = browser.client.execute("return [innerWidth, innerHeight]", vec![]).await.expect("inner size");
    (inner[0].as_u64().unwrap_or(0) as u32, inner[1].as_u64().unwrap_or(0) as u32)
}

pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The whole page at `size`'s width: the window is made as tall as the page
/// for the shot, then put back.
pub async fn screenshot(browser: &Browser, size: Viewport, name: &str) {
    let tall = browser
        .client
        .execute("return Math.min(6000, document.documentElement.scrollHeight)", vec![])
        .await
        .expect("page height")
        .as_u64()
        .unwrap() as u32;
    set_viewport(browser, Viewport { width: size.width, height: tall.max(size.height) }).await;
    let png = browser.client.screenshot().await.expect("screenshot");
    set_viewport(browser, size).await;
    let path = screenshot_dir().join(format!("dashboard-{name}-{}.png", size.width));
    std::fs::write(&path, &png).expect("write screenshot");
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "{} is not a PNG ({} bytes)", path.display(), png.len());
}

/// No horizontal page scroll; no pane, card or table scrolled sideways inside;
/// "Sign out" on screen when signed in; charts clear of every table. Returns
/// what is wrong, in words.
pub async fn fits(browser: &Browser, size: Viewport, name: &str) -> Vec<String> {
    // What a person sees is a painted frame: a chart resizes itself to its
    // box in a ResizeObserver, which runs before the next paint, so the probe
    // waits for two frames instead of measuring a layout nobody is shown.
    browser
        .client
        .execute_async(
            "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await
        .expect("wait for a frame");
    let found = browser
        .client
        .execute(
            r#"
const visible = (e) => e.offsetParent !== null && e.getClientRects().length > 0;
const box = (e) => e.getBoundingClientRect();
const named = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '');
const page = { scroll_width: document.documentElement.scrollWidth, inner_width: innerWidth };
const sticking_out = [...document.querySelectorAll('body *')].filter(visible)
  .filter(e => box(e).right > innerWidth + 1 && !e.closest('.pane, .card')).slice(0, 5).map(named);
const scrolled = [...document.querySelectorAll('.pane, .card, .chart, table')].filter(visible)
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => {
    // The innermost thing that sticks out, to say what is too wide.
    const edge = box(e).left + e.clientLeft + e.clientWidth - parseFloat(getComputedStyle(e).paddingRight);
    const wide = [...e.querySelectorAll('*')].filter(visible).filter(c => box(c).right > edge + 1).pop();
    return named(e) + ' ' + e.scrollWidth + '>' + e.clientWidth + (wide ? ' (' + named(wide) + ': ' + (wide.textContent || '').trim().slice(0, 40) + ')' : '');
  });
const logout = document.querySelector('#logout');
const signed_in = visible(logout);
const out = box(logout);
const header = box(document.querySelector('header.top'));
const tables = [...document.querySelectorAll('table')].filter(visible).map(box);
const overlaps = [...document.querySelectorAll('.chart canvas')].filter(visible).map(box)
  .filter(c => tables.some(t => c.left < t.right && t.left < c.right && c.top < t.bottom && t.top < c.bottom)).length;
return { page, sticking_out, scrolled, signed_in, logout_right: out.right, logout_bottom: out.bottom,
         header_height: header.height, overlaps };
"#,
            vec![],
        )
        .await
        .expect("layout probe");
    let at = format!("{name} at {} px", size.width);
    let mut wrong = Vec::new();
    if found["page"]["scroll_width"].as_u64() > found["page"]["inner_width"].as_u64() {
        wrong.push(format!("{at}: the page scrolls sideways: {found}"));
    }
    if found["scrolled"] != json!([]) {
        wrong.push(format!("{at}: content scrolls sideways inside: {found}"));
    }
    if found["signed_in"] == Value::Bool(true) {
        if !(found["logout_right"].as_f64().unwrap() <= f64::from(size.width)
            && found["logout_bottom"].as_f64().unwrap() <= found["header_height"].as_f64().unwrap())
        {
            wrong.push(format!("{at}: \"Sign out\" is not in the header on screen: {found}"));
        }
        // Two rows at most: the name, site and "Sign out", then the views.
        if found["header_height"].as_f64().unwrap() >= 120.0 {
            wrong.push(format!("{at}: the header wraps: {found}"));
        }
    }
    if found["overlaps"] != json!(0) {
        wrong.push(format!("{at}: a chart is drawn over a table: {found}"));
    }
    wrong
}

/// axe-core's violations on the page as it is, every impact.
pub async fn axe_scan(browser: &Browser) -> Vec<Value> {
    let loaded = browser.client.execute("return typeof window.axe === 'object'", vec![]).await.expect("axe probe");
    if loaded != Value::Bool(true) {
        let path = ringsource_tests::dashboard_dir().join("node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; run `cargo xtask bundle` (npm ci in www/dashboard installs axe-core)", path.display())
        });
        // Evaluated by WebDriver itself: the dashboard's content security
        // policy rightly refuses an inline <script> element.
        browser.client.execute(&format!("{source}\n;return typeof window.axe"), vec![]).await.expect("inject axe");
    }
    let result = browser
        .client
        .execute_async(
            "const done = arguments[0];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 6).map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').split('\\n').slice(1, 2).join('')) }))),
                     e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await
        .expect("axe runs");
    result.as_array().cloned().unwrap_or_default()
}
