//! Lays the module's function bodies out by size, smallest first, and by
//! type within a size class, after wasm-opt: the gzipped bundle is smaller
//! for it.
//!
//! gzip finds repeats only within 32 KiB and codes short, near ones best.
//! The linker lays functions out by crate and codegen unit, so the many small
//! ones that look alike (drop glue, getters, import wrappers, iterator steps)
//! are scattered among large bodies; side by side, and beside those of the
//! same signature, they compress against each other. Measured on the bundle
//! (gzip bytes, 2026-12): by size alone -257; by type within classes of 16,
//! 24 or 32 bytes -374, -382 and -370 (24 is used). Trials with zlib on the
//! same module: random orders +500 to +900, a greedy order (each next body
//! the one that compresses best after the last 8 KiB) -150.
//!
//! Only the order changes: every function index the module holds (calls,
//! exports, element segments, the start function) is renumbered through
//! wasm-encoder's re-encoder, which re-encodes each instruction as it was.
//! Imported functions keep their indices. A name section would name the
//! wrong functions afterwards, so a module with one is refused (the release
//! profile strips it).

use std::path::Path;

use anyhow::{Context, Result, bail};
use wasm_encoder::reencode::{Error, Reencode};
use wasm_encoder::{CodeSection, FunctionSection, Module};
use wasmparser::{CodeSectionReader, FunctionBody, FunctionSectionReader, Parser, Payload};

/// Reorders `wasm`'s function bodies in place; returns how many it has.
pub fn sort_by_size(wasm: &Path) -> Result<usize> {
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut imported = 0;
    let mut sizes = Vec::new();
    let mut types = Vec::new();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload? {
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::FunctionSection(section) => types = section.into_iter().collect::<Result<_, _>>()?,
            Payload::CodeSectionEntry(body) => sizes.push(body.range().len()),
            Payload::CustomSection(section) if section.name() == "name" => {
                bail!("{} has a name section, which reordering would make wrong", wasm.display())
            }
            _ => {}
        }
    }
    // `order[new] = old`; a stable sort keeps the linker's order among equals.
    // Sizes in classes of 24 bytes, then the type: see the module doc.
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&old| (sizes[old] / 24, types[old]));
    let mut new_index = vec![0; sizes.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new as u32;
    }
    let mut reorder = Reorder { imported, order, new_index };
    let mut module = Module::new();
    reorder.parse_core_module(&mut module, Parser::new(0), &bytes).context("re-encoding the module")?;
    let out = module.finish();
    wasmparser::validate(&out).context("the reordered module does not validate")?;
    std::fs::write(wasm, out).with_context(|| format!("writing {}", wasm.display()))?;
    Ok(sizes.len())
}

struct Reorder {
    imported: u32,
    /// The old position of each body, in the new order.
    order: Vec<usize>,
    /// The new position of each body, by its old one.
    new_index: Vec<u32>,
}

impl Reencode for Reorder {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, Error<Self::Error>> {
        Ok(match func.checked_sub(self.imported) {
            Some(local) => self.imported + self.new_index[local as usize],
            None => func,
        })
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: FunctionSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        let types = section.into_iter().collect::<Result<Vec<u32>, _>>()?;
        for old in self.order.clone() {
            functions.function(self.type_index(types[old])?);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: CodeSectionReader<'_>,
    ) -> Result<(), Error<Self::Error>> {
        let bodies = section.into_iter().collect::<Result<Vec<FunctionBody<'_>>, _>>()?;
        for old in self.order.clone() {
            self.parse_function_body(code, bodies[old].clone())?;
        }
        Ok(())
    }
}

/// Re-encodes without renumbering: the check that a round trip alone keeps
/// the module as it was, so that what [`sort_by_size`] changes is the order.
#[cfg(test)]
fn roundtrip(bytes: &[u8]) -> Vec<u8> {
    use wasm_encoder::reencode::RoundtripReencoder;
    let mut module = Module::new();
    RoundtripReencoder.parse_core_module(&mut module, Parser::new(0), bytes).expect("re-encodes");
    module.finish()
}

#[cfg(test)]
mod tests {
    use wasm_encoder::{
        CodeSection, ExportKind, ExportSection, Function, FunctionSection, ImportSection, Instruction, Module,
        TypeSection, ValType,
    };
    use wasmparser::{Operator, Parser, Payload};

    /// An import, then three bodies of sizes large, small, middling (each in
    /// a size class of its own); the large one calls the other two and the
    /// import.
    fn module() -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        let mut imports = ImportSection::new();
        imports.import("env", "f", wasm_encoder::EntityType::Function(0));
        let mut functions = FunctionSection::new();
        let mut code = CodeSection::new();
        // Five bytes each.
        let padding =
            |n: usize| (0..n).flat_map(|_| [Instruction::I32Const(1_000_000), Instruction::I32Add]).collect::<Vec<_>>();
        let calls = [
            Instruction::Call(0),
            Instruction::Call(2),
            Instruction::I32Add,
            Instruction::Call(3),
            Instruction::I32Add,
        ];
        let bodies =
            [calls.to_vec(), vec![Instruction::I32Const(2)], [vec![Instruction::I32Const(3)], padding(6)].concat()];
        for (at, body) in bodies.into_iter().enumerate() {
            let body = if at == 0 { [body, padding(12)].concat() } else { body };
            functions.function(0);
            let mut f = Function::new([]);
            for instruction in body.iter().chain([&Instruction::End]) {
                f.instruction(instruction);
            }
            code.function(&f);
        }
        let mut exports = ExportSection::new();
        exports.export("big", ExportKind::Func, 1);
        let mut module = Module::new();
        module.section(&types).section(&imports).section(&functions).section(&exports).section(&code);
        module.finish()
    }

    fn calls_and_exports(bytes: &[u8]) -> (Vec<Vec<u32>>, Vec<u32>) {
        let (mut calls, mut exports) = (Vec::new(), Vec::new());
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.unwrap() {
                Payload::CodeSectionEntry(body) => {
                    let mut reader = body.get_operators_reader().unwrap();
                    let mut called = Vec::new();
                    while !reader.eof() {
                        if let Operator::Call { function_index } = reader.read().unwrap() {
                            called.push(function_index);
                        }
                    }
                    calls.push(called);
                }
                Payload::ExportSection(section) => exports.extend(section.into_iter().map(|e| e.unwrap().index)),
                _ => {}
            }
        }
        (calls, exports)
    }

    #[test]
    fn bodies_go_smallest_first_and_every_index_follows() {
        let dir = std::env::temp_dir().join(format!("ringsource-order-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.wasm");
        std::fs::write(&path, module()).unwrap();
        assert_eq!(super::sort_by_size(&path).unwrap(), 3);
        let sorted = std::fs::read(&path).unwrap();
        // Index 2 (small) is now 1, 3 (middling) is 2, 1 (large) is 3.
        let (calls, exports) = calls_and_exports(&sorted);
        assert_eq!(calls, vec![vec![], vec![], vec![0, 1, 2]]);
        assert_eq!(exports, vec![3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_round_trip_alone_changes_nothing() {
        let bytes = module();
        assert_eq!(super::roundtrip(&bytes), bytes);
    }
}
