//! `cargo xtask bench tag`: the script tag on a customer's page, over a slow
//! network, as a visitor sees it.
//!
//! Two release collectors run: one is the collector, the other only serves
//! the customer's page from another origin (its `www/demo/tag.html`, written
//! here). Chromium emulates a network with a fixed round-trip time
//! (DevTools' `Network.emulateNetworkConditions`, which adds the latency to
//! every request), and a probe that runs before any page script records, on
//! every animation frame, whether the site's own number is on screen, when
//! the wasm was ready (the loader's `ringsource:wasm` performance mark), and
//! when the number was swapped.
//!
//! Each round is a first visit (cache and storage cleared) and then a
//! returning visit (warm cache, stored number). Timings are reported as
//! multiples of the round trip measured in the same page (a `fetch` to the
//! collector), since the machine's speed drifts.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{Value, json};

use crate::bench::{Chromium, bench_config_named, build_collector};
use crate::demo::collector_command;
use crate::provision::Tools;
use crate::util::{Guard, free_port, wait_for_port};

/// The customer's page: the number in the header and again further down,
/// and the one script tag, exactly as the README shows it.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Pipe &amp; Drain</title>
<script async src="COLLECTOR/ringsource.js" data-site="demo"></script>
</head><body>
<header><p id="phone">Call us: +7 (495) 123-45-67</p></header>
<main>FILLER</main>
<footer>Pipe &amp; Drain · 8 (495) 123-45-67</footer>
</body></html>
"#;

/// Runs before any script of every page: records what each frame shows.
const PROBE: &str = r#"(() => {
  const own = /123\D{0,3}45\D{0,3}67/;
  const p = window.__tagProbe = { frames: 0, ownFrames: 0, veiledFrames: 0, firstOwn: null, swappedAt: null, swappedFrame: null };
  const look = () => {
    const el = document.getElementById('phone');
    if (!el) return null;
    return !own.test(el.textContent);
  };
  new MutationObserver(() => {
    if (p.swappedAt === null && look()) p.swappedAt = performance.now();
  }).observe(document, { subtree: true, childList: true, characterData: true });
  const frame = (ts) => {
    const swapped = look();
    if (swapped !== null) {
      p.frames++;
      // Hidden by the loader's anti-flicker rule: not seen, whatever it says.
      const shown = getComputedStyle(document.documentElement).opacity !== '0';
      if (!shown) p.veiledFrames++;
      if (!swapped && shown) { p.ownFrames++; if (p.firstOwn === null) p.firstOwn = ts; }
      if (swapped && p.swappedFrame === null) p.swappedFrame = ts;
    }
    if (p.swappedFrame === null || p.frames < 3) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})();"#;

/// A Chrome DevTools Protocol command, sent through chromedriver's
/// `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    method: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.method, "params": self.params }).to_string()))
    }
}

async fn cdp(client: &fantoccini::Client, method: &'static str, params: Value) -> Result<Value> {
    client.issue_cmd(Cdp { method, params }).await.with_context(|| format!("DevTools {method}"))
}

/// One page load, as the probe saw it (times in ms from navigation start).
#[derive(Debug)]
struct Load {
    /// Frames in which the site's own number was on screen.
    own_frames: u64,
    /// Frames the loader kept unpainted while it swapped a stored number in.
    veiled_frames: u64,
    first_own: Option<f64>,
    wasm_ready: Option<f64>,
    swapped: Option<f64>,
    /// A measured round trip to the collector from this page.
    rtt: f64,
}

pub fn bench(root: &Path, tools: &Tools, rtt_ms: u32, rounds: u32) -> Result<()> {
    build_collector(root)?;
    let collector: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let customer: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;

    let www = root.join("target/bench/customer-www");
    fs::create_dir_all(www.join("demo"))?;
    let filler: String = (0..200).map(|i| format!("<p>Service {i}: drains, pipes, boilers.</p>")).collect();
    let page = PAGE.replace("COLLECTOR", &format!("http://{collector}")).replace("FILLER", &filler);
    fs::write(www.join("demo/tag.html"), page)?;

    let customer_origin = format!("http://{customer}");
    let config = bench_config_named(root, "tag-collector", |config| {
        let sites = config.get_mut("sites").and_then(|s| s.as_array_mut()).context("no [[sites]]")?;
        let site = sites.first_mut().and_then(|s| s.as_table_mut()).context("no first site")?;
        let origins = site.entry("allowed_origins").or_insert_with(|| toml::Value::Array(Vec::new()));
        origins.as_array_mut().context("allowed_origins is not a list")?.push(customer_origin.clone().into());
        Ok(())
    })?;
    let customer_config = bench_config_named(root, "tag-customer", |config| {
        let server = config.get_mut("server").and_then(|s| s.as_table_mut()).context("no [server]")?;
        server.insert("www_dir".into(), www.to_string_lossy().into_owned().into());
        Ok(())
    })?;
    let mut collector_proc =
        Guard::spawn("collector", collector_command(root, &config, &collector.to_string()).stdout(Stdio::null()))?;
    wait_for_port(collector, &mut collector_proc.child, "collector", Duration::from_secs(60))?;
    let mut customer_proc = Guard::spawn(
        "customer site",
        collector_command(root, &customer_config, &customer.to_string()).stdout(Stdio::null()),
    )?;
    wait_for_port(customer, &mut customer_proc.child, "customer site", Duration::from_secs(60))?;

    let chromium = Chromium::start(tools)?;
    // A paid-search click, so that the demo's pool leases a number.
    let url = format!("{customer_origin}/demo/tag.html?utm_source=google&utm_medium=cpc&gclid=bench");
    let config_url = format!("http://{collector}/v1/sites/demo/config");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let loads = runtime.block_on(async {
        let client = chromium.connect().await?;
        let result = measure(&client, &url, &config_url, rtt_ms, rounds).await;
        let _ = client.close().await;
        result
    })?;
    report(rtt_ms, &loads)
}

