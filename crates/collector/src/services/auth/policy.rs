//! Who may reach what: the roles, what each may do, and which permission
//! and which site every admin route needs. Pure: the HTTP guard
//! ([`super::http::guard`]) applies it to each request, so what a role may
//! not reach is refused by the API itself, whatever the dashboard shows.
//!
//! - **admin**: everything, on every site, including users and privacy.
//! - **marketer**: calls (callers masked, no recordings, no notes), the
//!   calls CSV, reports, cost and revenue, the exports queue.
//! - **manager**: calls with callers visible, recordings, tags and notes,
//!   promo code look-up and attaching a code to a call.
//!
//! Marketers see callers masked (`+*********67`, as retention masks them)
//! because they work on channels and money, not with people: a caller's
//! number is personal data they have no use for, and the CSV they export
//! travels to spreadsheets and agencies. Managers call people back.

pub use crate::storage::users::{Role, Sites};

impl Role {
    /// Whether this role may do `p`.
    pub fn may(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Marketer => {
                matches!(
                    p,
                    Own | ReadCalls | ExportCalls | ReadTags | ReadReports | ManageMoney | ReadExports | RetryExports
                )
            }
            Role::Manager => matches!(
                p,
                Own | ReadCalls
                    | ReadTags
                    | TagCalls
                    | ReadNotes
                    | WriteNotes
                    | PlayRecordings
                    | LookUpPromo
                    | AttachPromo
            ),
        }
    }

    /// Whether answers show this role callers' numbers whole.
    pub fn sees_callers(self) -> bool {
        self != Role::Marketer
    }

    /// Every permission of the role, for the dashboard to lay out its views.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL.into_iter().filter(|p| self.may(*p)).collect()
    }
}

/// Something a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Its own session: who am I, sign out.
    Own,
    ReadCalls,
    /// `GET /v1/calls.csv`.
    ExportCalls,
    ReadTags,
    TagCalls,
    ReadNotes,
    WriteNotes,
    PlayRecordings,
    LookUpPromo,
    AttachPromo,
    ReadReports,
    /// Cost uploads and revenue.
    ManageMoney,
    ReadExports,
    RetryExports,
    /// Erasure and subject access.
    Privacy,
    ManageUsers,
}

impl Permission {
    pub const ALL: [Permission; 16] = [
        Permission::Own,
        Permission::ReadCalls,
        Permission::ExportCalls,
        Permission::ReadTags,
        Permission::TagCalls,
        Permission::ReadNotes,
        Permission::WriteNotes,
        Permission::PlayRecordings,
        Permission::LookUpPromo,
        Permission::AttachPromo,
        Permission::ReadReports,
        Permission::ManageMoney,
        Permission::ReadExports,
        Permission::RetryExports,
        Permission::Privacy,
        Permission::ManageUsers,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Own => "own",
            Permission::ReadCalls => "read_calls",
            Permission::ExportCalls => "export_calls",
            Permission::ReadTags => "read_tags",
            Permission::TagCalls => "tag_calls",
            Permission::ReadNotes => "read_notes",
            Permission::WriteNotes => "write_notes",
            Permission::PlayRecordings => "play_recordings",
            Permission::LookUpPromo => "look_up_promo",
            Permission::AttachPromo => "attach_promo",
            Permission::ReadReports => "read_reports",
            Permission::ManageMoney => "manage_money",
            Permission::ReadExports => "read_exports",
            Permission::RetryExports => "retry_exports",
            Permission::Privacy => "privacy",
            Permission::ManageUsers => "manage_users",
        }
    }

    /// What a refusal says the role may not do.
    pub const fn doing(self) -> &'static str {
        match self {
            Permission::Own => "use this session",
            Permission::ReadCalls => "read calls",
            Permission::ExportCalls => "export calls as CSV",
            Permission::ReadTags => "read call tags",
            Permission::TagCalls => "tag calls",
            Permission::ReadNotes => "read call notes",
            Permission::WriteNotes => "write call notes",
            Permission::PlayRecordings => "play call recordings",
            Permission::LookUpPromo => "look up promo codes",
            Permission::AttachPromo => "attach promo codes to calls",
            Permission::ReadReports => "read reports",
            Permission::ManageMoney => "upload cost or enter revenue",
            Permission::ReadExports => "read the exports queue",
            Permission::RetryExports => "retry exports",
            Permission::Privacy => "erase or export a caller's data",
            Permission::ManageUsers => "manage users",
        }
    }
}

/// Where a route's site is read, to hold a user to their sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteOf {
    /// The `site` query parameter; a user limited to some sites must name one.
    Query,
    /// The call named by the path's first `{…}` segment.
    Call,
    /// The export named by the path's first `{…}` segment.
    Export,
    /// The `site` field of the JSON body.
    Body,
    /// Not one site's: only users of every site.
    Global,
    /// The signed-in user's own (sign out, who am I).
    Own,
}

/// What one route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub method: &'static str,
    pub pattern: &'static str,
    pub permission: Permission,
    pub site: SiteOf,
}

const fn rule(method: &'static str, pattern: &'static str, permission: Permission, site: SiteOf) -> Rule {
    Rule { method, pattern, permission, site }
}

