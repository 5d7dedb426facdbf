// Benchmark page driven by `cargo xtask bench web`. It publishes
// window.__benchResult (or window.__benchError) for the driver to read.
import init, { replaceNumbers } from '/pkg/ringsource.js';

const ORIGINAL = '+74951234567';
const TRACKING = '+74959876543';
const ELEMENTS = 5000;
const OCCURRENCES = 50;
const ROUNDS = 31;

// Formats a real RU site prints its number in; some are split across inline
// elements, some are links, the rest of the page carries digit distractors.
const FORMATS = [
  '+7 (495) 123-45-67',
  '8 (495) 123-45-67',
  '8 495 123 45 67',
  '+7 495 123-45-67',
  '<span>+7 (495)</span> <b>123-45-67</b>',
  '<a href="tel:+74951234567">+7 (495) 123-45-67</a>',
];
const DISTRACTORS = [
  'Order №48213 from 12.03.2024', 'Price 1 200 000 ₽', 'INN 7712345678', 'Item 74951234567890',
  'Open 9:00–21:00', 'Delivery in 3–5 days',
];

function buildPage() {
  const parts = [];
  let elements = 0;
  let placed = 0;
  let i = 0;
  // Each block is a <div> holding a <p> and a <span>: three elements.
  while (elements + 3 <= ELEMENTS) {
    const needNumber = placed < OCCURRENCES && i % Math.floor(ELEMENTS / 3 / OCCURRENCES) === 0;
    const text = needNumber ? `Call us: ${FORMATS[placed % FORMATS.length]}` : DISTRACTORS[i % DISTRACTORS.length];
    if (needNumber) placed++;
    parts.push(`<div class="card"><p>${text}</p><span>Card ${i}</span></div>`);
    elements += 3;
    i++;
  }
  // Structured data and a textarea must stay untouched by both.
  parts.push('<script type="application/ld+json">{"telephone":"+7 495 123-45-67"}</script>');
  parts.push('<textarea>+7 495 123-45-67</textarea>');
  return { html: parts.join(''), elements: elements + 2, placed };
}

// The reference: what a careful hand-written tracker does in plain JS.
function jsReference(root, original, replacement) {
  const digits = original.replace(/\D/g, '');
  const national = digits.slice(1);
  const sep = '[\\s\\u00a0\\-.()/]*';
  const body = national.split('').join(sep);
  const re = new RegExp(`(?<![\\d])(?:\\+?7${sep}|8${sep})?\\(?${body}(?![\\d])`, 'g');
  const newNational = replacement.replace(/\D/g, '').slice(1);
  const rewrite = (m) => {
    let k = newNational.length - 1;
    const chars = m.split('');
    for (let j = chars.length - 1; j >= 0 && k >= 0; j--) {
      if (chars[j] >= '0' && chars[j] <= '9') chars[j] = newNational[k--];
    }
    return chars.join('');
  };
  let count = 0;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      const p = node.parentElement;
      return p && p.closest('script,style,textarea,input,select,[contenteditable],[data-ringsource-skip]')
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT;
    },
  });
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.data;
    re.lastIndex = 0;
    if (!re.test(text)) continue;
    re.lastIndex = 0;
    node.data = text.replace(re, (m) => { count++; return rewrite(m); });
  }
  for (const a of root.querySelectorAll('a[href^="tel:" i]')) {
    const href = a.getAttribute('href');
    if (href.replace(/\D/g, '').endsWith(national)) {
      a.setAttribute('href', 'tel:' + replacement);
      count++;
    }
  }
  return count;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  await init();
  const page = buildPage();
  const stage = document.getElementById('stage');
  const template = document.createElement('div');
  template.innerHTML = page.html;

  const times = { wasm: [], js: [] };
  const counts = { wasm: 0, js: 0 };
  const run = (which) => {
    const copy = template.cloneNode(true);
    stage.replaceChildren(copy);
    const t0 = performance.now();
    counts[which] = which === 'wasm' ? replaceNumbers(copy, [ORIGINAL], TRACKING) : jsReference(copy, ORIGINAL, TRACKING);
    times[which].push(performance.now() - t0);
  };
  // Alternate, and let each go first half the time, so neither profits from
  // a warmer JIT or cache.
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) { run('wasm'); run('js'); } else { run('js'); run('wasm'); }
  }
  const wasmMs = median(times.wasm.slice(1));
  const jsMs = median(times.js.slice(1));
  return {
    elements: page.elements,
    occurrences_placed: page.placed,
    rounds: ROUNDS,
    wasm_replaced: counts.wasm,
    js_replaced: counts.js,
    wasm_median_ms: +wasmMs.toFixed(3),
    js_median_ms: +jsMs.toFixed(3),
    wasm_over_js: +(wasmMs / jsMs).toFixed(3),
  };
}

main().then(
  (r) => { window.__benchResult = r; document.getElementById('out').textContent = JSON.stringify(r, null, 2); },
  (e) => { window.__benchError = String(e && e.stack || e); document.getElementById('out').textContent = window.__benchError; },
);
