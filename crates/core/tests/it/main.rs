//! Core's tests, in one binary: one link of the crate instead of one per file.

mod phone_gen;

mod attribution;
mod call_fold;
mod channel;
mod classify_props;
mod lease_rules;
mod lease_shares;
mod matcher;
mod matcher_props;
mod phone;
mod phone_props;
mod referrer_corpus;
mod routing_rules;
mod touch;
mod touch_history;
mod visit;
