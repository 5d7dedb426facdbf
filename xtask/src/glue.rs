//! Size work on the wasm-bindgen output that needs both halves at once: the
//! wasm module and its JS glue.
//!
//! wasm-bindgen names every import `__wbg_<name>_<16 hex digits>` under the
//! module `./<out-name>_bg.js`. Each name is written twice (in the wasm import
//! section and as a key of the glue's import object) and the hashes do not
//! compress, so together they were about 4 KB of the gzipped bundle. The
//! imports are private to the two files: the exports, the ES module's API and
//! the `.d.ts` types are untouched.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::util::run;

/// The folder with the JS build tools' package.json and lock file.
const NPM_DIR: &str = "xtask/npm";
const TERSER: &str = "terser/bin/terser";

/// Why the glue or its wasm is not what this module expects from wasm-bindgen
/// 0.2.130. Each one fails the build rather than shipping a bundle that cannot
/// link or quietly grows; the fix is in this file (or the wasm-pack.toml
/// switch named in the message).
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    #[error(
        "{}: no import comes from the glue module `{glue_module}` (imports come from: {}); wasm-bindgen names \
         its glue module differently now, so update `glue_module` in xtask/src/bundle.rs, or set \
         `short-imports = false` in wasm-pack.toml",
        .path.display(),
        if .modules.is_empty() { "nowhere".to_owned() } else { .modules.join(", ") }
    )]
    NoGlueImports { path: PathBuf, glue_module: String, modules: Vec<String> },
    #[error(
        "{}: the import `{name}` comes from `{module}`, not from the glue module `{glue_module}`, so its \
         wasm-bindgen name would stay long; wasm-bindgen now splits its imports across modules, which \
         shorten_imports in xtask/src/glue.rs has to learn",
        .path.display()
    )]
    StrayImport { path: PathBuf, name: String, module: String, glue_module: String },
    #[error("{}: imports `{name}` twice", .path.display())]
    DuplicateImport { path: PathBuf, name: String },
    #[error(
        "{}: expected the import module key {key} once in the glue, found it {times} times; wasm-bindgen \
         writes its import object differently now, so update shorten_imports in xtask/src/glue.rs, or set \
         `short-imports = false` in wasm-pack.toml",
        .path.display()
    )]
    ModuleKey { path: PathBuf, key: String, times: usize },
    #[error(
        "{}: expected the import `{name}` once as a key (`{name}: function…` on a line of its own) in the \
         glue's import object, found it {times} times; wasm-bindgen writes its import object differently now, \
         so update shorten_imports in xtask/src/glue.rs, or set `short-imports = false` in wasm-pack.toml",
        .path.display()
    )]
    ImportKey { path: PathBuf, name: String, times: usize },
    #[error(
        "{}: a glue cut ({why}) expected its text once and found it {times} times; update GLUE_CUTS in \
         xtask/src/glue.rs for this wasm-bindgen version, or set `trim-glue = false` in wasm-pack.toml",
        .path.display()
    )]
    Cut { path: PathBuf, why: &'static str, times: usize },
    #[error(
        "{}: `{call}` passes no realloc function, so the glue cut of passStringToWasm0's branch for that case \
         would break it; drop that cut from GLUE_CUTS in xtask/src/glue.rs",
        .path.display()
    )]
    StringPassWithoutRealloc { path: PathBuf, call: String },
}

/// Short, distinct JS identifiers: a..z, A..Z, then two letters.
fn short_name(mut index: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut name = String::new();
    loop {
        name.push(char::from(LETTERS[index % LETTERS.len()]));
        index /= LETTERS.len();
        if index == 0 {
            return name;
        }
        index -= 1;
    }
}

