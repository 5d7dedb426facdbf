//! Source rules: which kind of number a visit gets.
//!
//! A site lists static numbers (one per source or source group) and dynamic
//! pools (a number per visitor), each with the source rules it serves. The
//! routing decision takes the visit's [`Touch`] and walks the static numbers
//! first, then the pools, in configuration order; the first rule that matches
//! wins. Static numbers go first because they are the more specific promise
//! ("Instagram always shows this number"), and pools are usually broad
//! ("all paid search"). Nothing matching keeps the site's original number.

use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::touch::Touch;
use crate::visit::ClickIdKind;

/// One source rule. Every condition that is set must hold (AND); text
/// comparisons ignore ASCII case. A rule with no condition is rejected by
/// [`SourceRule::validate`], because a catch-all is almost always a mistake in
/// a config that also has other rules (use the pool order for fallbacks).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRule {
    /// The touch's channel, e.g. "Paid Search".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Matches [`Touch::source`] (the `utm_source`, or the classified source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    /// Matches [`Touch::medium`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    /// Matches [`Touch::campaign`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    /// Matches [`Touch::content`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    /// The kind of ad click id the landing URL carried (`gclid`, `yclid`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<ClickIdKind>,
}

/// Why a rule is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "the rule has no condition; set at least one of channel, utm_source, utm_medium, utm_campaign, utm_content, click_id"
    )]
    Empty,
    #[error("{field} is empty; leave it out instead")]
    EmptyValue { field: &'static str },
}

impl SourceRule {
    /// Checks that the rule can match something specific.
    pub fn validate(&self) -> Result<(), RuleError> {
        let texts = [
            ("utm_source", &self.utm_source),
            ("utm_medium", &self.utm_medium),
            ("utm_campaign", &self.utm_campaign),
            ("utm_content", &self.utm_content),
        ];
        for (field, value) in texts {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(RuleError::EmptyValue { field });
            }
        }
        let any = self.channel.is_some() || self.click_id.is_some() || texts.iter().any(|(_, v)| v.is_some());
        if any { Ok(()) } else { Err(RuleError::Empty) }
    }

    /// Whether every condition of the rule holds for `touch`.
    pub fn matches(&self, touch: &Touch) -> bool {
        fn text(want: &Option<String>, have: Option<&str>) -> bool {
            match want {
                None => true,
                Some(w) => have.is_some_and(|h| h.trim().eq_ignore_ascii_case(w.trim())),
            }
        }
        self.channel.is_none_or(|c| c == touch.channel)
            && text(&self.utm_source, Some(&touch.source))
            && text(&self.utm_medium, Some(&touch.medium))
            && text(&self.utm_campaign, touch.campaign.as_deref())
            && text(&self.utm_content, touch.content.as_deref())
            && self.click_id.is_none_or(|k| touch.click_id.as_ref().is_some_and(|c| c.kind == k))
    }
}

/// What a visit should be shown, by index into the site's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The static number at this index.
    Static(usize),
    /// A number from the pool at this index.
    Pool(usize),
    /// Keep the site's original number.
    Original,
}

/// A site's routing table. `statics[i]` holds the rules of static number `i`
/// (an offline-only number has none and is never routed to); `pools[i]` the
/// rules of pool `i`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutingTable {
    pub statics: Vec<Vec<SourceRule>>,
    pub pools: Vec<Vec<SourceRule>>,
}

impl RoutingTable {
    /// The route for a touch: first matching static number, else first
    /// matching pool, else the original number.
    pub fn route(&self, touch: &Touch) -> Route {
        let hit = |rules: &Vec<SourceRule>| rules.iter().any(|r| r.matches(touch));
        if let Some(i) = self.statics.iter().position(hit) {
            return Route::Static(i);
        }
        if let Some(i) = self.pools.iter().position(hit) {
            return Route::Pool(i);
        }
        Route::Original
    }
}
