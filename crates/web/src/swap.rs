//! The DOM walk that swaps a site's numbers for a tracking number.
//!
//! Matching itself lives in `ringsource_core::matcher`; this module only decides
//! which text the matcher may see. Text nodes are grouped into inline runs, so a
//! number split over `<span>`s is seen whole, while a block boundary (`<div>`,
//! `<p>`, `<br>`, a table cell) ends the run: digits on two lines are never
//! glued into one number.
//!
//! Most of a page holds no number, and every DOM call from wasm crosses into
//! JS, so the page is not walked node by node. Its whole text comes over in
//! one call and is scanned for the places where a number may end
//! ([`Matcher::possible_ends`]); a walk over text nodes alone, reading only
//! their lengths, finds the nodes at those places; and only the blocks around
//! them are walked in full.

use ringsource_core::matcher::Matcher;
use ringsource_core::phone::PhoneNumber;
use wasm_bindgen::prelude::*;
use web_sys::{CharacterData, Document, Element, Node, NodeList};

/// Elements whose text a visitor never reads as page copy, or edits
/// themselves, and the attribute-driven opt-outs: rewriting them would
/// corrupt code, structured data or user input.
const SKIP_SELECTOR: &str = "script,style,textarea,input,select,option,noscript,template,\
iframe,object,svg,math,[data-ringsource-skip],[contenteditable]:not([contenteditable=false i])";

/// The attribute-driven opt-outs of [`SKIP_SELECTOR`], for one element.
const OPTED_OUT_SELECTOR: &str = "[data-ringsource-skip],[contenteditable]:not([contenteditable=false i])";

/// `NodeFilter.SHOW_TEXT | NodeFilter.SHOW_CDATA_SECTION`: the nodes whose
/// data `textContent` is made of, so that their lengths add up to it.
const SHOW_TEXT: u32 = 0x4 | 0x8;

#[wasm_bindgen]
extern "C" {
    /// An element, document or fragment, through the methods this module
    /// needs. The selectors passed are valid constants and the filter of the
    /// walker a number, so none of these calls can throw.
    type Selectable;

    #[wasm_bindgen(method)]
    fn matches(this: &Selectable, selectors: &str) -> bool;

    #[wasm_bindgen(method)]
    fn closest(this: &Selectable, selectors: &str) -> Option<Selectable>;

    #[wasm_bindgen(method, js_name = querySelectorAll)]
    fn query_selector_all(this: &Selectable, selectors: &str) -> NodeList;

    /// A TreeWalker that shows text only.
    type TextWalker;

    #[wasm_bindgen(method, js_name = createTreeWalker)]
    fn create_text_walker(this: &Selectable, root: &Node, what_to_show: u32) -> TextWalker;

    #[wasm_bindgen(method, js_name = nextNode)]
    fn next_node(this: &TextWalker) -> Option<CharacterData>;
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

    /// Rewrites the subtree under `root` (an element, a fragment or a
    /// document) in place and returns how many occurrences were replaced
    /// (text and links together). A text node alone has no run around it to
    /// read, and is left as it is.
    pub fn apply(&self, root: &Node) -> usize {
        match root.node_type() {
            Node::ELEMENT_NODE if skipped(root.unchecked_ref()) => 0,
            Node::ELEMENT_NODE | Node::DOCUMENT_FRAGMENT_NODE => self.links(root) + self.texts(root),
            // A document has no textContent: its body has, as for start().
            Node::DOCUMENT_NODE => root.unchecked_ref::<Document>().body().map_or(0, |body| self.apply(&body)),
            _ => 0,
        }
    }

    /// The links under `root`, and `root` itself when it is one. Asked for by
    /// bare tag name, which the browser answers many times faster than a
    /// selector with attributes; the matcher tells the tel:, callto: and sms:
    /// hrefs apart.
    fn links(&self, root: &Node) -> usize {
        let parent: &Selectable = root.unchecked_ref();
        let mut count = self.tagged_links(parent, "a") + self.tagged_links(parent, "area");
        if root.node_type() == Node::ELEMENT_NODE && parent.matches("a,area") {
            count += self.link(root.unchecked_ref());
        }
        count
    }

    fn tagged_links(&self, parent: &Selectable, tag: &str) -> usize {
        let found = parent.query_selector_all(tag);
        let mut count = 0;
        for index in 0..found.length() {
            if let Some(link) = found.item(index) {
                count += self.link(link.unchecked_ref());
            }
        }
        count
    }

    fn link(&self, link: &Element) -> usize {
        let Some(href) = link.get_attribute("href") else { return 0 };
        let Some(rewritten) = self.matcher.rewrite_href(&href, &self.replacement) else { return 0 };
        // A failed write leaves the original link, which still rings the site.
        usize::from(!skipped(link) && link.set_attribute("href", &rewritten).is_ok())
    }

    /// The text under `root`: where its whole text shows a possible number,
    /// the block around that place is walked.
    fn texts(&self, root: &Node) -> usize {
        let ends = match root.text_content() {
            Some(text) => self.matcher.possible_ends(&text),
            None => return 0,
        };
        if ends.is_empty() {
            return 0;
        }
        let Some(document) = crate::browser::document() else { return 0 };
        // All places are found before any text changes: a rewrite may change a
        // node's length, and with it where the later places are.
        let mut holders: Vec<CharacterData> = Vec::new();
        let walker = document.unchecked_ref::<Selectable>().create_text_walker(root, SHOW_TEXT);
        let mut next = 0;
        let mut start = 0;
        while next < ends.len() {
            let Some(text) = walker.next_node() else { break };
            // In UTF-16 units, without copying the text over.
            let end = start + text.length() as usize;
            let mut holds = false;
            while let Some(place) = ends.get(next).filter(|place| place.at <= end) {
                // A digit after the number in the same node glues it to a longer run.
                holds |= !place.digit_follows || place.at == end;
                next += 1;
            }
            if holds {
                holders.push(text);
            }
            start = end;
        }
        let mut count = 0;
        let mut walked: Option<Node> = None;
        for text in holders {
            let block = block_of(root, &text);
            // A block met again after another is walked again: its numbers
            // are replaced already, so that finds nothing more.
            if walked.as_ref() == Some(&block) {
                continue;
            }
            // A block other than `root` is an element.
            if block == *root || !skipped(block.unchecked_ref()) {
                let mut walk = Walk::new(self);
                walk.children(&block);
                walk.flush();
                count += walk.count;
            }
            walked = Some(block);
        }
        count
    }
}

