// The script-tag loader: `<script async src="https://calls.example.com/ringsource.js" data-site="shop"></script>`.
// Every data-* attribute becomes a start() option (data-collector overrides
// the collector URL, data-consent="granted" says the site's banner already
// has consent). It is copied into the npm package as tag.js, so the tag and
// the package are one build. Whatever fails here, the page keeps its own number.
//
// The file names below are relative to this script. The collector serves
// this file as /ringsource.js with each name replaced by the file's
// content-hashed URL (crates/collector/src/static_files.rs), so both
// names must stay single-quoted literals.
(function () {
  var script = document.currentScript;
  if (!script || !script.src || !window.WebAssembly || !window.fetch) return;
  var options = {};
  for (var key in script.dataset) options[key] = script.dataset[key];
  if (options.timeoutMs) options.timeoutMs = Number(options.timeoutMs);
  options.collector = options.collector || new URL(script.src).origin;

  // A returning visitor whose number is still theirs must never see the
  // site's own number: if nothing is painted yet, the page stays unpainted
  // until start() has swapped the stored number in (it does so before any
  // request), and for half a second at most whatever happens. Once the page
  // has painted, hiding it would only make it flash. The stored value is the
  // one crates/web/src/session.rs writes.
  var veil = null;
  var unveil = function () {
    if (veil) veil.remove();
    veil = null;
  };
  try {
    var stored = JSON.parse(localStorage.getItem('ringsource.session.' + options.site) || 'null');
    var live = stored && stored.number && !(stored.expires_at_ms <= Date.now());
    if (live && !performance.getEntriesByType('paint').length) {
      veil = document.createElement('style');
      veil.textContent = 'html{opacity:0!important}';
      (document.head || document.documentElement).appendChild(veil);
      setTimeout(unveil, 500);
    }
  } catch (e) {
    // Storage blocked, or not JSON: nothing stored to show.
  }

  var warn = function (e) {
    unveil();
    if (window.console) console.warn('ringsource: left the page as it is:', e);
  };
  // The wasm download starts now, beside the glue's, not after it.
  var wasm = fetch(new URL('ringsource_bg.wasm', script.src), { credentials: 'omit' });
  wasm.catch(function () {}); // reported once, through the chain below
  import(new URL('ringsource.js', script.src).href)
    .then(function (m) {
      return m.default({ module_or_path: wasm }).then(function () {
        // For whoever measures how soon the page can swap (`cargo xtask bench tag`).
        if (window.performance && performance.mark) performance.mark('ringsource:wasm');
        // window.ringsource: the package's API plus `outcome`, what start() showed.
        var api = { outcome: null };
        for (var name in m) api[name] = m[name];
        window.ringsource = api;
        var started = m.start(options);
        // The stored number is on the page by now.
        unveil();
        return started.then(function (outcome) {
          api.outcome = outcome;
          document.dispatchEvent(new CustomEvent('ringsource:ready', { detail: outcome }));
        });
      });
    })
    .catch(warn);
})();
