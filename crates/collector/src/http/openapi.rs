//! The OpenAPI 3.1 document of the API, served at `/v1/openapi.json`.
//!
//! It is generated, not written: the operations are the `#[utoipa::path]`
//! annotations of the handlers in the one route list
//! ([`crate::http::routes`], which builds and serves the document with
//! [`document`]), the bodies are the JSON schemas derived
//! from the very types the handlers serialise and parse (core's wire types
//! with its `openapi` feature, the collector's own answers). The
//! collector's integration tests check every response they receive against
//! it (`tests/it/common/openapi.rs`).
//!
//! What every operation shares is added here once, not on each handler:
//! - an error response names the codes it carries in the extension
//!   `x-error-codes`; [`ErrorCodes`] turns that into a schema that allows
//!   only those codes, and lists every code in [`ErrorObject`]'s;
//! - the admin API's 401, the 500 of every operation that reads anything, and the edge's 408 for an
//!   operation with a body ([`CommonAnswers`]).

use std::collections::BTreeSet;

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, ToSchema};

use crate::http::error::{ErrorBody, ErrorObject};

/// The extension an error response lists its codes in.
pub const ERROR_CODES: &str = "x-error-codes";

/// The security scheme of the admin API's token.
pub const ADMIN_TOKEN: &str = "adminToken";
/// The security scheme of a signed-in dashboard user.
pub const SESSION_COOKIE: &str = "sessionCookie";

/// What the auth guard answers with 403 on any admin route.
const GUARD_REFUSALS: [&str; 4] = ["forbidden", "csrf_token", "site_forbidden", "site_required"];

/// Codes answered outside any one operation: a path the API does not have,
/// and a method a path does not list.
const ROUTING_CODES: [&str; 2] = ["not_found", "method_not_allowed"];

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Ringsource collector API",
        version = "1",
        license(name = "MIT OR Apache-2.0"),
        description = "Leases tracking numbers to website visitors and attributes the calls they make. \
Errors are always JSON {\"error\": {\"code\", \"message\"}} with a 4xx status for bad input; each operation \
lists the codes each status carries. A path asked with a method it does not list answers 405 \
method_not_allowed with an Allow header. Every request head must be whole 5 s after its first byte (1 s while \
the server is near its connection cap), and a request body within 10 s plus 1 s per KiB received (else 408 \
request_timeout). Lengths are bytes of UTF-8 unless a description says characters."
    ),
    components(schemas(ErrorBody, ErrorObject))
)]
pub struct ApiDoc;

/// Who calls an operation, for the answers all of one caller's operations
/// give ([`CallerAnswers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The script tag: per-site origins, rate limits, 32 KiB bodies.
    Browser,
    /// A PBX's webhook: its own signature, 256 KiB bodies.
    Pbx,
    Other,
}

/// The document of `operations` (the route list's, [`crate::http::routes`]),
/// with what they all share; `audience` says who calls a method and path.
pub fn document(operations: OpenApi, audience: impl Fn(&str, &str) -> Audience) -> OpenApi {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    doc.merge(operations);
    for part in [&CallerAnswers(audience) as &dyn Modify, &AdminToken, &CommonAnswers, &ErrorCodes] {
        part.modify(&mut doc);
    }
    doc
}

/// The answers every operation of one caller gives, written once; an
/// operation that answers the status its own way keeps its own.
struct CallerAnswers<F>(F);

impl<F: Fn(&str, &str) -> Audience> Modify for CallerAnswers<F> {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let methods = [("GET", &mut item.get), ("POST", &mut item.post), ("PATCH", &mut item.patch)];
            for (method, op) in methods {
                let Some(op) = op.as_mut() else { continue };
                let with_body = op.request_body.is_some();
                let shared: &[(&str, &str, &[&str])] = match ((self.0)(method, path), with_body) {
                    (Audience::Browser, false) => &BROWSER_ANSWERS[..1],
                    (Audience::Browser, true) => &BROWSER_ANSWERS,
                    (Audience::Pbx, true) => &PBX_ANSWERS,
                    _ => &[],
                };
                for (status, description, codes) in shared {
                    if op.responses.responses.contains_key(*status) {
                        continue;
                    }
                    let mut answer = error_response(description, codes);
                    if *status == "429" {
                        answer.headers.insert("Retry-After".to_owned(), RefOr::T(seconds_header()));
                    }
                    op.responses.responses.insert((*status).to_owned(), RefOr::T(answer));
                }
            }
        }
    }
}

/// What the script tag's routes answer alike (the first for every one, the
/// rest for those with a body).
const BROWSER_ANSWERS: [(&str, &str, &[&str]); 3] = [
    ("403", "The page's origin is not in the site's allowed_origins", &["origin_not_allowed"]),
    ("413", "Body over 32 KiB", &["payload_too_large"]),
    (
        "429",
        "Rate limited per client (visits have a bucket, heartbeats and page views share another); see Retry-After",
        &["rate_limited"],
    ),
];

/// What the PBX webhooks answer alike.
const PBX_ANSWERS: [(&str, &str, &[&str]); 5] = [
    (
        "400",
        "Authenticated, but the report is malformed (bad JSON or form, missing call id, unreadable number or time)",
        &["bad_request"],
    ),
    (
        "401",
        "Authentication failed: `missing_credentials` (the header or field that carries it is absent; the message names it), `bad_credentials` (it does not match), `stale_timestamp` (generic: more than 300 s from the collector's clock)",
        &["missing_credentials", "bad_credentials", "stale_timestamp"],
    ),
    ("404", "Unknown site, or the PBX is not configured for it", &["unknown_site", "pbx_not_configured"]),
    ("409", "The event contradicts the call stored under the same PBX call id", &["conflict"]),
    ("413", "Body larger than 256 KiB", &["payload_too_large"]),
];

