//! The DOM walk that swaps a site's numbers for a tracking number.
//!
//! Matching itself lives in `ringsource_core::matcher`; this module only decides
//! which text the matcher may see. Text nodes are grouped into inline runs, so a
//! number split over `<span>`s is seen whole, while a block boundary (`<div>`,
//! `<p>`, `<br>`, a table cell) ends the run: digits on two lines are never
//! glued into one number.

use js_sys::JsString;
use ringsource_core::matcher::Matcher;
use ringsource_core::phone::PhoneNumber;
use wasm_bindgen::prelude::*;
use web_sys::{CharacterData, Element, Node};

/// Elements whose text a visitor never reads as page copy, or edits themselves:
/// rewriting them would corrupt code, structured data or user input.
const NEVER_TOUCHED: &[&str] = &[
    "SCRIPT", "STYLE", "TEXTAREA", "INPUT", "SELECT", "OPTION", "NOSCRIPT", "TEMPLATE", "IFRAME", "OBJECT", "svg",
    "math",
];

/// Same rule as [`NEVER_TOUCHED`] plus attribute-driven opt-outs, as a CSS
/// selector for checking the ancestors of a subtree handed to us directly.
pub(crate) const SKIP_SELECTOR: &str = "script,style,textarea,input,select,option,noscript,template,\
iframe,object,svg,math,[data-ringsource-skip],[contenteditable]:not([contenteditable=false i])";

/// The attribute-driven opt-outs of [`SKIP_SELECTOR`], for one element.
const OPTED_OUT_SELECTOR: &str = "[data-ringsource-skip],[contenteditable]:not([contenteditable=false i])";

thread_local! {
    // Made a JS string once: a `&str` argument is decoded from wasm memory
    // on every call, and this one is asked of every element with attributes.
    static OPTED_OUT: JsString = JsString::from(OPTED_OUT_SELECTOR);
}

#[wasm_bindgen]
extern "C" {
    /// An element seen through `Element.matches` with a JS string argument
    /// (see [`OPTED_OUT`]); web-sys's `matches` takes a `&str`.
    type Selectable;

    /// The selectors are a valid constant, so the call cannot throw.
    #[wasm_bindgen(method, js_name = matches)]
    fn matches(this: &Selectable, selectors: &JsString) -> bool;
}

/// Inline elements keep a text run going. Everything not listed (including
/// unknown and custom elements) ends it, which errs towards missing a number
/// rather than inventing one out of two separate digit groups.
const INLINE: &[&str] = &[
    "A", "ABBR", "B", "BDI", "BDO", "BIG", "CITE", "CODE", "DATA", "DFN", "EM", "FONT", "I", "KBD", "LABEL", "MARK",
    "NOBR", "Q", "S", "SAMP", "SMALL", "SPAN", "STRONG", "SUB", "SUP", "TIME", "TT", "U", "VAR", "WBR",
];

pub struct Swap {
    matcher: Matcher,
    replacement: PhoneNumber,
}

impl Swap {
    pub fn new(originals: &[PhoneNumber], replacement: PhoneNumber) -> Self {
        Swap { matcher: Matcher::new(originals), replacement }
    }

    /// Rewrites the subtree under `root` in place and returns how many
    /// occurrences were replaced (text and links together).
    pub fn apply(&self, root: &Node) -> usize {
        if inside_skipped(root) {
            return 0;
        }
        let mut walk = Walk { swap: self, run: Vec::new(), run_digits: 0, count: 0 };
        walk.node(root.clone());
        walk.flush();
        walk.count
    }
}

fn inside_skipped(node: &Node) -> bool {
    let element = match node.dyn_ref::<Element>() {
        Some(e) => Some(e.clone()),
        None => node.parent_element(),
    };
    element.is_some_and(|e| e.closest(SKIP_SELECTOR).ok().flatten().is_some())
}

struct Walk<'a> {
    swap: &'a Swap,
    /// The text nodes of the current inline run, with their text.
    run: Vec<(CharacterData, String)>,
    /// ASCII digits in the run: most runs have too few to hold a number, and
    /// then the matcher is not asked at all.
    run_digits: usize,
    count: usize,
}

impl Walk<'_> {
    // Takes the node by value: a text node moves into the run without
    // another JS handle being made for it.
    fn node(&mut self, node: Node) {
        match node.node_type() {
            Node::TEXT_NODE => {
                let text: CharacterData = node.unchecked_into();
                let data = text.data();
                self.run_digits += data.bytes().filter(u8::is_ascii_digit).count();
                self.run.push((text, data));
            }
            Node::ELEMENT_NODE => self.element(node.unchecked_ref()),
            Node::DOCUMENT_NODE | Node::DOCUMENT_FRAGMENT_NODE => self.children(&node),
            // Comments and processing instructions are invisible: they neither
            // hold numbers nor break a run.
            _ => {}
        }
    }

    fn element(&mut self, element: &Element) {
        let tag = element.tag_name();
        if NEVER_TOUCHED.contains(&tag.as_str()) || is_opted_out(element) {
            self.flush();
            return;
        }
        if tag == "A" || tag == "AREA" {
            self.link(element);
        }
        let inline = INLINE.contains(&tag.as_str());
        if !inline {
            self.flush();
        }
        self.children(element);
        if !inline {
            self.flush();
        }
    }

    fn children(&mut self, node: &Node) {
        let mut child = node.first_child();
        while let Some(c) = child {
            // The walk never changes the tree's shape, so the sibling can be
            // read before `c` is handed on.
            child = c.next_sibling();
            self.node(c);
        }
    }

    fn link(&mut self, element: &Element) {
        let Some(href) = element.get_attribute("href") else { return };
        if let Some(rewritten) = self.swap.matcher.rewrite_href(&href, &self.swap.replacement) {
            // A failed write leaves the original link, which still rings the site.
            if element.set_attribute("href", &rewritten).is_ok() {
                self.count += 1;
            }
        }
    }

    fn flush(&mut self) {
        if self.run_digits >= self.swap.matcher.min_digits() {
            let texts: Vec<&str> = self.run.iter().map(|(_, t)| t.as_str()).collect();
            let replaced = self.swap.matcher.replace(&texts, &self.swap.replacement);
            if replaced.count > 0 {
                for ((node, _), new_text) in self.run.iter().zip(replaced.segments) {
                    if let Some(new_text) = new_text {
                        node.set_data(&new_text);
                    }
                }
                self.count += replaced.count;
            }
        }
        // Cleared rather than replaced: the next run reuses the allocation.
        self.run.clear();
        self.run_digits = 0;
    }
}

fn is_opted_out(element: &Element) -> bool {
    // Most elements carry no attributes at all, which one cheap call tells.
    element.has_attributes() && OPTED_OUT.with(|selector| element.unchecked_ref::<Selectable>().matches(selector))
}
