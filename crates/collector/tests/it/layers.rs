//! The collector's layers, read from its source: every `crate::`, `super::`
//! and `self::` path outside test code is an import of one module by
//! another. The check fails on an import cycle between the crate's parts,
//! on an import that goes up a layer (or from HTTP past the services into
//! storage), on a part that belongs to no layer, and on actix outside the
//! HTTP edge or SQLite outside its adapter.
//!
//! The parts are the top-level modules, except that each module directly
//! under `http`, `services` and `storage` is a part of its own (a parent
//! module is a part too). Layers, lowest first:
//!
//! | layer | parts |
//! |---|---|
//! | 0 support | clock, dates, env, mask, outage, recent, session_id |
//! | 1 feature definitions | pbx (pure adapters and their settings), exports (settings) |
//! | 2 config | config |
//! | 3 storage | storage, storage::* |
//! | 4 services | services, services::* |
//! | 5 http | http, http::* |
//! | 6 app | server, cli, demo, logging |
//!
//! An import may go to the same layer or below, never from `http` to
//! `storage`. Run it alone: `cargo test -p ringsource-collector --test it layers`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn layer(part: &str) -> Option<(u8, &'static str)> {
    let top = part.split("::").next().unwrap_or(part);
    Some(match top {
        "clock" | "dates" | "env" | "mask" | "outage" | "recent" | "session_id" => (0, "support"),
        "pbx" | "exports" => (1, "feature definitions"),
        "config" => (2, "config"),
        "storage" => (3, "storage"),
        "services" => (4, "services"),
        "http" => (5, "http"),
        "server" | "cli" | "demo" | "logging" => (6, "app"),
        _ => return None,
    })
}

/// Modules whose children are parts of their own.
const SPLIT: [&str; 3] = ["http", "services", "storage"];

fn part_of(module: &[String]) -> Option<String> {
    match module {
        [] => None,
        [top, child, ..] if SPLIT.contains(&top.as_str()) => Some(format!("{top}::{child}")),
        [top, ..] => Some(top.clone()),
    }
}

struct Source {
    module: Vec<String>,
    /// `mod.rs`, `lib.rs`: `super` is the parent of `module`, not of the file's folder.
    path: PathBuf,
    text: String,
}

fn sources(dir: &Path, prefix: &[String], out: &mut Vec<Source>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            sources(&path, &p, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let module = match name.as_str() {
                "mod" | "lib" => prefix.to_vec(),
                "main" => continue,
                _ => {
                    let mut p = prefix.to_vec();
                    p.push(name);
                    p
                }
            };
            let text = without_tests(&std::fs::read_to_string(&path).unwrap());
            out.push(Source { module, path, text });
        }
    }
}

/// The text without comments and without `#[cfg(test)]` items.
fn without_tests(text: &str) -> String {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..i]);
        rest = &rest[i + "#[cfg(test)]".len()..];
        // Skip the item: up to its `;` or its balanced `{ … }`.
        let mut depth = 0usize;
        let mut end = rest.len();
        for (j, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Every path that starts with `crate`, `super` or `self`, with use-groups
/// (`crate::http::{calls, error::ApiError}`) expanded.
fn paths(text: &str) -> Vec<Vec<String>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let head = start.trim_end_matches("::").to_owned();
            expand(bytes, from, vec![head], &mut out);
        }
    }
    out
}

