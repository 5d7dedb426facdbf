//! The DOM walk that swaps a site's numbers for a tracking number.
//!
//! Matching itself lives in `ringsource_core::matcher`; this module only decides
//! which text the matcher may see. Text nodes are grouped into inline runs, so a
//! number split over `<span>`s is seen whole, while a block boundary (`<div>`,
//! `<p>`, `<br>`, a table cell) ends the run: digits on two lines are never
//! glued into one number.

use ringsource_core::matcher::Matcher;
use ringsource_core::phone::PhoneNumber;
use wasm_bindgen::JsCast;
use web_sys::{CharacterData, Element, Node};

/// Elements whose text a visitor never reads as page copy, or edits themselves:
/// rewriting them would corrupt code, structured data or user input.
const NEVER_TOUCHED: &[&str] = &[
    "SCRIPT", "STYLE", "TEXTAREA", "INPUT", "SELECT", "OPTION", "NOSCRIPT", "TEMPLATE", "IFRAME",
    "OBJECT", "svg", "math",
];

/// Same rule as [`NEVER_TOUCHED`] plus attribute-driven opt-outs, as a CSS
/// selector for checking the ancestors of a subtree handed to us directly.
pub(crate) const SKIP_SELECTOR: &str = "script,style,textarea,input,select,option,noscript,template,\
iframe,object,svg,math,[data-ringsource-skip],[contenteditable]:not([contenteditable=false])";

/// Inline elements keep a text run going. Everything not listed (including
/// unknown and custom elements) ends it, which errs towards missing a number
/// rather than inventing one out of two separate digit groups.
const INLINE: &[&str] = &[
    "A", "ABBR", "B", "BDI", "BDO", "BIG", "CITE", "CODE", "DATA", "DFN", "EM", "FONT", "I",
    "KBD", "LABEL", "MARK", "NOBR", "Q", "S", "SAMP", "SMALL", "SPAN", "STRONG", "SUB", "SUP",
    "TIME", "TT", "U", "VAR", "WBR",
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
        let mut walk = Walk { swap: self, run: Vec::new(), count: 0 };
        walk.node(root);
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
    count: usize,
}

impl Walk<'_> {
    fn node(&mut self, node: &Node) {
        match node.node_type() {
            Node::TEXT_NODE => {
                let text: CharacterData = node.clone().unchecked_into();
                let data = text.data();
                self.run.push((text, data));
            }
            Node::ELEMENT_NODE => self.element(node.unchecked_ref()),
            Node::DOCUMENT_NODE | Node::DOCUMENT_FRAGMENT_NODE => self.children(node),
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
            self.node(&c);
            child = c.next_sibling();
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
        if self.run.is_empty() {
            return;
        }
        let run = std::mem::take(&mut self.run);
        let texts: Vec<&str> = run.iter().map(|(_, t)| t.as_str()).collect();
        let replaced = self.swap.matcher.replace(&texts, &self.swap.replacement);
        if replaced.count > 0 {
            for ((node, _), new_text) in run.iter().zip(replaced.segments) {
                if let Some(new_text) = new_text {
                    node.set_data(&new_text);
                }
            }
            self.count += replaced.count;
        }
    }
}

fn is_opted_out(element: &Element) -> bool {
    // Most elements carry no attributes at all: one call instead of two.
    if !element.has_attributes() {
        return false;
    }
    if element.has_attribute("data-ringsource-skip") {
        return true;
    }
    match element.get_attribute("contenteditable") {
        Some(v) => !v.eq_ignore_ascii_case("false"),
        None => false,
    }
}