async fn measure(
    client: &fantoccini::Client,
    url: &str,
    config_url: &str,
    rtt_ms: u32,
    rounds: u32,
) -> Result<Vec<(Load, Load)>> {
    cdp(client, "Network.enable", json!({})).await?;
    cdp(
        client,
        "Network.emulateNetworkConditions",
        json!({ "offline": false, "latency": rtt_ms, "downloadThroughput": -1, "uploadThroughput": -1 }),
    )
    .await?;
    cdp(client, "Page.addScriptToEvaluateOnNewDocument", json!({ "source": PROBE })).await?;
    let origin = url.split("/demo/").next().unwrap_or_default().to_owned();
    let mut loads = Vec::new();
    for round in 1..=rounds {
        cdp(client, "Network.clearBrowserCache", json!({})).await?;
        cdp(client, "Storage.clearDataForOrigin", json!({ "origin": origin, "storageTypes": "all" })).await?;
        let first = load(client, url, config_url).await.with_context(|| format!("round {round}, first visit"))?;
        let returning = load(client, url, config_url).await.with_context(|| format!("round {round}, returning"))?;
        println!(
            "round {round}: first visit swapped at {:.0} ms (wasm ready {:.0} ms), returning visit showed the site's number in {} frames",
            first.swapped.unwrap_or(f64::NAN),
            first.wasm_ready.unwrap_or(f64::NAN),
            returning.own_frames
        );
        loads.push((first, returning));
    }
    Ok(loads)
}

async fn load(client: &fantoccini::Client, url: &str, config_url: &str) -> Result<Load> {
    client.goto(url).await.with_context(|| format!("loading {url}"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done = client
            .execute("const p = window.__tagProbe; return !!(p && p.swappedFrame !== null && window.ringsource && window.ringsource.outcome);", vec![])
            .await?;
        if done == Value::Bool(true) {
            break;
        }
        if std::time::Instant::now() > deadline {
            let state = client
                .execute("return [window.__tagProbe, window.ringsource && window.ringsource.outcome];", vec![])
                .await?;
            bail!("the number was not swapped within 30 s: {state}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let script = format!(
        "const done = arguments[0]; const t0 = performance.now(); \
         fetch({config_url:?}, {{ cache: 'no-store' }}).then(r => r.text()).then(() => {{ \
           const p = window.__tagProbe; const m = performance.getEntriesByName('ringsource:wasm')[0]; \
           done({{ own: p.ownFrames, veiled: p.veiledFrames, firstOwn: p.firstOwn, swapped: p.swappedAt, wasm: m ? m.startTime : null, rtt: performance.now() - t0 }}); \
         }}, e => done({{ error: String(e) }}));"
    );
    let v = client.execute_async(&script, vec![]).await.context("reading the probe")?;
    if let Some(e) = v.get("error") {
        bail!("measuring the round trip failed: {e}");
    }
    Ok(Load {
        own_frames: v["own"].as_u64().unwrap_or_default(),
        veiled_frames: v["veiled"].as_u64().unwrap_or_default(),
        first_own: v["firstOwn"].as_f64(),
        wasm_ready: v["wasm"].as_f64(),
        swapped: v["swapped"].as_f64(),
        rtt: v["rtt"].as_f64().unwrap_or(f64::NAN),
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn report(rtt_ms: u32, loads: &[(Load, Load)]) -> Result<()> {
    let rtt = median(loads.iter().flat_map(|(a, b)| [a.rtt, b.rtt]).collect());
    let after_wasm: Vec<f64> =
        loads.iter().filter_map(|(first, _)| Some((first.swapped? - first.wasm_ready?) / rtt)).collect();
    let own_shown: Vec<f64> =
        loads.iter().filter_map(|(first, _)| Some((first.swapped? - first.first_own?) / rtt)).collect();
    let returning_own: Vec<u64> = loads.iter().map(|(_, back)| back.own_frames).collect();
    let returning_veiled: Vec<u64> = loads.iter().map(|(_, back)| back.veiled_frames).collect();
    let overhead_ms: Vec<f64> =
        loads.iter().filter_map(|(first, _)| Some(first.swapped? - first.wasm_ready? - first.rtt)).collect();
    println!("\nbench tag: {} rounds at {rtt_ms} ms emulated round trip", loads.len());
    println!("  measured round trip to the collector (median)         {rtt:.0} ms = 1 RTT");
    println!(
        "  first visit: swap after the wasm was ready             median {:.2} RTT, worst {:.2} RTT (goal: at most 1)",
        median(after_wasm.clone()),
        after_wasm.iter().copied().fold(f64::NAN, f64::max)
    );
    println!(
        "  first visit: the site's own number on screen           median {:.2} RTT, worst {:.2} RTT",
        median(own_shown.clone()),
        own_shown.iter().copied().fold(f64::NAN, f64::max)
    );
    println!("  first visit: the page's own work besides that trip     median {:.0} ms", median(overhead_ms));
    println!("  returning visit: frames showing the site's own number  {returning_own:?} (goal: 0 in every round)");
    println!("  returning visit: frames kept blank until the swap       {returning_veiled:?}");
    Ok(())
}
