//===- TilingInterfaceImpl.h - TilingInterface of unisparse ops -*- C++ -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_TILINGINTERFACEIMPL_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_TILINGINTERFACEIMPL_H

namespace mlir {
class DialectRegistry;
namespace unisparse {
/// Attaches TilingInterface to unisparse.compress (loops: batch, composite,
/// head_dim), unisparse.block_score (batch, head group, query block),
/// unisparse.block_select and unisparse.dense_layout (batch, head group), so
/// that upstream tiling (scf::tileUsingSCF, transform.structured.tile_*)
/// applies to them.
void registerTilingInterfaceExternalModels(DialectRegistry &registry);
} // namespace unisparse
} // namespace mlir

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_TILINGINTERFACEIMPL_H
