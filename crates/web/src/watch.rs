//! Swapping content that appears after the first pass: single-page-app route
//! changes, pop-ups, lazy widgets. A MutationObserver hands us what changed and
//! we run the same swap over just that.

use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::prelude::*;
use web_sys::{MutationObserver, MutationObserverInit, MutationRecord, Node};

use crate::js::ObjectBuilder;
use crate::swap::Swap;

/// An observation that ends when this is dropped.
pub struct Watch {
    observer: MutationObserver,
}

impl Watch {
    pub fn start(root: &Node, swap: Rc<Swap>) -> Result<Watch, JsValue> {
        observe(root, swap).map(|observer| Watch { observer })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.observer.disconnect();
    }
}

/// Starts swapping what changes under `root`; the observation lasts until
/// the returned observer is disconnected.
///
/// The callback is handed to JS for good: a connected observer is kept alive
/// by the nodes it observes, and the callback by the observer, so it lives
/// exactly as long as the observation and is collected with it.
pub fn observe(root: &Node, swap: Rc<Swap>) -> Result<MutationObserver, JsValue> {
    let callback =
        Closure::<dyn FnMut(Array, MutationObserver)>::new(move |records: Array, observer: MutationObserver| {
            on_mutations(&swap, &records);
            // Our own rewrites queue records too; they hold no original
            // numbers any more, so dropping them saves a useless pass.
            observer.take_records();
        });
    let observer = MutationObserver::new(callback.into_js_value().unchecked_ref())?;
    // A plain object filled through Reflect: no setter import per field.
    let init = ObjectBuilder::new()
        .set("childList", true)
        .set("subtree", true)
        .set("characterData", true)
        .set("attributes", true)
        .set("attributeFilter", Array::of1(&JsValue::from_str("href")))
        .build();
    observer.observe_with_options(root, init.unchecked_ref::<MutationObserverInit>())?;
    Ok(observer)
}

/// Every record is swapped at its target: the parent whose children changed,
/// the text that changed, or the link whose href did. A whole parent is cheap
/// to look at again: its numbers are already replaced, so its text shows no
/// place where an original may end and nothing under it is walked.
fn on_mutations(swap: &Swap, records: &Array) {
    // A framework filling a list queues one record per item, all with the
    // list as target: it is looked at once.
    let mut swapped: Option<Node> = None;
    for record in records.iter() {
        let Some(mut node) = record.unchecked_into::<MutationRecord>().target() else { continue };
        // A changed text node may complete a number with its siblings, so the
        // whole parent is swapped; an element carries its own context.
        if node.node_type() == Node::TEXT_NODE {
            let Some(parent) = node.parent_node() else { continue };
            node = parent;
        }
        if swapped.as_ref() != Some(&node) {
            swap.apply(&node);
            swapped = Some(node);
        }
    }
}
