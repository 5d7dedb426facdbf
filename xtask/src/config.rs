//! `wasm-pack.toml`: the web bundle's build profile. wasm-pack does not read it; we do.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmPackToml {
    pub package: NpmPackage,
    pub bindgen: Bindgen,
    pub profile: BTreeMap<String, Profile>,
    pub budget: Budget,
}

/// npm metadata for `package.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NpmPackage {
    pub name: String,
    /// Defaults to `workspace.package.version` so the two cannot drift apart.
    pub version: Option<String>,
    pub description: String,
    pub license: String,
    pub repository: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// npm's `sideEffects`: files that act when imported (the script-tag loader).
    #[serde(default)]
    pub side_effects: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Bindgen {
    /// Cargo package name of the cdylib.
    #[serde(rename = "crate")]
    pub krate: String,
    /// wasm-bindgen `--target` (`web` = ES module with a default `init()` export).
    pub target: String,
    pub out_name: String,
    /// Relative to the workspace root.
    pub out_dir: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// Cargo profile name (`dev` or `release`, or a custom one from the root Cargo.toml).
    pub cargo_profile: String,
    /// Extra wasm-bindgen arguments.
    #[serde(default)]
    pub wasm_bindgen: Vec<String>,
    /// `-Zbuild-std=…` crates, used whenever std is built from source.
    #[serde(default)]
    pub build_std: Vec<String>,
    /// RUSTFLAGS that need a compiler accepting `-Z` (only with build-std).
    #[serde(default)]
    pub build_std_rustflags: Vec<String>,
    /// RUSTFLAGS for every toolchain.
    #[serde(default)]
    pub rustflags: Vec<String>,
    /// wasm-opt arguments; empty means wasm-opt is not run.
    #[serde(default)]
    pub wasm_opt: Vec<String>,
    /// Rename the imports between the wasm and its JS glue to short names.
    #[serde(default)]
    pub short_imports: bool,
    /// Point the function-table entries that no code or data refers to at one
    /// trapping function, so that wasm-opt drops what only they kept.
    #[serde(default)]
    pub prune_table: bool,
    /// After wasm-opt, lay the function bodies out smallest first, which
    /// gzip compresses better (xtask/src/order.rs).
    #[serde(default)]
    pub sort_functions: bool,
    /// Cut the cold paths listed in xtask/src/glue.rs from the JS glue.
    #[serde(default)]
    pub trim_glue: bool,
    /// Minify the JS glue with terser (npm, pinned by xtask/npm/package-lock.json).
    #[serde(default)]
    pub minify_js: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Budget {
    /// Upper bound for gzip(ringsource_bg.wasm) + gzip(ringsource.js).
    pub gzip_bytes: u64,
    /// The bound for builds on rustup's prebuilt std, which keeps the panic
    /// machinery (used only where Debian's toolchain cannot be installed).
    pub rustup_gzip_bytes: u64,
}

impl WasmPackToml {
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join("wasm-pack.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        // toml's error names the offending key and line, e.g. "unknown field `wasm-op`".
        toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))
    }

    pub fn profile(&self, name: &str) -> Result<&Profile> {
        self.profile.get(name).with_context(|| {
            format!(
                "wasm-pack.toml has no [profile.{name}] (known: {})",
                self.profile.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// `workspace.package.version` from the root Cargo.toml.
pub fn workspace_version(root: &Path) -> Result<String> {
    #[derive(Deserialize)]
    struct Manifest {
        workspace: Workspace,
    }
    #[derive(Deserialize)]
    struct Workspace {
        package: WorkspacePackage,
    }
    #[derive(Deserialize)]
    struct WorkspacePackage {
        version: String,
    }
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        toml::from_str(&text).with_context(|| format!("no workspace.package.version in {}", path.display()))?;
    Ok(manifest.workspace.package.version)
}

/// The exact version of `package` in Cargo.lock (the first one, if several).
pub fn locked_version(root: &Path, package: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Lock {
        package: Vec<LockedPackage>,
    }
    #[derive(Deserialize)]
    struct LockedPackage {
        name: String,
        version: String,
    }
    let path = root.join("Cargo.lock");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let lock: Lock = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    lock.package
        .into_iter()
        .find(|p| p.name == package)
        .map(|p| p.version)
        .with_context(|| format!("`{package}` is not in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace")
    }

    #[test]
    fn repository_config_parses() {
        let cfg = WasmPackToml::load(root()).expect("wasm-pack.toml parses");
        assert!(cfg.profile("release").is_ok());
        assert!(cfg.profile("dev").is_ok());
        assert!(cfg.budget.gzip_bytes > 0);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = toml::from_str::<Budget>("gzip-byte = 1\nrustup-gzip-bytes = 1").expect_err("typo is rejected");
        assert!(err.to_string().contains("gzip-byte"), "{err}");
    }

    #[test]
    fn wasm_bindgen_is_locked() {
        let v = locked_version(root(), "wasm-bindgen").expect("in Cargo.lock");
        assert!(v.split('.').count() == 3, "{v}");
    }
}
