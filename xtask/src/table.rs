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
//! Both are skipped when JS can reach the table (exported or imported).

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use walrus::ir::{Const, Value, Visitor, dfs_in_order};
use walrus::{ConstExpr, ElementItems, ElementKind, ExportItem, FunctionBuilder, FunctionId, ImportKind, Module};

/// A table entry that wasm-bindgen may leave unreachable.
#[derive(Clone, Copy)]
pub enum Shim {
    /// A closure type's invoke shim: unreachable unless wasm-bindgen exported it.
    Closure(u32),
    /// js-sys's JSPI task machinery (its waker's vtable functions): reachable
    /// only through the `__wbg_jspi_task_poll` export, which wasm-bindgen
    /// deletes from modules without JSPI exports.
    Jspi(u32),
}

/// Reads the linker's output `linked` (with its symbol names) and writes it
/// to `stripped` without the names and the custom sections that `strip = true`
/// drops. Returns the table entries that may be left unreachable.
pub fn find_shims(linked: &Path, stripped: &Path) -> Result<Vec<Shim>> {
    let mut config = walrus::ModuleConfig::new();
    config.generate_name_section(false).generate_producers_section(false);
    let mut module = config.parse_file(linked).with_context(|| format!("reading {}", linked.display()))?;
    let mut shims = Vec::new();
    for_each_entry(&module, |index, function| {
        let name = module.funcs.get(function).name.as_deref().unwrap_or_default();
        // `{:#}`: the path without crate hashes.
        let name = format!("{:#}", rustc_demangle::demangle(name));
        if name.starts_with("wasm_bindgen::convert::closures::_::invoke::<") {
            shims.push(Shim::Closure(index));
        } else if name.starts_with("js_sys::futures::jspi::") {
            shims.push(Shim::Jspi(index));
        }
    })?;
    for section in ["target_features", "producers"] {
        module.customs.remove_raw(section);
    }
    module.emit_wasm_file(stripped).with_context(|| format!("writing {}", stripped.display()))?;
    Ok(shims)
}

/// Points the unreachable entries of wasm-bindgen's output `wasm` at one
/// trapping function: the slots in `shims` whose function is not exported,
/// and those whose index the module holds nowhere. Returns how many.
pub fn prune(wasm: &Path, shims: &[Shim]) -> Result<usize> {
    let mut module = Module::from_file(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    if module.exports.iter().any(|e| matches!(e.item, ExportItem::Table(_)))
        || module.imports.iter().any(|i| matches!(i.kind, ImportKind::Table(_)))
    {
        return Ok(0);
    }
    let exported: HashSet<FunctionId> = module
        .exports
        .iter()
        .filter_map(|e| match e.item {
            ExportItem::Function(f) => Some(f),
            _ => None,
        })
        .collect();

    let jspi = module.exports.iter().any(|e| e.name == "__wbg_jspi_task_poll");

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
    for_each_entry(&module, |index, function| {
        let unused_shim = shims.iter().any(|shim| match *shim {
            Shim::Closure(at) => at == index && !exported.contains(&function),
            Shim::Jspi(at) => at == index && !jspi,
        });
        let unheld = !constants.values.contains(&u64::from(index)) && !in_data(index);
        if unused_shim || unheld {
            unreachable.push(index);
        }
    })?;
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
