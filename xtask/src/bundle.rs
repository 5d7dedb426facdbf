//! `cargo xtask bundle`: crates/web → the npm package in target/pkg.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::config::{WasmPackToml, workspace_version};
use crate::provision::{Tools, WASM_TARGET, WasmToolchain};
use crate::util::{human_bytes, run};

/// Files of the repository copied into the package: (from, name in the package).
const PACKAGED_FILES: &[(&str, &str)] = &[
    ("www/tag.js", "tag.js"),
    ("crates/web/README.md", "README.md"),
    ("LICENSE-MIT", "LICENSE-MIT"),
    ("LICENSE-APACHE", "LICENSE-APACHE"),
];

pub struct Bundle {
    pub dir: PathBuf,
}

/// `bundle` and `test` hold the release bundle to its size budget; `demo` and the
/// benches only warn, so an oversized bundle can still be looked at and measured.
#[derive(Clone, Copy)]
pub enum Budget {
    Enforce,
    Warn,
}

pub fn bundle(root: &Path, tools: &Tools, profile_name: &str, budget_check: Budget) -> Result<Bundle> {
    let cfg = WasmPackToml::load(root)?;
    let profile = cfg.profile(profile_name)?;
    println!("wasm toolchain: {}", tools.wasm.describe());

    run(tools.wasm.cargo(root, "build", profile).args(["-p", &cfg.bindgen.krate, "--lib"]))?;
    let profile_dir = match profile.cargo_profile.as_str() {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    let wasm = root
        .join("target/wasm")
        .join(WASM_TARGET)
        .join(profile_dir)
        .join(format!("{}.wasm", cfg.bindgen.krate.replace('-', "_")));

    // The linker's output keeps its names for this (see table.rs); what
    // wasm-bindgen reads is stripped either way.
    let (wasm, shims) = if profile.prune_table {
        let stripped = wasm.with_extension("stripped.wasm");
        let shims = crate::table::find_shims(&wasm, &stripped)?;
        let closures = shims.iter().filter(|s| matches!(s, crate::table::Shim::Closure(_))).count();
        println!("function table: {closures} closure shims, {} JSPI waker entries", shims.len() - closures);
        (stripped, Some(shims))
    } else {
        (wasm, None)
    };

    let out = root.join(&cfg.bindgen.out_dir);
    // A stale file from an older layout must not end up in the package.
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    run(Command::new(&tools.wasm_bindgen)
        .args(["--target", &cfg.bindgen.target, "--out-name", &cfg.bindgen.out_name, "--out-dir"])
        .arg(&out)
        .args(&profile.wasm_bindgen)
        .arg(&wasm))?;

    let bg = out.join(format!("{}_bg.wasm", cfg.bindgen.out_name));
    let js = out.join(format!("{}.js", cfg.bindgen.out_name));
    if profile.short_imports {
        let glue_module = format!("./{}_bg.js", cfg.bindgen.out_name);
        let renamed = crate::glue::shorten_imports(&bg, &js, &glue_module)?;
        println!("short import names: {renamed} imports renamed");
    }
    if let Some(shims) = &shims {
        let pruned = crate::table::prune(&bg, shims)?;
        println!("function table: {pruned} unreachable entries dropped");
    }
    let raw_before_opt = file_len(&bg)?;
    if !profile.wasm_opt.is_empty() {
        let tmp = bg.with_extension("opt.wasm");
        run(Command::new(&tools.wasm_opt).args(&profile.wasm_opt).arg(&bg).arg("-o").arg(&tmp))?;
        fs::rename(&tmp, &bg)?;
        println!("wasm-opt: {} → {}", human_bytes(raw_before_opt), human_bytes(file_len(&bg)?));
    }
    if profile.sort_functions {
        let count = crate::order::sort_by_size(&bg)?;
        println!("function bodies: {count} laid out smallest first");
    }

    if profile.trim_glue {
        let cuts = crate::glue::trim_glue(&js)?;
        println!("glue: {cuts} cold paths cut");
    }
    if profile.minify_js {
        let before = file_len(&js)?;
        crate::glue::minify_js(root, &js)?;
        println!("terser: {} → {}", human_bytes(before), human_bytes(file_len(&js)?));
    }

    let mut files = vec![
        format!("{}.js", cfg.bindgen.out_name),
        format!("{}.d.ts", cfg.bindgen.out_name),
        format!("{}_bg.wasm", cfg.bindgen.out_name),
        format!("{}_bg.wasm.d.ts", cfg.bindgen.out_name),
    ];
    // The script-tag loader comes from the same build, so it ships in the
    // same package; the package's README and licences come with it.
    for (from, to) in PACKAGED_FILES {
        fs::copy(root.join(from), out.join(to)).with_context(|| format!("copying {from} into the package"))?;
        files.push((*to).to_owned());
    }
    files.retain(|f| out.join(f).exists());

    let pkg = &cfg.package;
    let version = match &pkg.version {
        Some(v) => v.clone(),
        None => workspace_version(root)?,
    };
    let main = format!("{}.js", cfg.bindgen.out_name);
    let types = format!("{}.d.ts", cfg.bindgen.out_name);
    let wasm_file = format!("./{}_bg.wasm", cfg.bindgen.out_name);
    let package_json = json!({
        "name": pkg.name,
        "version": version,
        "description": pkg.description,
        "license": pkg.license,
        "repository": { "type": "git", "url": pkg.repository },
        "keywords": pkg.keywords,
        "type": "module",
        "main": main,
        "module": main,
        "types": types,
        // What an importer may reach: the module (with its types), its wasm
        // (for bundlers that want the file's URL), and the loader.
        "exports": {
            ".": { "types": format!("./{types}"), "default": format!("./{main}") },
            wasm_file.clone(): wasm_file,
            "./tag.js": "./tag.js",
            "./package.json": "./package.json",
        },
        "files": files,
        "sideEffects": if pkg.side_effects.is_empty() { json!(false) } else { json!(pkg.side_effects) },
    });
    fs::write(out.join("package.json"), serde_json::to_string_pretty(&package_json)? + "\n")?;

    // Size is what a visitor downloads: the optimised wasm plus its JS glue, gzipped.
    let mut total_raw = 0;
    let mut total_gz = 0;
    let mut exact = Vec::new();
    for file in [&bg, &js] {
        let raw = file_len(file)?;
        let gz = gzip_len(file)?;
        total_raw += raw;
        total_gz += gz;
        exact.push(gz.to_string());
        println!(
            "{:<24} {:>10} raw {:>10} gzip",
            file.file_name().unwrap_or_default().to_string_lossy(),
            human_bytes(raw),
            human_bytes(gz)
        );
    }
    let budget = match tools.wasm {
        WasmToolchain::Rustup => cfg.budget.rustup_gzip_bytes,
        WasmToolchain::Debian { .. } => cfg.budget.gzip_bytes,
    };
    println!(
        "{:<24} {:>10} raw {:>10} gzip (budget {}, profile {profile_name})",
        "total",
        human_bytes(total_raw),
        human_bytes(total_gz),
        human_bytes(budget)
    );
    // Size work compares builds a few bytes apart: the exact figures too.
    println!("gzip bytes: {total_gz} of {budget} (wasm + glue: {})", exact.join(" + "));
    // Debug bundles are for stepping through code, not shipping; only release is held to it.
    if profile_name == "release" && total_gz > budget {
        let msg = format!("bundle is {total_gz} bytes gzipped, over the {budget}-byte budget in wasm-pack.toml");
        match budget_check {
            Budget::Enforce => bail!(msg),
            Budget::Warn => println!("warning: {msg}"),
        }
    }
    println!("npm package: {}", out.display());
    Ok(Bundle { dir: out })
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?.len())
}

fn gzip_len(path: &Path) -> Result<u64> {
    let data = fs::read(path)?;
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&data)?;
    Ok(enc.finish()?.len() as u64)
}
