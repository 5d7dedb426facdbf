//! Drops the function-table entries of wasm-bindgen's unused closure shims
//! (and of js-sys's JSPI waker, see [`Shim::Jspi`]).
//!
//! wasm-bindgen learns each closure type's invoke shim from a describe
//! function that takes the shim's address, and taking an address puts the
//! function in the table. wasm-bindgen runs every import's describe function,
//! js-sys's unused ones included, exports the shims of the closures that are
//! used (the glue calls them by that export) and deletes the describe
//! functions. The table entries stay, and with them the unused shims and all
//! they call, although nothing can reach them any more (0.2.130: 44 shims for
//! js-sys callback types, measured 833 B of the gzipped bundle). wasm-opt
//! cannot drop them: it does not know which constants are table indices.
//!
//! [`find_shims`] notes the table slots of the shims by their symbol names in
//! the linker's output, then strips the names and the custom sections
//! that `strip = true` drops (names change wasm-bindgen's output: it names exports
//! after them, and reads `target_features` to pick a multi-value ABI that
//! measured 330 B larger). After wasm-bindgen, [`prune`] points each noted
//! slot whose shim was not exported at one function that traps; the other
//! entries keep their indices, and wasm-opt drops the code only the table held.
//!
//! [`prune`] also drops entries whose index no code or data holds, which by
//! themselves are unreachable too: a table index reaches `call_indirect` only
//! as a value the module holds, an `i32.const` or `i64.const` in code, a
//! constant global, or bytes of a data segment (vtables, statics), read here
//! at every byte offset. Before wasm-opt every function pointer is a whole
//! relocated constant, never folded into arithmetic. A constant that only
//! happens to equal an index keeps its entry: the check errs towards keeping.
//! Nothing may be dropped when JS can reach the table (exported or imported).
//!
//! Each of these steps fails the build, with what it expected, where the
//! assumption it rests on stops holding (a wasm-bindgen or js-sys upgrade that
//! renames the shims, moves the waker, exports the table or renumbers it),
//! instead of dropping nothing and letting the bundle grow unnoticed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use walrus::ir::{Const, Value, Visitor, dfs_in_order};
use walrus::{
    ConstExpr, ElementItems, ElementKind, ExportItem, FunctionBuilder, FunctionId, ImportKind, Module, TableId,
};

/// How wasm-bindgen 0.2.130 names a closure type's invoke shim (demangled,
/// without crate hashes).
const CLOSURE_SHIM: &str = "wasm_bindgen::convert::closures::_::invoke::<";
/// Where js-sys 0.3.107 keeps the JSPI task waker whose vtable is in the table.
const JSPI_WAKER: &str = "js_sys::futures::jspi::";
/// js-sys's export that polls a JSPI task, the only way to the waker.
const JSPI_POLL_EXPORT: &str = "__wbg_jspi_task_poll";

/// A table entry that wasm-bindgen may leave unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shim {
    /// A closure type's invoke shim: unreachable unless wasm-bindgen exported it.
    Closure(u32),
    /// js-sys's JSPI task machinery (its waker's vtable functions): reachable
    /// only through the `__wbg_jspi_task_poll` export, which wasm-bindgen
    /// deletes from modules without JSPI exports.
    Jspi(u32),
}

impl Shim {
    fn index(self) -> u32 {
        match self {
            Shim::Closure(index) | Shim::Jspi(index) => index,
        }
    }
}