/// The nearest ancestor of `text` that a run cannot leave: the first one that
/// is not an inline element, or `root`.
fn block_of(root: &Node, text: &Node) -> Node {
    let mut node = text.clone();
    loop {
        let Some(parent) = node.parent_node() else { return root.clone() };
        node = parent;
        if node == *root
            || node.node_type() != Node::ELEMENT_NODE
            || !INLINE.contains(&node.unchecked_ref::<Element>().tag_name().as_str())
        {
            return node;
        }
    }
}

/// Whether `element` or an ancestor is one whose text is never rewritten.
fn skipped(element: &Element) -> bool {
    element.unchecked_ref::<Selectable>().closest(SKIP_SELECTOR).is_some()
}

/// The runs of one block: its text and its inline elements' text. Blocks
/// inside it end a run and are not entered: they are blocks of their own.
struct Walk<'a> {
    swap: &'a Swap,
    /// The text nodes of the current inline run, with their text.
    run: Vec<(CharacterData, String)>,
    count: usize,
}

impl<'a> Walk<'a> {
    fn new(swap: &'a Swap) -> Self {
        Walk { swap, run: Vec::new(), count: 0 }
    }

    // Takes the node by value: a text node moves into the run without
    // another JS handle being made for it.
    fn node(&mut self, node: Node) {
        match node.node_type() {
            Node::TEXT_NODE => {
                let text: CharacterData = node.unchecked_into();
                let data = text.data();
                self.run.push((text, data));
            }
            Node::ELEMENT_NODE => {
                let element: &Element = node.unchecked_ref();
                // Elements never touched are not inline, so they end the run too.
                if INLINE.contains(&element.tag_name().as_str()) && !is_opted_out(element) {
                    self.children(&node);
                } else {
                    self.flush();
                }
            }
            // Comments and processing instructions are invisible: they neither
            // hold numbers nor break a run.
            _ => {}
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

    fn flush(&mut self) {
        if !self.run.is_empty() {
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
    }
}

fn is_opted_out(element: &Element) -> bool {
    element.unchecked_ref::<Selectable>().matches(OPTED_OUT_SELECTOR)
}
