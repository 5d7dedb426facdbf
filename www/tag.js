// The script-tag loader: `<script async src="https://calls.example.com/ringsource.js" data-site="shop">`.
// Every data-* attribute becomes a start() option (data-collector overrides
// the collector URL, data-consent="granted" says the site's banner already
// has consent). It is copied into the npm package as tag.js, so the tag and
// the package are one build. Whatever fails here, the page keeps its own number.
(function () {
  var script = document.currentScript;
  if (!script || !script.src || !window.WebAssembly) return;
  var options = {};
  for (var key in script.dataset) options[key] = script.dataset[key];
  var base = new URL('.', script.src);
  options.collector = options.collector || base.origin;
  import(new URL('pkg/ringsource.js', base).href)
    .then(function (m) {
      return m.default({ module_or_path: new URL('pkg/ringsource_bg.wasm', base) }).then(function () {
        // window.ringsource: the package's API plus `outcome`, what start() showed.
        var api = { outcome: null };
        for (var name in m) api[name] = m[name];
        window.ringsource = api;
        return m.start(options).then(function (outcome) {
          api.outcome = outcome;
          document.dispatchEvent(new CustomEvent('ringsource:ready', { detail: outcome }));
        });
      });
    })
    .catch(function (e) {
      if (window.console) console.warn('ringsource: left the page as it is:', e);
    });
})();