/// Why the table cannot be pruned as this module assumes. Each one means a
/// toolchain upgrade changed what wasm-bindgen or js-sys write, so the fix is
/// here (or `prune-table = false` in wasm-pack.toml), not in the bundle's code.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(
        "{}: none of the {entries} functions in the function table has a name; the closure shims are found \
         by the symbol names the linker writes, so the cargo profile must keep them \
         (`strip = \"debuginfo\"`, not `strip = true`, in [profile.wasm-release] of Cargo.toml)",
        .path.display()
    )]
    NoNames { path: PathBuf, entries: usize },
    #[error(
        "{}: none of the {entries} functions in the function table is named `{CLOSURE_SHIM}…>`, as wasm-bindgen \
         0.2.130 names the closure shims it leaves there for every js-sys callback type; a wasm-bindgen upgrade \
         probably renamed them. List the table's functions (`wasm-dis {} | grep '(elem'`, names demangled by \
         rustc-demangle) and update CLOSURE_SHIM in xtask/src/table.rs, or set `prune-table = false` in \
         wasm-pack.toml and accept a bigger bundle.{}",
        .path.display(),
        .path.display(),
        hint(.like)
    )]
    NoClosureShims { path: PathBuf, entries: usize, like: Vec<String> },
    #[error(
        "{}: js-sys's `{JSPI_POLL_EXPORT}` export is there, but none of the functions in the function table is \
         named `{JSPI_WAKER}…` (the JSPI task waker's vtable, which js-sys 0.3.107 puts there); a js-sys upgrade \
         probably moved the waker. Find its functions in the table (`wasm-dis {} | grep '(elem'`) and update \
         JSPI_WAKER in xtask/src/table.rs, or set `prune-table = false` in wasm-pack.toml.",
        .path.display(),
        .path.display()
    )]
    NoJspiWaker { path: PathBuf },
    #[error(
        "{}: wasm-bindgen's output {how} its function table as `{name}`, so JS can call any entry by its index \
         and none may be dropped. The glue reaches it as `wasm.{name}` when it calls into the table (a closure \
         or abort handler); if the bundle needs that, set `prune-table = false` in wasm-pack.toml, otherwise \
         find the wasm-bindgen feature or flag that made it {how_short} the table",
        .path.display(),
        how_short = if *.how == "exports" { "export" } else { "import" }
    )]
    ReachableFromJs { path: PathBuf, how: &'static str, name: String },
    #[error(
        "{}: the linker's output had {what} at function-table index {index}, but wasm-bindgen's output has no \
         entry there: wasm-bindgen renumbered the table, so the slots noted before it ran no longer apply; \
         xtask/src/table.rs has to find the shims another way",
        .path.display(),
        what = match .shim { Shim::Closure(_) => "a closure shim", Shim::Jspi(_) => "a JSPI waker function" },
        index = .shim.index()
    )]
    ShimSlotMissing { path: PathBuf, shim: Shim },
}

fn hint(like: &[String]) -> String {
    if like.is_empty() { String::new() } else { format!(" Table functions named like a shim: {}.", like.join("; ")) }
}

/// Reads the linker's output `linked` (with its symbol names) and writes it
/// to `stripped` without the names and the custom sections that `strip = true`
/// drops. Returns the table entries that may be left unreachable; finding no
/// closure shims, or js-sys's JSPI export without its waker, is an error.
pub fn find_shims(linked: &Path, stripped: &Path) -> Result<Vec<Shim>> {
    let mut config = walrus::ModuleConfig::new();
    config.generate_name_section(false).generate_producers_section(false);
    let mut module = config.parse_file(linked).with_context(|| format!("reading {}", linked.display()))?;
    let mut shims = Vec::new();
    let (mut entries, mut named) = (0, 0);
    // Names that look like a shim, to show when none matches exactly.
    let mut like = Vec::new();
    for_each_entry(&module, |index, function| {
        entries += 1;
        let Some(name) = module.funcs.get(function).name.as_deref() else { return };
        named += 1;
        // `{:#}`: the path without crate hashes.
        let name = format!("{:#}", rustc_demangle::demangle(name));
        if name.starts_with(CLOSURE_SHIM) {
            shims.push(Shim::Closure(index));
        } else if name.starts_with(JSPI_WAKER) {
            shims.push(Shim::Jspi(index));
        } else if name.contains("invoke") && like.len() < 3 {
            like.push(name);
        }
    })?;
    let path = linked.to_path_buf();
    if named == 0 {
        return Err(TableError::NoNames { path, entries }.into());
    }
    if !shims.iter().any(|s| matches!(s, Shim::Closure(_))) {
        return Err(TableError::NoClosureShims { path, entries, like }.into());
    }
    let jspi_export = module.exports.iter().any(|e| e.name == JSPI_POLL_EXPORT);
    if jspi_export && !shims.iter().any(|s| matches!(s, Shim::Jspi(_))) {
        return Err(TableError::NoJspiWaker { path }.into());
    }
    for section in ["target_features", "producers"] {
        module.customs.remove_raw(section);
    }
    module.emit_wasm_file(stripped).with_context(|| format!("writing {}", stripped.display()))?;
    Ok(shims)
}