/// Every route that needs a signed-in user or the admin token. A route of
/// the admin API missing here is reachable with the admin token only (the
/// handlers' [`crate::http::extract::Admin`] extractor), never by a session.
pub const RULES: &[Rule] = &[
    rule("GET", "/v1/calls", Permission::ReadCalls, SiteOf::Query),
    rule("GET", "/v1/calls.csv", Permission::ExportCalls, SiteOf::Query),
    rule("GET", "/v1/calls/{id}", Permission::ReadCalls, SiteOf::Call),
    rule("POST", "/v1/calls/{id}/promo", Permission::AttachPromo, SiteOf::Call),
    rule("GET", "/v1/calls/{id}/recording", Permission::PlayRecordings, SiteOf::Call),
    rule("POST", "/v1/calls/{id}/tags", Permission::TagCalls, SiteOf::Call),
    rule("DELETE", "/v1/calls/{id}/tags/{tag}", Permission::TagCalls, SiteOf::Call),
    rule("GET", "/v1/calls/{id}/notes", Permission::ReadNotes, SiteOf::Call),
    rule("POST", "/v1/calls/{id}/notes", Permission::WriteNotes, SiteOf::Call),
    rule("DELETE", "/v1/calls/{id}/notes/{note}", Permission::WriteNotes, SiteOf::Call),
    rule("GET", "/v1/tags", Permission::ReadTags, SiteOf::Query),
    rule("GET", "/v1/reports/calls", Permission::ReadReports, SiteOf::Query),
    rule("GET", "/v1/reports/pools", Permission::ReadReports, SiteOf::Query),
    rule("GET", "/v1/promo/{code}", Permission::LookUpPromo, SiteOf::Query),
    rule("POST", "/v1/costs", Permission::ManageMoney, SiteOf::Query),
    rule("POST", "/v1/revenue", Permission::ManageMoney, SiteOf::Body),
    rule("GET", "/v1/exports", Permission::ReadExports, SiteOf::Query),
    rule("POST", "/v1/exports/{id}/retry", Permission::RetryExports, SiteOf::Export),
    rule("POST", "/v1/privacy/erase", Permission::Privacy, SiteOf::Global),
    rule("POST", "/v1/privacy/export", Permission::Privacy, SiteOf::Global),
    rule("GET", "/v1/users", Permission::ManageUsers, SiteOf::Global),
    rule("POST", "/v1/users", Permission::ManageUsers, SiteOf::Global),
    rule("PATCH", "/v1/users/{id}", Permission::ManageUsers, SiteOf::Global),
    rule("DELETE", "/v1/users/{id}", Permission::ManageUsers, SiteOf::Global),
    rule("GET", "/v1/auth/me", Permission::Own, SiteOf::Own),
    rule("POST", "/v1/auth/logout", Permission::Own, SiteOf::Own),
];

/// Whether `path` fits `pattern`, where a `{name}` segment is any one
/// non-empty segment.
pub fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The rule of a request, if its route needs one.
pub fn rule_for(method: &str, path: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.method.eq_ignore_ascii_case(method) && matches(r.pattern, path))
}

/// The first `{…}` segment of `path` under `pattern` (a call or export id).
pub fn first_param<'p>(pattern: &str, path: &'p str) -> Option<&'p str> {
    pattern.split('/').zip(path.split('/')).find(|(w, _)| w.starts_with('{')).map(|(_, g)| g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("/v1/calls/{id}", "/v1/calls/12"));
        assert!(!matches("/v1/calls/{id}", "/v1/calls/12/tags"));
        assert!(!matches("/v1/calls/{id}", "/v1/calls/"));
        assert!(matches("/v1/calls.csv", "/v1/calls.csv"));
        assert!(!matches("/v1/calls", "/v1/calls.csv"));
        assert_eq!(rule_for("get", "/v1/calls/7/recording").map(|r| r.permission), Some(Permission::PlayRecordings));
        assert_eq!(rule_for("PUT", "/v1/calls/7"), None);
        assert_eq!(first_param("/v1/calls/{id}/tags/{tag}", "/v1/calls/7/tags/lead"), Some("7"));
    }

    #[test]
    fn roles_reach_what_the_issue_gives_them() {
        use Permission::*;
        for p in Permission::ALL {
            assert!(Role::Admin.may(p), "admin may {p:?}");
        }
        for p in [ReadReports, ManageMoney, ReadExports, RetryExports, ExportCalls, ReadCalls] {
            assert!(Role::Marketer.may(p), "marketer may {p:?}");
        }
        for p in [TagCalls, WriteNotes, ReadNotes, PlayRecordings, LookUpPromo, AttachPromo, Privacy, ManageUsers] {
            assert!(!Role::Marketer.may(p), "marketer may not {p:?}");
        }
        for p in [ReadCalls, TagCalls, WriteNotes, PlayRecordings, LookUpPromo, AttachPromo] {
            assert!(Role::Manager.may(p), "manager may {p:?}");
        }
        for p in [ReadReports, ManageMoney, ReadExports, RetryExports, ExportCalls, Privacy, ManageUsers] {
            assert!(!Role::Manager.may(p), "manager may not {p:?}");
        }
        assert!(!Role::Marketer.sees_callers() && Role::Manager.sees_callers() && Role::Admin.sees_callers());
    }
}