fn ident_at(bytes: &[u8], mut i: usize) -> (String, usize) {
    let start = i;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    (String::from_utf8_lossy(&bytes[start..i]).into_owned(), i)
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Reads `seg::seg::…` from `i` (just after a `::`), recursing into groups.
fn expand(bytes: &[u8], i: usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let i = skip_space(bytes, i);
    if bytes.get(i) == Some(&b'{') {
        let mut j = i + 1;
        loop {
            j = skip_space(bytes, j);
            match bytes.get(j) {
                None => return j,
                Some(b'}') => return j + 1,
                Some(b',') => j += 1,
                _ => {
                    let (seg, k) = ident_at(bytes, j);
                    if seg.is_empty() {
                        return j;
                    }
                    let mut sub = path.clone();
                    if seg != "self" {
                        sub.push(seg);
                    }
                    let k = skip_space(bytes, k);
                    if bytes[k..].starts_with(b"::") {
                        j = expand(bytes, k + 2, sub, out);
                    } else {
                        out.push(sub);
                        // `as name`
                        j = k;
                        if bytes[j..].starts_with(b"as ") {
                            let (_, k) = ident_at(bytes, skip_space(bytes, j + 3));
                            j = k;
                        }
                    }
                }
            }
        }
    }
    let (seg, j) = ident_at(bytes, i);
    if seg.is_empty() {
        out.push(path);
        return j;
    }
    path.push(seg);
    if bytes[j..].starts_with(b"::") {
        expand(bytes, j + 2, path, out)
    } else {
        out.push(path);
        j
    }
}

/// The module a path names: the longest prefix that is a module.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    let mut absolute: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => from.to_vec(),
        Some("super") => from[..from.len().saturating_sub(1)].to_vec(),
        _ => unreachable!(),
    };
    let mut segs = &path[1..];
    while segs.first().is_some_and(|s| s == "super") {
        absolute.pop();
        segs = &segs[1..];
    }
    absolute.extend(segs.iter().cloned());
    while !absolute.is_empty() && !modules.contains(&absolute) {
        absolute.pop();
    }
    absolute
}

#[test]
fn layers_import_only_downwards_and_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &[], &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = part_of(&file.module) else { continue };
        if layer(&from).is_none() {
            problems.push(format!("{from} ({}) is in no layer: add it to tests/it/layers.rs", file.path.display()));
        }
        edges.entry(from.clone()).or_default();
        let rank = layer(&from).map_or(u8::MAX, |l| l.0);
        for path in paths(&file.text) {
            let Some(to) = part_of(&resolve(&file.module, &path, &modules)) else { continue };
            if to == from {
                continue;
            }
            edges.get_mut(&from).unwrap().insert(to.clone());
            let Some((to_rank, to_layer)) = layer(&to) else { continue };
            let past_services = from.starts_with("http") && to.starts_with("storage");
            if to_rank > rank || past_services {
                problems.push(format!(
                    "{from} ({}) imports {} from the {to_layer} layer{}",
                    file.path.display(),
                    path.join("::"),
                    if past_services { ": HTTP goes through the services" } else { " above it" }
                ));
            }
        }
        let relative = file.path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let edge = relative.starts_with("http/") || relative == "server.rs" || relative == "cli.rs";
        if !edge && file.text.contains("actix") {
            problems.push(format!("{relative} uses actix: only the HTTP edge and the server may"));
        }
        if !relative.starts_with("storage/sqlite") && !relative.starts_with("cli") && file.text.contains("rusqlite") {
            problems.push(format!("{relative} names rusqlite: SQL stays behind the storage port, in storage/sqlite"));
        }
    }
    for cycle in cycles(&edges) {
        problems.push(format!("import cycle: {}", cycle.join(" → ")));
    }
    assert!(problems.is_empty(), "{} layering problem(s):\n  {}", problems.len(), problems.join("\n  "));
    // The check sees the layers at all.
    assert!(edges["http::routes"].contains("http::visits"), "{edges:?}");
    assert!(edges["services::calls"].contains("storage::calls"), "{edges:?}");
}

/// The strongly connected components of more than one part (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        w.on_stack.insert(v);
        for next in w.edges.get(v).into_iter().flatten() {
            let next = next.as_str();
            if !w.edges.contains_key(next) {
                continue;
            }
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v, low);
            } else if w.on_stack.contains(next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(top) = w.stack.pop() {
                w.on_stack.remove(top);
                component.push(top.to_owned());
                if top == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut w = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

#[test]
fn the_check_finds_a_cycle_and_reads_use_groups() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec!["a"])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(cycles(&edges), vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]);
    let found = paths("use crate::http::{calls, error::ApiError, self};\nlet x = super::y::z();");
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert!(found.contains(&"crate::http::calls".to_owned()), "{found:?}");
    assert!(found.contains(&"crate::http::error::ApiError".to_owned()), "{found:?}");
    assert!(found.contains(&"crate::http".to_owned()), "{found:?}");
    assert!(found.contains(&"super::y::z".to_owned()), "{found:?}");
    assert!(without_tests("fn a() {}\n#[cfg(test)]\nmod tests { use crate::x; }\nfn b() {}").contains("fn b"));
    assert!(!without_tests("#[cfg(test)]\nmod tests { use crate::x; }").contains("crate::x"));
}