/// Points the unreachable entries of wasm-bindgen's output `wasm` at one
/// trapping function: the slots in `shims` whose function is not exported,
/// and those whose index the module holds nowhere. Returns how many. A
/// function table that JS can reach, or a noted slot that is not in the
/// table, is an error.
pub fn prune(wasm: &Path, shims: &[Shim]) -> Result<usize> {
    let mut module = Module::from_file(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    reachable_from_js(&module).map_err(|(how, name)| TableError::ReachableFromJs {
        path: wasm.to_path_buf(),
        how,
        name,
    })?;
    let exported: HashSet<FunctionId> = module
        .exports
        .iter()
        .filter_map(|e| match e.item {
            ExportItem::Function(f) => Some(f),
            _ => None,
        })
        .collect();

    let jspi = module.exports.iter().any(|e| e.name == JSPI_POLL_EXPORT);

    let mut constants = Constants::default();
    for (_, function) in module.funcs.iter_local() {
        dfs_in_order(&mut constants, function, function.entry_block());
    }
    for global in module.globals.iter() {
        if let walrus::GlobalKind::Local(ConstExpr::Value(value)) = &global.kind {
            constants.value(value);
        }
    }
    let data: Vec<&[u8]> = module.data.iter().map(|d| d.value.as_slice()).collect();
    let in_data = |index: u32| {
        let word = index.to_le_bytes();
        // Whole words at any offset, and the low bytes of one at a segment's
        // end (the linker leaves trailing zeroes out of a segment).
        data.iter().any(|bytes| {
            bytes.windows(4).any(|w| w == word)
                || (1..4).any(|n| word[n..].iter().all(|&b| b == 0) && bytes.ends_with(&word[..n]))
        })
    };

    let mut unreachable = Vec::new();
    let mut slots = HashSet::new();
    for_each_entry(&module, |index, function| {
        slots.insert(index);
        let unused_shim = shims.iter().any(|shim| match *shim {
            Shim::Closure(at) => at == index && !exported.contains(&function),
            Shim::Jspi(at) => at == index && !jspi,
        });
        let unheld = !constants.values.contains(&u64::from(index)) && !in_data(index);
        if unused_shim || unheld {
            unreachable.push(index);
        }
    })?;
    if let Some(&shim) = shims.iter().find(|s| !slots.contains(&s.index())) {
        return Err(TableError::ShimSlotMissing { path: wasm.to_path_buf(), shim }.into());
    }
    if unreachable.is_empty() {
        return Ok(0);
    }
    let mut trap = FunctionBuilder::new(&mut module.types, &[], &[]);
    trap.func_body().unreachable();
    let trap = trap.finish(Vec::new(), &mut module.funcs);
    let ids: Vec<_> = module.elements.iter().map(|e| e.id()).collect();
    for id in ids {
        let element = module.elements.get_mut(id);
        let (
            ElementKind::Active { offset: ConstExpr::Value(Value::I32(base)), .. },
            ElementItems::Functions(functions),
        ) = (&element.kind, &mut element.items)
        else {
            continue;
        };
        for (at, function) in functions.iter_mut().enumerate() {
            if unreachable.contains(&(*base as u32 + at as u32)) {
                *function = trap;
            }
        }
    }
    module.emit_wasm_file(wasm).with_context(|| format!("writing {}", wasm.display()))?;
    Ok(unreachable.len())
}

/// Whether JS can reach a table that holds functions: `Err((how, name))` if
/// one is exported or imported. Other tables (wasm-bindgen's externref table
/// for JS values) do not matter here.
fn reachable_from_js(module: &Module) -> Result<(), (&'static str, String)> {
    let function_tables: HashSet<TableId> = module
        .elements
        .iter()
        .filter_map(|e| match e.kind {
            ElementKind::Active { table, .. } => Some(table),
            _ => None,
        })
        .collect();
    for export in module.exports.iter() {
        if let ExportItem::Table(table) = export.item
            && function_tables.contains(&table)
        {
            return Err(("exports", export.name.clone()));
        }
    }
    for import in module.imports.iter() {
        if let ImportKind::Table(table) = import.kind
            && function_tables.contains(&table)
        {
            return Err(("imports", format!("{}.{}", import.module, import.name)));
        }
    }
    Ok(())
}

/// Calls `entry(index, function)` for each entry of the function table.
fn for_each_entry(module: &Module, mut entry: impl FnMut(u32, FunctionId)) -> Result<()> {
    for element in module.elements.iter() {
        let ElementKind::Active { offset, .. } = &element.kind else { continue };
        let ConstExpr::Value(Value::I32(base)) = offset else {
            bail!("a table segment at a non-constant offset");
        };
        let ElementItems::Functions(functions) = &element.items else {
            bail!("a table segment of expressions (expected the linker's function list)");
        };
        for (at, &function) in functions.iter().enumerate() {
            entry(*base as u32 + at as u32, function);
        }
    }
    Ok(())
}

/// Every integer constant in the code, as the table index it may be.
#[derive(Default)]
struct Constants {
    values: HashSet<u64>,
}

impl Constants {
    fn value(&mut self, value: &Value) {
        match *value {
            Value::I32(v) => self.values.insert(u64::from(v as u32)),
            Value::I64(v) => self.values.insert(v as u64),
            _ => false,
        };
    }
}

impl Visitor<'_> for Constants {
    fn visit_const(&mut self, c: &Const) {
        self.value(&c.value);
    }
}