/// Renames the imports that `wasm` takes from the glue module `glue_module`
/// (e.g. `./ringsource_bg.js`) to short names, in the wasm and in the import
/// object of the glue `js`. Returns how many were renamed.
///
/// The glue is matched line by line (`<name>: function…` keys in the import
/// object), and every import must be found exactly once, so a wasm-bindgen
/// upgrade that writes the glue differently fails the build instead of
/// shipping a module that cannot link. So does a module with no imports from
/// `glue_module`, or with a wasm-bindgen import from another module: renaming
/// nothing would leave the long names (4.2 KB gzip) in place unnoticed.
/// Nothing is written unless every check passes.
pub fn shorten_imports(wasm: &Path, js: &Path, glue_module: &str) -> Result<usize> {
    let mut module = walrus::Module::from_file(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut renames: HashMap<String, String> = HashMap::new();
    let mut order = Vec::new();
    let mut other_modules = BTreeSet::new();
    for import in module.imports.iter_mut() {
        if import.module != glue_module {
            // wasm-bindgen's own import names start so: one left long here
            // is part of the 4 KB the renaming is for, quietly missed.
            if import.name.starts_with("__wbg") || import.name.starts_with("__wbindgen") {
                return Err(GlueError::StrayImport {
                    path: wasm.to_path_buf(),
                    name: import.name.clone(),
                    module: import.module.clone(),
                    glue_module: glue_module.to_owned(),
                }
                .into());
            }
            other_modules.insert(format!("`{}`", import.module));
            continue;
        }
        let short = short_name(renames.len());
        import.module = "a".into();
        let old = std::mem::replace(&mut import.name, short.clone());
        if renames.insert(old.clone(), short).is_some() {
            return Err(GlueError::DuplicateImport { path: wasm.to_path_buf(), name: old }.into());
        }
        order.push(old);
    }
    if renames.is_empty() {
        let modules = other_modules.into_iter().collect();
        return Err(GlueError::NoGlueImports {
            path: wasm.to_path_buf(),
            glue_module: glue_module.to_owned(),
            modules,
        }
        .into());
    }

    let text = fs::read_to_string(js).with_context(|| format!("reading {}", js.display()))?;
    let module_key = format!("\"{glue_module}\":");
    let mut out = String::with_capacity(text.len());
    let mut found: HashMap<&str, usize> = HashMap::new();
    let mut module_keys = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        if let Some(rest) = body.strip_prefix(&module_key) {
            module_keys += 1;
            out.push_str(indent);
            out.push_str("a:");
            out.push_str(rest);
            continue;
        }
        let key = body.split_once(':').map(|(key, _)| key).filter(|key| renames.contains_key(*key));
        match key {
            Some(key) => {
                *found.entry(key).or_default() += 1;
                out.push_str(indent);
                out.push_str(&renames[key]);
                out.push_str(&body[key.len()..]);
            }
            None => out.push_str(line),
        }
    }
    if module_keys != 1 {
        return Err(GlueError::ModuleKey { path: js.to_path_buf(), key: module_key, times: module_keys }.into());
    }
    // In import order, so that the message names the same import on every run.
    for old in &order {
        let times = found.get(old.as_str()).copied().unwrap_or(0);
        if times != 1 {
            return Err(GlueError::ImportKey { path: js.to_path_buf(), name: old.clone(), times }.into());
        }
    }

    module.emit_wasm_file(wasm).with_context(|| format!("writing {}", wasm.display()))?;
    fs::write(js, out).with_context(|| format!("writing {}", js.display()))?;
    Ok(renames.len())
}

/// Cold paths of wasm-bindgen's glue that this package never takes, cut
/// before minifying: (why, the exact text, what replaces it). Every cut must
/// match exactly once, so a wasm-bindgen upgrade that writes the glue
/// differently fails the build here instead of shipping a half-edited file.
/// Together measured -227 B gzip at first and -225 B on 2026-12-06 (36,957 B
/// against 37,182 B for the whole bundle, the same wasm in both), which is
/// why they stay: wasm-bindgen-cli is pinned to Cargo.lock, so an upgrade
/// that breaks a cut is one deliberate change that fails here.
const GLUE_CUTS: [(&str, &str, &str); 5] = [
    (
        "the fallback for a server that sends the wasm without the application/wasm \
         type stays; only its console warning goes",
        "                if (validResponse && module.headers.get('Content-Type') !== 'application/wasm') {
                    console.warn(\"`WebAssembly.instantiateStreaming` failed because your server does not serve Wasm with `application/wasm` MIME type. Falling back to `WebAssembly.instantiate` which is slower. Original error:\\n\", e);

                } else { throw e; }",
        "                if (!validResponse || module.headers.get('Content-Type') === 'application/wasm') throw e;",
    ),
    (
        "initSync(bytes) still works; only the deprecation warning goes",
        "        } else {
            console.warn('using deprecated parameters for `initSync()`; pass a single object instead')
        }",
        "        }",
    ),
    (
        "init(url) still works; only the deprecation warning goes",
        "        } else {
            console.warn('using deprecated parameters for the initialization function; pass a single object instead')
        }",
        "        }",
    ),
    (
        "TextEncoder.encodeInto is in every browser that has AbortSignal.timeout and \
         Promise.allSettled, which the bundle needs anyway",
        "if (!('encodeInto' in cachedTextEncoder)) {
    cachedTextEncoder.encodeInto = function (arg, view) {
        const buf = cachedTextEncoder.encode(arg);
        view.set(buf);
        return {
            read: arg.length,
            written: buf.length
        };
    };
}",
        "",
    ),
    (
        "every call site of passStringToWasm0 passes a realloc function (checked before cutting)",
        "    if (realloc === undefined) {
        const buf = cachedTextEncoder.encode(arg);
        const ptr = malloc(buf.length, 1) >>> 0;
        getUint8ArrayMemory0().subarray(ptr, ptr + buf.length).set(buf);
        WASM_VECTOR_LEN = buf.length;
        return ptr;
    }
