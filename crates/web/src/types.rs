//! The package's TypeScript declarations for the values the exports take
//! and return as plain JS objects (see `js.rs` for why they are built by
//! hand). wasm-bindgen copies this text into `ringsource.d.ts`; it adds no
//! byte to the wasm. A test in `tests/dom.rs` checks the unions against
//! core's lists, so a new channel or click id cannot be left out here.

pub const TYPES: &str = r#"
/** Options of {@link start}. Script-tag users set them as data-* attributes. */
export interface StartOptions {
  /** The site id from the collector's configuration (`[[sites]] id`). */
  site: string;
  /** The collector's base URL, e.g. "https://calls.example.com". */
  collector: string;
  /**
   * The visitor has already consented (your consent banner said so): `true`,
   * or "granted" as the script tag's `data-consent` writes it. Sites that
   * require consent otherwise wait for {@link grantConsent}.
   */
  consent?: boolean | "granted";
  /** Deadline of each request to the collector, in milliseconds (default 3000). */
  timeoutMs?: number;
}

/**
 * What the page shows after {@link start}:
 * - "lease": a pool number held by this visitor (or the overflow number, see `overflow`);
 * - "static": the fixed number of the visitor's source;
 * - "promo": a promo code, written into `[data-ringsource-promo]` elements;
 * - "original": the site's own number;
 * - "stored": the number stored from an earlier visit, kept while the collector is unreachable.
 */
export type OutcomeKind = "lease" | "static" | "promo" | "original" | "stored";

/** Why the page kept (or went back to) the site's own or stored number. */
export type OutcomeReason =
  | "crawler"
  | "waiting for consent"
  | "behind the show-number button"
  | "collector unavailable"
  | "origin not allowed"
  | "cannot read the page";

/** What {@link start} resolves to. */
export interface Outcome {
  kind: OutcomeKind;
  /** The number shown, in E.164 ("+74957000001"), for "lease", "static" and "stored". */
  number?: string;
  /** The collector's session for this visitor, once it has one. */
  session_id?: string;
  reason?: OutcomeReason;
  /** The pool was exhausted: `number` is the site's overflow number, shared by many visitors. */
  overflow?: true;
  /** The code shown, for "promo". */
  promo_code?: string;
}

/** A default channel group, as GA4 names them. */
export type Channel =
  | "Direct"
  | "Organic Search"
  | "Paid Search"
  | "Organic Social"
  | "Paid Social"
  | "Email"
  | "Referral"
  | "Display"
  | "Affiliates"
  | "Organic Video"
  | "Paid Video"
  | "Unassigned";

/** An ad network's click id parameter. */
export type ClickIdKind = "gclid" | "gbraid" | "wbraid" | "yclid" | "msclkid" | "fbclid" | "ttclid";

export interface ClickId {
  kind: ClickIdKind;
  value: string;
}

/** Where a visit came from, as {@link classify} reads it. */
export interface Touch {
  channel: Channel;
  /** "google", "yandex", "instagram", a referring host, or "(direct)". */
  source: string;
  /** "cpc", "organic", "referral", "social", "email", … or "(none)". */
  medium: string;
  campaign?: string;
  /** The search term or keyword, where the source tells it. */
  term?: string;
  content?: string;
  utm_id?: string;
  click_id?: ClickId;
  /** The landing page's path. */
  landing_path: string;
  referrer_host?: string;
  /** When the touch happened, in milliseconds since the epoch. */
  at_ms: number;
}

/** The visitor's first and last (non-direct) touch, as stored in localStorage. */
export interface TouchHistory {
  first: Touch | null;
  last: Touch | null;
}
"#;