#[cfg(test)]
mod tests {
    //! Fixture modules shaped like the linker's output: a function table from
    //! index 1, functions named as rustc 1.96 mangles wasm-bindgen's shims and
    //! js-sys's waker (names taken from a real build), and table indices held
    //! in each way `prune` looks for them.

    use std::collections::BTreeMap;
    use std::path::Path;

    use walrus::ir::{Instr, Value};
    use walrus::{
        ConstExpr, DataKind, ElementItems, ElementKind, FunctionBuilder, FunctionId, FunctionKind, Module,
        ModuleConfig, RawCustomSection, RefType, TableId, ValType,
    };

    use super::{Shim, TableError, find_shims, for_each_entry, prune};

    /// `wasm_bindgen::convert::closures::_::invoke::<(), true>`.
    const EXPORTED_SHIM: &str =
        "_RINvNvNtNtCs190c3n1gCIu_12wasm_bindgen7convert8closuress0_1__6invokeuKb1_ECs4XIlLoX7ON_14ringsource_web";
    /// `wasm_bindgen::convert::closures::_::invoke::<JsValue, JsValue, true>`.
    const UNUSED_SHIM: &str = "_RINvNvNtNtCs190c3n1gCIu_12wasm_bindgen7convert8closuress2_1__6invokeNtB8_7JsValueB14_Kb1_ECs9W6AajRkfxD_6js_sys";
    /// `js_sys::futures::jspi::task_waker::raw_clone`.
    const WAKER: &str = "_RNvNvNtNtCs9W6AajRkfxD_6js_sys7futures4jspi10task_waker9raw_clone";
    const SHIMS: [&str; 2] = [EXPORTED_SHIM, UNUSED_SHIM];
    /// `ringsource_web::browser::WINDOW::init`.
    const PLAIN: &str = "_RNvNvNtCs4XIlLoX7ON_14ringsource_web7browser6WINDOW4init";
    /// A shim after a hypothetical rename: `wasm_bindgen::closure::invoke` (legacy mangling).
    const RENAMED_SHIM: &str = "_ZN12wasm_bindgen7closure6invoke17h0123456789abcdefE";