",
        "",
    ),
];

/// Applies [`GLUE_CUTS`] to the glue `js`; returns how many were made. The
/// file is left as it was if any cut fails.
pub fn trim_glue(js: &Path) -> Result<usize> {
    let text = fs::read_to_string(js).with_context(|| format!("reading {}", js.display()))?;
    let text = trim(&text, js)?;
    fs::write(js, text).with_context(|| format!("writing {}", js.display()))?;
    Ok(GLUE_CUTS.len())
}

/// [`GLUE_CUTS`] applied to the text of the glue at `path`.
fn trim(text: &str, path: &Path) -> Result<String, GlueError> {
    if let Some(call) = string_pass_without_realloc(text) {
        return Err(GlueError::StringPassWithoutRealloc { path: path.to_path_buf(), call: call.to_owned() });
    }
    let mut text = text.to_owned();
    for (why, from, to) in GLUE_CUTS {
        let times = text.matches(from).count();
        if times != 1 {
            return Err(GlueError::Cut { path: path.to_path_buf(), why, times });
        }
        text = text.replacen(from, to, 1);
    }
    Ok(text)
}

/// The first call of `passStringToWasm0` with fewer than three arguments
/// (string, malloc, realloc), as wasm-bindgen writes it when the module
/// exports no realloc function.
fn string_pass_without_realloc(text: &str) -> Option<&str> {
    const NAME: &str = "passStringToWasm0(";
    for (at, _) in text.match_indices(NAME) {
        if text[..at].ends_with("function ") {
            continue;
        }
        let args = &text[at + NAME.len()..];
        let (mut depth, mut commas) = (0usize, 0);
        let mut end = args.len();
        for (i, c) in args.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 => commas += 1,
                _ => {}
            }
        }
        if commas < 2 {
            return Some(&text[at..at + NAME.len() + end]);
        }
    }
    None
}

