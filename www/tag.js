// The script-tag loader: `<script async src="https://calls.example.com/ringsource.js" data-site="shop">`.
// It is copied into the npm package as tag.js, so the tag and the package are
// one build. Whatever fails here, the page keeps the site's own number.
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
        window.ringsource = m;
        return m.start(options);
      });
    })
    .catch(function (e) {
      if (window.console) console.warn('ringsource: left the page as it is:', e);
    });
})();
