//! The browser layer: only marshalling between the DOM and `ringsource-core`.
