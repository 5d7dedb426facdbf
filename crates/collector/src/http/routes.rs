//! The one route list of the API: [`ROUTES`] is what is registered, what
//! `Allow` headers list, and what the OpenAPI document lists: its operations
//! are the listed handlers' `#[utoipa::path]` annotations ([`Operations`]).

use std::sync::LazyLock;

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, Resource, ResponseError, web};

use crate::http::error::ApiError;
use crate::http::{auth, call_notes, calls, cors, exports, money, pbx, pools, privacy, recordings, visits};

/// Who calls a route, which decides what wraps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The script tag on a site's pages: per-site CORS (and a refusal of
    /// other origins on the server too), and a CORS preflight.
    Browser,
    /// A PBX's webhook: its own signature, no CORS.
    Pbx,
    /// The admin API and the dashboard: the admin token (in the handler's
    /// [`extract::Admin`]).
    Admin,
    /// Anyone.
    Public,
}

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub caller: Caller,
}

/// Declares the route list once, as data ([`ROUTES`]) and as registration
/// ([`register`]), so the two cannot drift.
macro_rules! routes {
    ($($caller:ident $method:ident $path:literal => $handler:path;)*) => {
        /// Every route of the API, in the order they are tried. Routes with
        /// a `{…}` segment cost a regex match each: the per-visitor routes
        /// go first, and a static path before a pattern that would match it
        /// (`/v1/calls.csv` before `/v1/calls/{id}`).
        pub const ROUTES: &[Route] = &[
            $(Route { method: routes!(@name $method), path: $path, caller: Caller::$caller },)*
        ];

        fn handlers() -> Vec<(&'static str, Caller, actix_web::Route)> {
            vec![$(($path, Caller::$caller, web::$method().to($handler)),)*]
        }

        /// The operations of [`ROUTES`]: each handler's `#[utoipa::path]`, so
        /// that the document has exactly the routes registered (a test
        /// checks that each annotation names its route's method and path).
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler),*))]
        pub struct Operations;
    };
    (@name get) => { "GET" };
    (@name post) => { "POST" };
    (@name patch) => { "PATCH" };
    (@name delete) => { "DELETE" };
}

routes! {
    Browser get  "/v1/sites/{site}/config"    => visits::site_config;
    Browser post "/v1/sites/{site}/visits"    => visits::visit;
    Browser post "/v1/sites/{site}/heartbeat" => visits::heartbeat;
    Browser post "/v1/sites/{site}/pageviews" => visits::page_view;
    Pbx     post "/v1/sites/{site}/pbx/zadarma" => pbx::post_zadarma;
    Pbx     get  "/v1/sites/{site}/pbx/zadarma" => pbx::zadarma_echo;
    Pbx     post "/v1/sites/{site}/pbx/mango/events/{event}" => pbx::post_mango;
    Pbx     post "/v1/sites/{site}/pbx/{adapter}" => pbx::post_event;
    Public  get  "/v1/openapi.json"           => openapi;
    Admin   get  "/v1/calls"                  => calls::list;
    Admin   get  "/v1/calls.csv"              => calls::csv_export;
    Admin   get  "/v1/calls/{id}"             => calls::get_call;
    Admin   post "/v1/calls/{id}/promo"       => calls::attach_promo;
    Admin   get  "/v1/calls/{id}/recording"   => recordings::recording;
    Admin   post "/v1/calls/{id}/tags"        => call_notes::add_tag;
    Admin   delete "/v1/calls/{id}/tags/{tag}" => call_notes::remove_tag;
    Admin   get  "/v1/calls/{id}/notes"       => call_notes::list_notes;
    Admin   post "/v1/calls/{id}/notes"       => call_notes::add_note;
    Admin   delete "/v1/calls/{id}/notes/{note}" => call_notes::remove_note;
    Admin   get  "/v1/tags"                   => call_notes::tags_in_use;
    Admin   get  "/v1/reports/calls"          => calls::report;
    Admin   get  "/v1/reports/pools"          => pools::report;
    Admin   get  "/v1/promo/{code}"           => calls::promo_lookup;
    Admin   post "/v1/costs"                  => money::post_costs;
    Admin   post "/v1/revenue"                => money::post_revenue;
    Admin   get  "/v1/exports"                => exports::list;
    Admin   post "/v1/exports/{id}/retry"     => exports::retry;
    Admin   post "/v1/privacy/erase"          => privacy::erase;
    Admin   post "/v1/privacy/export"         => privacy::export;
    Public  post "/v1/auth/login"             => auth::login;
    Public  post "/v1/auth/logout"            => auth::logout;
    Public  get  "/v1/auth/me"                => auth::me;
    Admin   get  "/v1/users"                  => auth::list_users;
    Admin   post "/v1/users"                  => auth::add_user;
    Admin   patch "/v1/users/{id}"            => auth::update_user;
    Admin   delete "/v1/users/{id}"           => auth::remove_user;
}

/// The paths that also answer a CORS preflight (`OPTIONS`): the browser's.
pub fn preflighted() -> impl Iterator<Item = &'static str> {
    let mut seen: Vec<&str> = Vec::new();
    ROUTES.iter().filter(|r| r.caller == Caller::Browser).map(|r| r.path).filter(move |p| {
        let new = !seen.contains(p);
        seen.push(p);
        new
    })
}