    /// Marks each fixture function's body, far above any table index, so
    /// that a test can tell which function an entry points at after the
    /// names are stripped.
    const MARK: i32 = 1000;

    /// What a table slot points at after pruning.
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    enum Entry {
        /// The fixture function first placed at this slot.
        Kept(u32),
        Trap,
    }

    struct Fixture {
        module: Module,
        table: TableId,
    }

    impl Fixture {
        fn new() -> Self {
            let mut module = Module::with_config(ModuleConfig::new());
            let table = module.tables.add_local(false, 16, Some(16), RefType::FUNCREF);
            module.exports.add("memory", module.memories.add_local(false, false, 17, None, None));
            Fixture { module, table }
        }

        /// A function for table slot `slot`, named `name` (no name if empty).
        fn function(&mut self, slot: u32, name: &str) -> FunctionId {
            let mut builder = FunctionBuilder::new(&mut self.module.types, &[], &[]);
            if !name.is_empty() {
                builder.name(name.to_owned());
            }
            builder.func_body().i32_const(MARK + slot as i32).drop();
            builder.finish(Vec::new(), &mut self.module.funcs)
        }

        /// The table from index 1, as the linker writes it.
        fn table_entries(&mut self, functions: Vec<FunctionId>) {
            let offset = ConstExpr::Value(Value::I32(1));
            let id = self
                .module
                .elements
                .add(ElementKind::Active { table: self.table, offset }, ElementItems::Functions(functions));
            self.module.tables.get_mut(self.table).elem_segments.insert(id);
        }

        fn data(&mut self, bytes: &[u8]) {
            let memory = self.module.memories.iter().next().unwrap().id();
            let offset = ConstExpr::Value(Value::I32(1024));
            self.module.data.add(DataKind::Active { memory, offset }, bytes.to_vec());
        }

        fn write(mut self, path: &Path) {
            self.module.emit_wasm_file(path).unwrap();
        }
    }

    /// The linker's output with a shim of each kind and the ways an index
    /// can be held. Slots: 1 an exported shim, 2 a shim only its (deleted)
    /// describe function held, 3..7 functions held by an `i32.const`, an
    /// `i64.const`, a constant global, a word inside a data segment and the
    /// low byte at a segment's end, 8 one held nowhere, 9 the JSPI waker,
    /// held by its vtable in data.
    fn linked([exported_name, unused_name]: [&str; 2], waker_name: &str, plain_name: &str) -> Fixture {
        let mut f = Fixture::new();
        let exported_shim = f.function(1, exported_name);
        let mut functions = vec![exported_shim, f.function(2, unused_name)];
        for slot in 3..=8 {
            functions.push(f.function(slot, plain_name));
        }
        functions.push(f.function(9, waker_name));
        f.table_entries(functions);
        f.module.exports.add("closure_invoke", exported_shim);
        let poll = f.function(0, plain_name);
        f.module.exports.add("__wbg_jspi_task_poll", poll);

        let mut user = FunctionBuilder::new(&mut f.module.types, &[], &[]);
        user.func_body().i32_const(1).drop().i32_const(2).drop().i32_const(3).drop().i64_const(4).drop();
        let user = user.finish(Vec::new(), &mut f.module.funcs);
        f.module.exports.add("user", user);
        f.module.globals.add_local(ValType::I32, false, false, ConstExpr::Value(Value::I32(5)));
        f.data(&[0xaa, 6, 0, 0, 0, 9, 0, 0, 0, 0xbb]);
        f.data(&[0x11, 0x22, 7]);
        f.module.customs.add(RawCustomSection { name: "target_features".into(), data: vec![0] });
        f
    }

    /// What each table slot points at in the module at `path`.
    fn entries(path: &Path) -> BTreeMap<u32, Entry> {
        let module = Module::from_file(path).unwrap();
        let mut entries = BTreeMap::new();
        for_each_entry(&module, |index, function| {
            let FunctionKind::Local(local) = &module.funcs.get(function).kind else { panic!("an imported entry") };
            let entry = match local.block(local.entry_block()).instrs.as_slice() {
                [(Instr::Unreachable(_), _)] => Entry::Trap,
                [(Instr::Const(c), _), ..] => match c.value {
                    Value::I32(mark) => Entry::Kept((mark - MARK) as u32),
                    _ => panic!("not a fixture function"),
                },
                _ => panic!("not a fixture function"),
            };
            entries.insert(index, entry);
        })
        .unwrap();
        entries
    }

