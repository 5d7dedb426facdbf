//! Size work on the wasm-bindgen output that needs both halves at once: the
//! wasm module and its JS glue.
//!
//! wasm-bindgen names every import `__wbg_<name>_<16 hex digits>` under the
//! module `./<out-name>_bg.js`. Each name is written twice (in the wasm import
//! section and as a key of the glue's import object) and the hashes do not
//! compress, so together they were about 4 KB of the gzipped bundle. The
//! imports are private to the two files: the exports, the ES module's API and
//! the `.d.ts` types are untouched.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::run;

/// The folder with the JS build tools' package.json and lock file.
const NPM_DIR: &str = "xtask/npm";
const TERSER: &str = "terser/bin/terser";

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
/// shipping a module that cannot link.
pub fn shorten_imports(wasm: &Path, js: &Path, glue_module: &str) -> Result<usize> {
    let mut module = walrus::Module::from_file(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut renames: HashMap<String, String> = HashMap::new();
    for import in module.imports.iter_mut() {
        if import.module != glue_module {
            continue;
        }
        let short = short_name(renames.len());
        import.module = "a".into();
        let old = std::mem::replace(&mut import.name, short.clone());
        if renames.insert(old.clone(), short).is_some() {
            bail!("{} imports `{old}` twice", wasm.display());
        }
    }
    if renames.is_empty() {
        return Ok(0);
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
        bail!("{}: expected the import module key {module_key} once, found it {module_keys} times", js.display());
    }
    for old in renames.keys() {
        let times = found.get(old.as_str()).copied().unwrap_or(0);
        if times != 1 {
            bail!(
                "{}: expected the import `{old}` once in the glue's import object, found it {times} times",
                js.display()
            );
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
/// Together measured -227 B gzip.
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
        "every call site of passStringToWasm0 passes a realloc function",
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

/// Applies [`GLUE_CUTS`] to the glue `js`; returns how many were made.
pub fn trim_glue(js: &Path) -> Result<usize> {
    let mut text = fs::read_to_string(js).with_context(|| format!("reading {}", js.display()))?;
    for (why, from, to) in GLUE_CUTS {
        let times = text.matches(from).count();
        if times != 1 {
            bail!(
                "{}: a glue cut ({why}) expected its text once and found it {times} times; \
                 update GLUE_CUTS in xtask/src/glue.rs for this wasm-bindgen version",
                js.display()
            );
        }
        text = text.replacen(from, to, 1);
    }
    fs::write(js, text).with_context(|| format!("writing {}", js.display()))?;
    Ok(GLUE_CUTS.len())
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
    use super::short_name;

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
}