/// Minifies the glue with terser (pinned by xtask/npm/package-lock.json).
/// Top-level names are mangled too: the glue is an ES module, so only its
/// exports are visible outside, and terser keeps those. The
/// `@ts-self-types` comment stays so that Deno and TypeScript still find the
/// `.d.ts`.
pub fn minify_js(root: &Path, js: &Path) -> Result<()> {
    let modules = crate::npm::ci(&root.join(NPM_DIR), &[TERSER], "the JS minifier (terser)")?;
    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    let tmp = js.with_extension("min.js");
    run(Command::new(node)
        .arg(modules.join(TERSER))
        .arg(js)
        .args(["--module", "--compress", "passes=2", "--mangle", "--comments", "/@ts-self-types/", "--output"])
        .arg(&tmp))?;
    fs::rename(&tmp, js).with_context(|| format!("replacing {}", js.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use walrus::{Module, ModuleConfig, ValType};

    use super::{GLUE_CUTS, GlueError, short_name, shorten_imports, trim, trim_glue};

    #[test]
    fn short_names_are_distinct_identifiers() {
        let names: Vec<String> = (0..3000).map(short_name).collect();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names[0], "a");
        assert_eq!(names[51], "Z");
        assert_eq!(names[52], "aa");
        assert!(names.iter().all(|n| n.bytes().all(|b| b.is_ascii_alphabetic())));
    }

    const GLUE_MODULE: &str = "./ringsource_bg.js";

    /// A wasm module importing `imports` ((module, name) pairs) as functions
    /// of distinct types, so that a test can tell them apart after renaming.
    fn wasm_importing(path: &Path, imports: &[(&str, &str)]) {
        let mut module = Module::with_config(ModuleConfig::new());
        for (i, (from, name)) in imports.iter().enumerate() {
            let params = vec![ValType::I32; i];
            let ty = module.types.add(&params, &[]);
            module.add_import_func(from, name, ty);
        }
        module.emit_wasm_file(path).unwrap();
    }

    /// (module, name, parameter count) of each import, in order.
    fn imports(path: &Path) -> Vec<(String, String, usize)> {
        let module = Module::from_file(path).unwrap();
        module
            .imports
            .iter()
            .map(|import| {
                let walrus::ImportKind::Function(f) = import.kind else { panic!("not a function import") };
                let ty = module.types.get(module.funcs.get(f).ty());
                (import.module.clone(), import.name.clone(), ty.params().len())
            })
            .collect()
    }

    /// Glue shaped like wasm-bindgen 0.2.130's import object, with lines
    /// around it that mention the import names without being keys.
    const GLUE: &str = r#"const cachedTextDecoder = new TextDecoder('utf-8');
// __wbg_log_1f2e3d4c5b6a7988: a comment is not a key
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        __wbg_log_1f2e3d4c5b6a7988: function(arg0) {
            console.log(getObject(arg0));
        },
        __wbg_now_0a1b2c3d4e5f6071: function() {
            const ret = Date.now();
            return ret;
        },
        __wbindgen_object_drop_ref: function(arg0) {
            takeObject(arg0);
        },
    };
    const label = "__wbg_now_0a1b2c3d4e5f6071";
    return {
        __proto__: null,
        "./ringsource_bg.js": import0,
    };
}
export { initSync, __wbg_init as default };
"#;

    const IMPORTS: [(&str, &str); 4] = [
        (GLUE_MODULE, "__wbg_log_1f2e3d4c5b6a7988"),
        ("env", "host_clock"),
        (GLUE_MODULE, "__wbg_now_0a1b2c3d4e5f6071"),
        (GLUE_MODULE, "__wbindgen_object_drop_ref"),
    ];

    fn glue_error(error: anyhow::Error) -> GlueError {
        match error.downcast::<GlueError>() {
            Ok(error) => error,
            Err(other) => panic!("expected a GlueError, got: {other:#}"),
        }
    }

    #[test]
    fn imports_are_renamed_alike_in_the_wasm_and_the_glue() {
        let dir = tempfile::tempdir().unwrap();
        let (wasm, js) = (dir.path().join("bg.wasm"), dir.path().join("glue.js"));
        wasm_importing(&wasm, &IMPORTS);
        fs::write(&js, GLUE).unwrap();

        assert_eq!(shorten_imports(&wasm, &js, GLUE_MODULE).unwrap(), 3);

        let after = imports(&wasm);
        let expected = [("a", "a", 0), ("env", "host_clock", 1), ("a", "b", 2), ("a", "c", 3)];
        assert_eq!(after, expected.map(|(m, n, p)| (m.to_owned(), n.to_owned(), p)));
        // Each renamed key is the same import (the same function type, by
        // position) as in the wasm; every other line is as it was.
        let glue = fs::read_to_string(&js).unwrap();
        let expected_glue = GLUE
            .replace("        __wbg_log_1f2e3d4c5b6a7988: function", "        a: function")
            .replace("        __wbg_now_0a1b2c3d4e5f6071: function", "        b: function")
            .replace("        __wbindgen_object_drop_ref: function", "        c: function")
            .replace(r#"        "./ringsource_bg.js": import0,"#, "        a: import0,");
        assert_eq!(glue, expected_glue);
        let changed = GLUE.lines().zip(glue.lines()).filter(|(before, after)| before != after).count();
        assert_eq!(changed, 4);
    }

    #[test]
    fn a_wasm_without_glue_imports_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (wasm, js) = (dir.path().join("bg.wasm"), dir.path().join("glue.js"));
        wasm_importing(&wasm, &[("env", "host_clock"), ("wbg", "log")]);
        fs::write(&js, GLUE).unwrap();
        let error = glue_error(shorten_imports(&wasm, &js, GLUE_MODULE).unwrap_err());
        match &error {
            GlueError::NoGlueImports { modules, .. } => assert_eq!(modules, &["`env`", "`wbg`"]),
            other => panic!("expected NoGlueImports, got: {other}"),
        }
        assert!(error.to_string().contains("short-imports = false"), "{error}");
        assert_eq!(fs::read_to_string(&js).unwrap(), GLUE);
    }

    #[test]
    fn a_wasm_bindgen_import_from_another_module_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (wasm, js) = (dir.path().join("bg.wasm"), dir.path().join("glue.js"));
        wasm_importing(&wasm, &[IMPORTS[0], ("wbg", "__wbg_now_0a1b2c3d4e5f6071")]);
        fs::write(&js, GLUE).unwrap();
        let error = glue_error(shorten_imports(&wasm, &js, GLUE_MODULE).unwrap_err());
        assert!(
            matches!(&error, GlueError::StrayImport { name, module, .. }
                if name == "__wbg_now_0a1b2c3d4e5f6071" && module == "wbg"),
            "{error}"
        );
    }

    #[test]
    fn an_import_missing_from_the_glue_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (wasm, js) = (dir.path().join("bg.wasm"), dir.path().join("glue.js"));
        wasm_importing(&wasm, &[IMPORTS[0], (GLUE_MODULE, "__wbg_fetch_99aa88bb77cc66dd")]);
        fs::write(&js, GLUE).unwrap();
        let before = fs::read(&wasm).unwrap();
        let error = glue_error(shorten_imports(&wasm, &js, GLUE_MODULE).unwrap_err());
        assert!(
            matches!(&error, GlueError::ImportKey { name, times: 0, .. } if name == "__wbg_fetch_99aa88bb77cc66dd"),
            "{error}"
        );
        // Neither half is written: a renamed wasm beside the old glue could not link.
        assert_eq!(fs::read(&wasm).unwrap(), before);
        assert_eq!(fs::read_to_string(&js).unwrap(), GLUE);
    }

    #[test]
    fn an_import_object_written_differently_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (wasm, js) = (dir.path().join("bg.wasm"), dir.path().join("glue.js"));
        wasm_importing(&wasm, &IMPORTS);
        // How older wasm-bindgen versions filled the import object.
        let older = GLUE.replace(r#""./ringsource_bg.js": import0,"#, "wbg: import0,");
        fs::write(&js, older).unwrap();
        let error = glue_error(shorten_imports(&wasm, &js, GLUE_MODULE).unwrap_err());
        assert!(matches!(&error, GlueError::ModuleKey { times: 0, .. }), "{error}");
    }

    /// Glue around the cut texts, written here, with `texts` (each cut's text
    /// or its replacement) where wasm-bindgen writes them.
    fn glue_around([load, init_sync, init, encode_into, realloc]: [&str; 5]) -> String {
        format!(
            r#"let WASM_VECTOR_LEN = 0;
const cachedTextEncoder = new TextEncoder();

{encode_into}

function passStringToWasm0(arg, malloc, realloc) {{
{realloc}
    let len = arg.length;
    let ptr = malloc(len, 1) >>> 0;
    WASM_VECTOR_LEN = len;
    return ptr;
}}

export function classify(page_url) {{
    const ptr0 = passStringToWasm0(page_url, wasm.__wbindgen_export, wasm.__wbindgen_export2);
    return wasm.classify(ptr0, WASM_VECTOR_LEN);
}}

async function __wbg_load(module, imports) {{
    if (typeof Response === 'function' && module instanceof Response) {{
        if (typeof WebAssembly.instantiateStreaming === 'function') {{
            try {{
                return await WebAssembly.instantiateStreaming(module, imports);
            }} catch (e) {{
                const validResponse = module.ok && expectedResponseType(module.type);

{load}
            }}
        }}
    }}
}}

function initSync(module) {{
    if (module !== undefined) {{
        if (Object.getPrototypeOf(module) === Object.prototype) {{
            ({{module}} = module)
{init_sync}
    }}
}}

async function __wbg_init(module_or_path) {{
    if (module_or_path !== undefined) {{
        if (Object.getPrototypeOf(module_or_path) === Object.prototype) {{
            ({{module_or_path}} = module_or_path)
{init}
    }}
}}
"#
        )
    }

    #[test]
    fn each_glue_cut_replaces_its_text_and_nothing_else() {
        let glue = glue_around(GLUE_CUTS.map(|(_, from, _)| from));
        let trimmed = trim(&glue, Path::new("glue.js")).unwrap();
        assert_eq!(trimmed, glue_around(GLUE_CUTS.map(|(_, _, to)| to)));
        // What the reasons in GLUE_CUTS promise is gone.
        for gone in ["console.warn", "realloc === undefined", "'encodeInto' in"] {
            assert!(glue.contains(gone) && !trimmed.contains(gone), "{gone}");
        }
        // What they promise stays: the MIME fallback still rethrows.
        assert!(
            trimmed
                .contains("if (!validResponse || module.headers.get('Content-Type') === 'application/wasm') throw e;")
        );
    }

    #[test]
    fn a_glue_cut_whose_text_is_gone_or_doubled_fails_the_build() {
        for (i, (why, from, _)) in GLUE_CUTS.iter().enumerate() {
            let mut texts = GLUE_CUTS.map(|(_, from, _)| from.to_owned());
            // An upgrade that changes the text by one character.
            let mid = from.len() / 2;
            texts[i] = format!("{}~{}", &from[..mid], &from[mid..]);
            let glue = glue_around(texts.each_ref().map(String::as_str));
            match trim(&glue, Path::new("glue.js")).unwrap_err() {
                GlueError::Cut { why: named, times: 0, .. } => assert_eq!(named, *why),
                other => panic!("cut {i}: expected a missing cut, got: {other}"),
            }

            let mut texts = GLUE_CUTS.map(|(_, from, _)| from.to_owned());
            texts[i] = format!("{from}\n{from}");
            let glue = glue_around(texts.each_ref().map(String::as_str));
            match trim(&glue, Path::new("glue.js")).unwrap_err() {
                GlueError::Cut { why: named, times: 2, .. } => assert_eq!(named, *why),
                other => panic!("cut {i}: expected a doubled cut, got: {other}"),
            }
        }
    }

    #[test]
    fn a_string_passed_without_realloc_fails_the_build() {
        let glue = glue_around(GLUE_CUTS.map(|(_, from, _)| from)).replace(
            "passStringToWasm0(page_url, wasm.__wbindgen_export, wasm.__wbindgen_export2)",
            "passStringToWasm0(page_url, wasm.__wbindgen_malloc)",
        );
        match trim(&glue, Path::new("glue.js")).unwrap_err() {
            GlueError::StringPassWithoutRealloc { call, .. } => {
                assert_eq!(call, "passStringToWasm0(page_url, wasm.__wbindgen_malloc)");
            }
            other => panic!("expected StringPassWithoutRealloc, got: {other}"),
        }
        // Arguments with commas of their own are one argument each.
        let nested = glue_around(GLUE_CUTS.map(|(_, from, _)| from)).replace(
            "passStringToWasm0(page_url, wasm.__wbindgen_export, wasm.__wbindgen_export2)",
            "passStringToWasm0(f(a, b), wasm.__wbindgen_export, wasm.__wbindgen_export2)",
        );
        assert!(trim(&nested, Path::new("glue.js")).is_ok());
    }

    #[test]
    fn trim_glue_leaves_the_file_as_it_was_when_a_cut_fails() {
        let dir = tempfile::tempdir().unwrap();
        let js = dir.path().join("glue.js");
        let mut texts = GLUE_CUTS.map(|(_, from, _)| from);
        texts[4] = "";
        let glue = glue_around(texts);
        fs::write(&js, &glue).unwrap();
        let error = glue_error(trim_glue(&js).unwrap_err());
        assert!(error.to_string().contains("update GLUE_CUTS in xtask/src/glue.rs"), "{error}");
        assert_eq!(fs::read_to_string(&js).unwrap(), glue);

        fs::write(&js, glue_around(GLUE_CUTS.map(|(_, from, _)| from))).unwrap();
        assert_eq!(trim_glue(&js).unwrap(), GLUE_CUTS.len());
        assert_eq!(fs::read_to_string(&js).unwrap(), glue_around(GLUE_CUTS.map(|(_, _, to)| to)));
    }
}