    /// Stands in for wasm-bindgen between `find_shims` and `prune`: it
    /// deletes js-sys's JSPI export unless the module has JSPI exports.
    fn bindgen(stripped: &Path, out: &Path, keep_jspi: bool, edit: impl FnOnce(&mut Module)) {
        let mut module = Module::from_file(stripped).unwrap();
        if !keep_jspi {
            let id = module.exports.iter().find(|e| e.name == "__wbg_jspi_task_poll").unwrap().id();
            module.exports.delete(id);
        }
        edit(&mut module);
        module.emit_wasm_file(out).unwrap();
    }

    fn table_error(error: anyhow::Error) -> TableError {
        match error.downcast::<TableError>() {
            Ok(error) => error,
            Err(other) => panic!("expected a TableError, got: {other:#}"),
        }
    }

    fn expected(trapped: &[u32]) -> BTreeMap<u32, Entry> {
        (1..=9).map(|slot| (slot, if trapped.contains(&slot) { Entry::Trap } else { Entry::Kept(slot) })).collect()
    }

    #[test]
    fn unused_shims_and_unheld_entries_point_at_the_trap() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped, bg) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"), dir.path().join("bg.wasm"));
        linked(SHIMS, WAKER, PLAIN).write(&raw);

        let shims = find_shims(&raw, &stripped).unwrap();
        assert_eq!(shims, [Shim::Closure(1), Shim::Closure(2), Shim::Jspi(9)]);
        // The names and `target_features` are gone from what wasm-bindgen reads.
        let module = Module::from_file(&stripped).unwrap();
        assert!(module.funcs.iter().all(|f| f.name.is_none()));
        assert!(module.customs.iter().all(|(_, c)| c.name() != "target_features"));
        assert_eq!(entries(&stripped), expected(&[]));

        bindgen(&stripped, &bg, false, |_| {});
        assert_eq!(prune(&bg, &shims).unwrap(), 3);
        assert_eq!(entries(&bg), expected(&[2, 8, 9]));
        // One trap for all, taking and returning nothing.
        let module = Module::from_file(&bg).unwrap();
        let mut traps = std::collections::HashSet::new();
        for_each_entry(&module, |index, function| {
            if [2, 8, 9].contains(&index) {
                traps.insert(function);
            }
        })
        .unwrap();
        assert_eq!(traps.len(), 1);
        let ty = module.types.get(module.funcs.get(*traps.iter().next().unwrap()).ty());
        assert!(ty.params().is_empty() && ty.results().is_empty());
    }

    #[test]
    fn the_jspi_waker_stays_while_its_export_does() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped, bg) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"), dir.path().join("bg.wasm"));
        linked(SHIMS, WAKER, PLAIN).write(&raw);
        let shims = find_shims(&raw, &stripped).unwrap();
        bindgen(&stripped, &bg, true, |_| {});
        assert_eq!(prune(&bg, &shims).unwrap(), 2);
        assert_eq!(entries(&bg), expected(&[2, 8]));
    }

    #[test]
    fn an_exported_externref_table_does_not_stop_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped, bg) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"), dir.path().join("bg.wasm"));
        linked(SHIMS, WAKER, PLAIN).write(&raw);
        let shims = find_shims(&raw, &stripped).unwrap();
        bindgen(&stripped, &bg, false, |module| {
            let externrefs = module.tables.add_local(false, 128, None, RefType::EXTERNREF);
            module.exports.add("__wbindgen_externrefs", externrefs);
        });
        assert_eq!(prune(&bg, &shims).unwrap(), 3);
        assert_eq!(entries(&bg), expected(&[2, 8, 9]));
    }

    #[test]
    fn renamed_shims_fail_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"));
        linked([RENAMED_SHIM; 2], WAKER, PLAIN).write(&raw);
        let error = find_shims(&raw, &stripped).unwrap_err();
        let message = format!("{error:#}");
        match table_error(error) {
            TableError::NoClosureShims { entries, like, .. } => {
                assert_eq!(entries, 9);
                assert_eq!(like, ["wasm_bindgen::closure::invoke"; 2]);
            }
            other => panic!("expected NoClosureShims, got: {other}"),
        }
        assert!(message.contains("wasm_bindgen::convert::closures::_::invoke::<"), "{message}");
        assert!(message.contains("CLOSURE_SHIM in xtask/src/table.rs"), "{message}");
        assert!(!stripped.exists(), "nothing is written for wasm-bindgen to read");
    }

    #[test]
    fn a_module_without_names_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"));
        linked(["", ""], "", "").write(&raw);
        let error = table_error(find_shims(&raw, &stripped).unwrap_err());
        assert!(matches!(error, TableError::NoNames { entries: 9, .. }), "{error}");
        assert!(error.to_string().contains("strip = \"debuginfo\""), "{error}");
    }

    #[test]
    fn a_moved_jspi_waker_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"));
        linked(SHIMS, PLAIN, PLAIN).write(&raw);
        let error = table_error(find_shims(&raw, &stripped).unwrap_err());
        assert!(matches!(error, TableError::NoJspiWaker { .. }), "{error}");
        assert!(error.to_string().contains("JSPI_WAKER in xtask/src/table.rs"), "{error}");
    }

    #[test]
    fn a_function_table_js_can_reach_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped, bg) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"), dir.path().join("bg.wasm"));
        linked(SHIMS, WAKER, PLAIN).write(&raw);
        let shims = find_shims(&raw, &stripped).unwrap();
        bindgen(&stripped, &bg, false, |module| {
            let table = module.tables.iter().next().unwrap().id();
            module.exports.add("__wbindgen_export_4", table);
        });
        let before = std::fs::read(&bg).unwrap();
        let error = table_error(prune(&bg, &shims).unwrap_err());
        match &error {
            TableError::ReachableFromJs { how, name, .. } => {
                assert_eq!((*how, name.as_str()), ("exports", "__wbindgen_export_4"));
            }
            other => panic!("expected ReachableFromJs, got: {other}"),
        }
        assert!(error.to_string().contains("prune-table = false"), "{error}");
        assert_eq!(std::fs::read(&bg).unwrap(), before, "the module is left as it was");
    }

    #[test]
    fn an_imported_function_table_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let bg = dir.path().join("bg.wasm");
        let mut module = Module::with_config(ModuleConfig::new());
        let (table, _) = module.add_import_table("env", "__indirect_function_table", false, 4, None, RefType::FUNCREF);
        let mut f = Fixture { module, table };
        let functions = vec![f.function(1, ""), f.function(2, "")];
        f.table_entries(functions);
        f.write(&bg);
        let error = table_error(prune(&bg, &[Shim::Closure(2)]).unwrap_err());
        match error {
            TableError::ReachableFromJs { how, name, .. } => {
                assert_eq!((how, name.as_str()), ("imports", "env.__indirect_function_table"));
            }
            other => panic!("expected ReachableFromJs, got: {other}"),
        }
    }

    #[test]
    fn a_shim_slot_missing_from_the_output_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, stripped, bg) = (dir.path().join("raw.wasm"), dir.path().join("s.wasm"), dir.path().join("bg.wasm"));
        linked(SHIMS, WAKER, PLAIN).write(&raw);
        let mut shims = find_shims(&raw, &stripped).unwrap();
        bindgen(&stripped, &bg, false, |_| {});
        shims.push(Shim::Closure(12));
        let error = table_error(prune(&bg, &shims).unwrap_err());
        assert!(matches!(error, TableError::ShimSlotMissing { shim: Shim::Closure(12), .. }), "{error}");
        assert!(error.to_string().contains("index 12"), "{error}");
    }
}