/// Registers [`ROUTES`]: one resource per path, with the methods listed for
/// it; any other method answers a JSON 405 with `Allow`.
pub fn register(cfg: &mut web::ServiceConfig) {
    let mut resources: Vec<(&'static str, Caller, Resource)> = Vec::new();
    for (path, caller, route) in handlers() {
        match resources.iter().position(|(p, _, _)| *p == path) {
            Some(i) => {
                let (p, c, resource) = resources.remove(i);
                resources.insert(i, (p, c, resource.route(route)));
            }
            None => resources.push((path, caller, web::resource(path).route(route))),
        }
    }
    for (_, caller, resource) in resources {
        let resource = resource.default_service(web::to(not_found));
        if caller == Caller::Browser {
            cfg.service(
                resource
                    .route(web::method(Method::OPTIONS).to(cors::preflight))
                    .wrap(actix_web::middleware::from_fn(cors::cors)),
            );
        } else {
            cfg.service(resource);
        }
    }
    // A preflight of any other path of a site passes the same origin check.
    cfg.service(
        web::resource("/v1/sites/{site}/{tail:.*}")
            .route(web::method(Method::OPTIONS).to(cors::preflight))
            .default_service(web::to(not_found))
            .wrap(actix_web::middleware::from_fn(cors::cors)),
    );
}

#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = serde_json::Value))
)]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(openapi_json())
}

/// The OpenAPI document of [`ROUTES`], as served (built once).
pub fn openapi_json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| {
        let doc = crate::http::openapi::document(<Operations as utoipa::OpenApi>::openapi());
        // Built from typed values: it always serialises.
        doc.to_pretty_json().unwrap_or_default()
    });
    &JSON
}

/// Fallback for unmatched requests: a JSON 404, or a 405 with `Allow` when
/// the path is the API's and only the method is wrong.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let (method, path) = (req.method().to_string(), req.path());
    match allowed_methods(path) {
        Some(allow) => method_not_allowed(&method, path, &allow),
        None => ApiError::not_found("not_found", format!("no such route: {method} {path}")).error_response(),
    }
}

/// 405 with `Allow` and the JSON error body.
pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> HttpResponse {
    let mut resp = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path}; allowed: {allow}"),
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    resp
}

/// Whether `path` is one that `pattern` (`/v1/calls/{id}`) names.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The methods an API path answers, for `Allow`, from the route table (and
/// OPTIONS where browsers preflight); `None` for a path the API does not have.
pub fn allowed_methods(path: &str) -> Option<String> {
    let mut methods: Vec<&str> = ROUTES.iter().filter(|r| matches(r.path, path)).map(|r| r.method).collect();
    if methods.is_empty() {
        return None;
    }
    if preflighted().any(|pattern| matches(pattern, path)) {
        methods.push("OPTIONS");
    }
    let mut unique = Vec::with_capacity(methods.len());
    for m in methods {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    Some(unique.join(", "))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{ROUTES, Route, allowed_methods, matches, openapi_json};
    use crate::services::auth::policy;

    #[test]
    fn the_document_lists_exactly_the_route_list() {
        let doc: serde_json::Value = serde_json::from_str(openapi_json()).unwrap();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                item.as_object().into_iter().flatten().map(move |(method, _)| (method.to_uppercase(), path.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> =
            ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
        assert_eq!(documented, routed, "an annotation names another method or path than its route");
    }

    /// Every rule names a route the API registers, and every admin route
    /// has a rule (the visitor, PBX and public routes need none).
    #[test]
    fn every_admin_route_has_a_rule() {
        let public = |p: &str| p.starts_with("/v1/sites/") || p == "/v1/openapi.json" || p == "/v1/auth/login";
        for Route { method, path: pattern, .. } in ROUTES {
            if public(pattern) {
                continue;
            }
            assert!(
                policy::RULES.iter().any(|r| r.method == *method && r.pattern == *pattern),
                "{method} {pattern} has no rule"
            );
        }
        for r in policy::RULES {
            assert!(
                ROUTES.iter().any(|route| route.method == r.method && route.path == r.pattern),
                "rule {} {} names no route",
                r.method,
                r.pattern
            );
        }
    }

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("/v1/calls/{id}", "/v1/calls/12"));
        assert!(!matches("/v1/calls/{id}", "/v1/calls/"));
        assert!(!matches("/v1/calls/{id}", "/v1/calls/12/promo"));
        assert!(matches("/v1/calls.csv", "/v1/calls.csv"));
        assert!(!matches("/v1/calls", "/v1/calls.csv"));
    }

    #[test]
    fn allow_lists_what_the_route_table_registers() {
        let allowed = |path: &str| allowed_methods(path).unwrap_or_default();
        assert_eq!(allowed("/v1/sites/shop/visits"), "POST, OPTIONS");
        assert_eq!(allowed("/v1/sites/shop/config"), "GET, OPTIONS");
        assert_eq!(allowed("/v1/calls/7"), "GET");
        assert_eq!(allowed("/v1/sites/shop/pbx/zadarma"), "POST, GET");
        assert_eq!(allowed_methods("/v1/nothing"), None);
        assert_eq!(allowed_methods("/demo/index.html"), None);
    }
}
