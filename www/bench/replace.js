// Benchmark page driven by `cargo xtask bench web`. It publishes
// window.__benchResult (or window.__benchError) for the driver to read.
import init, { replaceNumbers } from '/pkg/ringsource.js';

const ORIGINAL = '+74951234567';
const TRACKING = '+74959876543';
const ELEMENTS = 5000;
const OCCURRENCES = 50;
// Every implementation runs once per round; the first WARMUP rounds (JIT and
// wasm tier-up) are not counted.
const ROUNDS = 61;
const WARMUP = 6;

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
  // Structured data, a textarea and an opted-out block must stay untouched by all.
  parts.push('<script type="application/ld+json">{"telephone":"+7 495 123-45-67"}</script>');
  parts.push('<textarea>+7 495 123-45-67</textarea>');
  parts.push('<div data-ringsource-skip><p>+7 495 123-45-67</p></div>');
  return { html: parts.join(''), elements: elements + 4, placed };
}

// The site's number as one RegExp: the national digits in order with any
// separators between them, an optional "+7" or "8" before, and no digit
// glued to either end.
function numberPattern(original) {
  const national = original.replace(/\D/g, '').slice(1);
  const sep = '[\\s\\u00a0\\-.()/]*';
  const body = national.split('').join(sep);
  return { national, source: `(?<!\\d)(?:\\+?7${sep}|8${sep})?\\(?${body}(?!\\d)` };
}

// Writes the replacement's national digits over the match's, right to left,
// keeping every other character where it was.
function digitRewriter(replacement) {
  const newNational = replacement.replace(/\D/g, '').slice(1);
  return (chars, from, to) => {
    let k = newNational.length - 1;
    for (let j = to - 1; j >= from && k >= 0; j--) {
      if (chars[j] >= '0' && chars[j] <= '9') chars[j] = newNational[k--];
    }
  };
}

// The first reference, kept for comparison with earlier figures: a
// `closest()` per text node, one RegExp per text node (so it misses numbers
// split over inline elements), and every tel: link found by a second query
// (including links inside opted-out blocks).
function jsNaive(root, original, replacement) {
  const { national, source } = numberPattern(original);
  const re = new RegExp(source, 'g');
  const rewrite = digitRewriter(replacement);
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
    node.data = text.replace(re, (m) => {
      count++;
      const chars = m.split('');
      rewrite(chars, 0, chars.length);
      return chars.join('');
    });
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

// What a careful engineer writes by hand in plain JS for the same job, two
// ways. This one: one TreeWalker over elements and text that prunes
// untouchable subtrees (FILTER_REJECT), text gathered into inline runs so a
// number split over <span>s is found, one precompiled RegExp per run, and tel:
// links rewritten in the same walk (so links in opted-out blocks stay). In
// Chromium its filter, a call from the browser into JS for every element and
// text node, costs more than all the rest.
const UNTOUCHED = new Set([
  'SCRIPT', 'STYLE', 'TEXTAREA', 'INPUT', 'SELECT', 'OPTION', 'NOSCRIPT', 'TEMPLATE', 'IFRAME', 'OBJECT', 'svg', 'math',
]);
const INLINE = new Set([
  'A', 'ABBR', 'B', 'BDI', 'BDO', 'BIG', 'CITE', 'CODE', 'DATA', 'DFN', 'EM', 'FONT', 'I', 'KBD', 'LABEL', 'MARK',
  'NOBR', 'Q', 'S', 'SAMP', 'SMALL', 'SPAN', 'STRONG', 'SUB', 'SUP', 'TIME', 'TT', 'U', 'VAR', 'WBR',
]);

function optedOut(el) {
  if (el.hasAttribute('data-ringsource-skip')) return true;
  const editable = el.getAttribute('contenteditable');
  return editable !== null && editable.toLowerCase() !== 'false';
}

function jsTreeWalker(root, original, replacement) {
  const { national, source } = numberPattern(original);
  const re = new RegExp(source, 'g');
  const rewrite = digitRewriter(replacement);
  let count = 0;
  let broken = true; // a block or untouchable element since the last text node
  let block = null; // the nearest non-inline ancestor of the run's text
  let nodes = [];
  let texts = [];
  let length = 0;

  const rewriteLink = (a) => {
    const href = a.getAttribute('href');
    if (href === null || !/^\s*tel:/i.test(href)) return;
    re.lastIndex = 0;
    if (!re.test(href)) return;
    const chars = href.split('');
    re.lastIndex = 0;
    for (let m; (m = re.exec(href));) {
      rewrite(chars, m.index, m.index + m[0].length);
      count++;
    }
    a.setAttribute('href', chars.join(''));
  };

  const flush = () => {
    if (length >= national.length) {
      const text = texts.length === 1 ? texts[0] : texts.join('');
      re.lastIndex = 0;
      if (re.test(text)) {
        const chars = text.split('');
        re.lastIndex = 0;
        for (let m; (m = re.exec(text));) {
          rewrite(chars, m.index, m.index + m[0].length);
          count++;
        }
        let at = 0;
        for (let i = 0; i < nodes.length; i++) {
          const end = at + texts[i].length;
          const updated = chars.slice(at, end).join('');
          if (updated !== texts[i]) nodes[i].data = updated;
          at = end;
        }
      }
    }
    nodes = [];
    texts = [];
    length = 0;
  };

  const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      if (node.nodeType === 1 && (UNTOUCHED.has(node.tagName) || optedOut(node))) {
        broken = true;
        return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.nodeType === 1) {
      if (!INLINE.has(node.tagName)) broken = true;
      else if (node.tagName === 'A') rewriteLink(node);
      continue;
    }
    let container = node.parentNode;
    while (container !== root && container.nodeType === 1 && INLINE.has(container.tagName)) {
      container = container.parentNode;
    }
    if (broken || container !== block) {
      flush();
      block = container;
      broken = false;
    }
    const text = node.data;
    nodes.push(node);
    texts.push(text);
    length += text.length;
  }
  flush();
  return count;
}