fn seconds_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
        .description(Some("Seconds to wait"))
        .build()
}

/// Who may use the admin API: the bearer token, or a signed-in user's
/// session cookie (which every operation of the token also takes).
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut OpenApi) {
        let mut token = Http::new(HttpAuthScheme::Bearer);
        token.description = Some(
            "server.admin_token (or RINGSOURCE_ADMIN_TOKEN): an admin of every site. Without a configured token or users the admin API answers 401."
                .to_owned(),
        );
        let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
            crate::http::extract::COOKIE,
            "The session of POST /v1/auth/login. What the user's role may do is in GET /v1/auth/me; every request that changes something also sends the session's token in X-CSRF-Token.",
        ));
        let components = openapi.components.get_or_insert_default();
        components.add_security_scheme(ADMIN_TOKEN, SecurityScheme::Http(token));
        components.add_security_scheme(SESSION_COOKIE, SecurityScheme::ApiKey(cookie));
        for op in operations(openapi) {
            if op.security.iter().flatten().any(|s| names(s, ADMIN_TOKEN)) {
                op.security.get_or_insert_default().push(SecurityRequirement::new::<_, _, &str>(SESSION_COOKIE, []));
            }
        }
    }
}

/// Whether a requirement names the scheme `name`.
fn names(requirement: &SecurityRequirement, name: &str) -> bool {
    serde_json::to_value(requirement).is_ok_and(|v| v.get(name).is_some())
}

fn error_response(description: &str, codes: &[&str]) -> Response {
    let mut extensions = Extensions::default();
    extensions.insert(ERROR_CODES.to_owned(), serde_json::json!(codes));
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(Ref::from_schema_name(ErrorBody::name()))))
        .extensions(Some(extensions))
        .build()
}

fn operations(openapi: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.options.as_mut(),
            item.head.as_mut(),
            item.patch.as_mut(),
            item.trace.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

/// The answers that do not depend on the operation: 401 of the admin API
/// (with its challenge), 500 of every operation that reads anything, 408 of
/// every operation with a body (the edge's body deadline closes the
/// connection after it).
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for op in operations(openapi) {
            let admin = op.security.iter().flatten().any(|s| names(s, ADMIN_TOKEN));
            let responses = &mut op.responses.responses;
            // An operation that refuses nothing (the document itself) reads
            // nothing that can fail either.
            let fallible = responses.keys().any(|status| status.starts_with('4'));
            if admin && !responses.contains_key("401") {
                let mut answer = error_response(
                    "Not signed in, or a missing or wrong admin token (or neither a token nor users configured)",
                    &["unauthorized"],
                );
                answer.headers.insert(
                    "WWW-Authenticate".to_owned(),
                    RefOr::T(HeaderBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::String))).build()),
                );
                responses.insert("401".to_owned(), RefOr::T(answer));
            }
            if admin && !responses.contains_key("403") {
                let answer = error_response(
                    "The user's role may not do this, the site is not theirs, or the session's X-CSRF-Token is missing",
                    &GUARD_REFUSALS,
                );
                responses.insert("403".to_owned(), RefOr::T(answer));
            }
            if op.request_body.is_some() && !responses.contains_key("408") {
                let answer = error_response(
                    "The request body did not arrive in time (10 s, plus 1 s per KiB received); the connection is closed",
                    &["request_timeout"],
                );
                responses.insert("408".to_owned(), RefOr::T(answer));
            }
            if fallible && !responses.contains_key("500") {
                let answer = error_response(
                    "The server failed (the database, the disk); not caused by the request",
                    &["storage_error", "internal_error"],
                );
                responses.insert("500".to_owned(), RefOr::T(answer));
            }
        }
    }
}

/// Narrows each error response's schema to the codes its `x-error-codes`
/// names, and lists the union of all codes in [`ErrorObject`]'s `code`.
struct ErrorCodes;

impl Modify for ErrorCodes {
    fn modify(&self, openapi: &mut OpenApi) {
        let mut all: BTreeSet<String> = ROUTING_CODES.iter().map(|c| (*c).to_owned()).collect();
        for op in operations(openapi) {
            for answer in op.responses.responses.values_mut() {
                let RefOr::T(answer) = answer else { continue };
                let Some(codes) = answer.extensions.as_ref().and_then(|e| e.get(ERROR_CODES)).cloned() else {
                    continue;
                };
                let codes: Vec<String> = serde_json::from_value(codes).unwrap_or_default();
                all.extend(codes.iter().cloned());
                let narrowed = || {
                    AllOfBuilder::new()
                        .item(Ref::from_schema_name(ErrorBody::name()))
                        .item(ObjectBuilder::new().property(
                            "error",
                            ObjectBuilder::new().property(
                                "code",
                                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.clone())),
                            ),
                        ))
                        .build()
                };
                for content in answer.content.values_mut() {
                    if let RefOr::T(content) = content {
                        content.schema = Some(RefOr::T(Schema::AllOf(narrowed())));
                    }
                }
            }
        }
        let Some(components) = openapi.components.as_mut() else { return };
        if let Some(RefOr::T(Schema::Object(error))) = components.schemas.get_mut(&*ErrorObject::name())
            && let Some(RefOr::T(Schema::Object(code))) = error.properties.get_mut("code")
        {
            code.enum_values = Some(all.into_iter().map(Into::into).collect());
        }
    }
}