// The same job as one recursive walk over firstChild/nextSibling: no call
// from the browser into JS per node, and a block ends where its loop does.
// The fastest of the three, so replaceNumbers is held to it.
function jsRecursive(root, original, replacement) {
  const { national, source } = numberPattern(original);
  const re = new RegExp(source, 'g');
  const rewrite = digitRewriter(replacement);
  let count = 0;
  let nodes = [];
  let texts = [];
  let length = 0;

  const rewriteLink = (a) => {
    const href = a.getAttribute('href');
    if (href === null || !/^\s*tel:/i.test(href)) return;
    re.lastIndex = 0;
    if (!re.test(href)) return;
    const chars = href.split('');
    re.lastIndex = 0;
    for (let m; (m = re.exec(href));) {
      rewrite(chars, m.index, m.index + m[0].length);
      count++;
    }
    a.setAttribute('href', chars.join(''));
  };

  const flush = () => {
    if (length >= national.length) {
      const text = texts.length === 1 ? texts[0] : texts.join('');
      re.lastIndex = 0;
      if (re.test(text)) {
        const chars = text.split('');
        re.lastIndex = 0;
        for (let m; (m = re.exec(text));) {
          rewrite(chars, m.index, m.index + m[0].length);
          count++;
        }
        let at = 0;
        for (let i = 0; i < nodes.length; i++) {
          const end = at + texts[i].length;
          const updated = chars.slice(at, end).join('');
          if (updated !== texts[i]) nodes[i].data = updated;
          at = end;
        }
      }
    }
    if (nodes.length) {
      nodes = [];
      texts = [];
      length = 0;
    }
  };

  const walk = (parent) => {
    for (let node = parent.firstChild; node; node = node.nextSibling) {
      const type = node.nodeType;
      if (type === 3) {
        const text = node.data;
        nodes.push(node);
        texts.push(text);
        length += text.length;
      } else if (type === 1) {
        const tag = node.tagName;
        if (UNTOUCHED.has(tag) || (node.hasAttributes() && optedOut(node))) {
          flush();
        } else if (INLINE.has(tag)) {
          if (tag === 'A') rewriteLink(node);
          walk(node);
        } else {
          flush();
          walk(node);
          flush();
        }
      }
    }
  };
  walk(root);
  flush();
  return count;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const IMPLEMENTATIONS = {
  wasm: (root) => replaceNumbers(root, [ORIGINAL], TRACKING),
  js_recursive: (root) => jsRecursive(root, ORIGINAL, TRACKING),
  js_treewalker: (root) => jsTreeWalker(root, ORIGINAL, TRACKING),
  js_naive: (root) => jsNaive(root, ORIGINAL, TRACKING),
};
const REFERENCES = ['js_recursive', 'js_treewalker', 'js_naive'];

// Runs every implementation once on its own copy and checks that the two
// careful references and replaceNumbers replace the same occurrences and
// leave the same page behind; the naive reference is only reported.
function checkAgreement(template) {
  const out = {};
  for (const [name, run] of Object.entries(IMPLEMENTATIONS)) {
    const copy = template.cloneNode(true);
    const count = run(copy);
    out[name] = { count, html: copy.innerHTML };
  }
  if (out.wasm.html === template.innerHTML) throw new Error('nothing was replaced');
  for (const name of ['js_recursive', 'js_treewalker']) {
    if (out.wasm.count !== out[name].count) {
      throw new Error(`replaceNumbers replaced ${out.wasm.count}, ${name} ${out[name].count}`);
    }
    const a = out.wasm.html;
    const b = out[name].html;
    if (a !== b) {
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      throw new Error(`pages differ at ${i}: wasm …${a.slice(i - 60, i + 60)}… ${name} …${b.slice(i - 60, i + 60)}…`);
    }
  }
  const replaced = Object.fromEntries(Object.entries(out).map(([name, r]) => [name, r.count]));
  replaced.js_naive_same_page = out.js_naive.html === out.wasm.html;
  return replaced;
}

async function main() {
  await init();
  const page = buildPage();
  const stage = document.getElementById('stage');
  const template = document.createElement('div');
  template.innerHTML = page.html;
  const replaced = checkAgreement(template);

  const params = new URLSearchParams(location.search);
  // `?only=wasm` (or another name) times that one alone, for a profiler.
  const only = params.get('only');
  const names = Object.keys(IMPLEMENTATIONS).filter((n) => !only || n === only);
  const fixed = (x) => +x.toFixed(3);

  // Each sample is `batch` fresh copies in the document, swapped one after
  // the other. One page per sample is the plain protocol, but the browser's
  // clock is coarse (0.1 ms without cross-origin isolation); four pages per
  // sample read it four times finer, and the garbage of four pages makes the
  // collector run inside the timed span more often (a full collection also
  // traces every copy in the document).
  const measure = (batch) => {
    const times = Object.fromEntries(names.map((n) => [n, []]));
    const run = (name) => {
      const copies = [];
      for (let b = 0; b < batch; b++) copies.push(template.cloneNode(true));
      stage.replaceChildren(...copies);
      const swap = IMPLEMENTATIONS[name];
      const t0 = performance.now();
      for (const copy of copies) swap(copy);
      times[name].push((performance.now() - t0) / batch);
    };
    // Rotate the order every round, so that each goes first as often as the
    // others and none profits from a warmer JIT or cache.
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < names.length; k++) run(names[(r + k) % names.length]);
    }
    const ms = Object.fromEntries(names.map((n) => [n, median(times[n].slice(WARMUP))]));
    if (only) return { median_ms: fixed(ms[only]) };
    // Both the ratio of the medians and the median of each round's ratio: the
    // second is steadier when the machine's load changes during the run.
    const roundRatio = (ref) => median(times.wasm.slice(WARMUP).map((t, i) => t / times[ref][WARMUP + i]));
    return {
      median_ms: Object.fromEntries(names.map((n) => [n, fixed(ms[n])])),
      wasm_over: Object.fromEntries(REFERENCES.map((r) => [r, fixed(ms.wasm / ms[r])])),
      wasm_over_per_round: Object.fromEntries(REFERENCES.map((r) => [r, fixed(roundRatio(r))])),
    };
  };
  const batches = params.has('batch') ? [+params.get('batch')] : [1, 4];
  const result = {
    elements: page.elements,
    occurrences_placed: page.placed,
    rounds: ROUNDS - WARMUP,
    replaced,
  };
  for (const batch of batches) result[batch === 1 ? 'one_page' : `pages_${batch}`] = measure(batch);
  return result;
}

main().then(
  (r) => { window.__benchResult = r; document.getElementById('out').textContent = JSON.stringify(r, null, 2); },
  (e) => { window.__benchError = String(e && e.stack || e); document.getElementById('out').textContent = window.__benchError; },
);
