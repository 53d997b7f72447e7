// RUN: unisparse-opt %s --convert-unisparse-to-gpu --canonicalize | FileCheck %s

// The buffer form of slash_refine (bf16, GQA 8 / 2 heads, head groups of 2,
// D = 64, last_q = 16, 6 offsets of width 2, 8 probe rows, 2 local blocks)
// becomes five launches and their scratch: the last rows' logits [B, Hq, M,
// ld] (ld: N rounded up to a multiple of 8), the pieces' (max, sum) [B, Hq,
// M, ceil(N / 256)] twice, the rows' (max, sum) [B, Hq, M] twice, the slash
// evidence [B, Hg, N + M - 1] and the offsets [B, Hg, n_offsets] (i64); the
// vertical evidence lives in the evidence kernel's workgroup memory.
// The 4-warp probe kernels of width <= 1 (the last four functions here)
// ask for 4 CTAs an SM; the first function's (width 2: five tiles a unit,
// more registers than 128) and the narrow ones (one warp a CTA) for nothing.
// CHECK: module attributes {unisparse.kernel_attributes = {unisparse_slash_probe_1 = {nvvm.minctasm = 4 : i32}, unisparse_slash_probe_2 = {nvvm.minctasm = 4 : i32}, unisparse_slash_probe_3 = {nvvm.minctasm = 4 : i32}, unisparse_slash_probe_4 = {nvvm.minctasm = 4 : i32}}} {
// CHECK-LABEL: func.func @refine(
// CHECK-SAME: %[[Q:[^:]+]]: memref<2x8x?x64xbf16>, %[[K:[^:]+]]: memref<2x2x?x64xbf16>, %[[S:[^:]+]]: memref<2x4x?x?xf32>, %[[R:[^:]+]]: memref<2x4x?x?xf32>)
// CHECK-DAG: %[[SCALE2:.+]] = arith.constant 0.180336878 : f32
// CHECK-DAG: %[[N:.+]] = memref.dim %[[Q]], %c2
// CHECK-DAG: %[[NB:.+]] = memref.dim %[[S]], %c2
// CHECK-DAG: %[[N7:.+]] = arith.addi %[[N]], %c7 : index
// CHECK-DAG: %[[LD8:.+]] = arith.divui %[[N7]], %c8 : index
// CHECK-DAG: %[[NLOGITS:.+]] = arith.muli %[[LD8]], %c2048 : index
// The candidates' dot products use 16-byte loads where q's and k's rows are
// 16-byte aligned (checked on the host).
// CHECK-DAG: memref.extract_aligned_pointer_as_index %[[Q]]
// CHECK-DAG: memref.extract_aligned_pointer_as_index %[[K]]
// CHECK-DAG: %[[ALIGNED:.+]] = arith.andi %{{.+}}, %{{.+}} : i1
// CHECK: %[[LOGITS:.+]] = memref.alloc(%[[NLOGITS]]) : memref<?xf32>
// CHECK: %[[PMAX:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: %[[PSUM:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: %[[RMAX:.+]] = memref.alloc() : memref<256xf32>
// CHECK: %[[RINV:.+]] = memref.alloc() : memref<256xf32>
// CHECK-NOT: memref.alloc
// CHECK: %[[EV:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: %[[OFFS:.+]] = memref.alloc() : memref<48xi64>

// 1. The last rows on tensor cores: 4 warps, each a piece of 256 keys of 16
// rows; A fragments of q (bf16 pairs as i32), per n8 tile the B fragments
// of k and D / 16 mma.sync m16n8k16 (f32 accumulation); the masked logits
// (log2 domain: times scale log2 e) to the scratch; the piece's (max, sum of
// 2^(x - max), ex2.approx) per row over the quad. The head
// dimension is permuted (A and B alike): a lane's k slots of two k steps
// are 8 contiguous elements, one 16-byte load where q's and k's rows are
// aligned (the host's test), else four 4-byte loads. A lane's two logits
// of a row (keys 2q, 2q + 1 of the tile) are one 8-byte store: a quad
// writes a row's 8 keys of the tile as one 32-byte sector.
// A warp per (batch, kv head, m16 tile, piece, query head of the kv head),
// the query head innermost: the 4 warps of a CTA are the 4 query heads of
// one kv head on the same 256 keys (K's fragments shared through L1);
// items = pieces x (2 x 2 x 1 x 4).
// CHECK: %[[ITEMS:.+]] = arith.muli %{{.+}}, %c16 : index
// CHECK: %[[ITEMS3:.+]] = arith.addi %[[ITEMS]], %c3 : index
// CHECK: %[[CTAS:.+]] = arith.divui %[[ITEMS3]], %c4 : index
// CHECK: gpu.launch blocks(%[[BID:[^,]+]], {{.+}}) in (%{{.+}} = %[[CTAS]], {{.+}}) threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_slash_last_rows_0_module) function(@unisparse_slash_last_rows_0) {
// CHECK: %[[WARP:.+]] = arith.divui %[[TID]], %c32 : index
// CHECK: %[[BID4:.+]] = arith.muli %[[BID]], %c4 : index
// CHECK: %[[ITEM:.+]] = arith.addi %[[BID4]], %[[WARP]] : index
// CHECK: arith.divui %[[ITEM]], %c4 : index
// CHECK: %[[GSUB:.+]] = arith.remui %[[ITEM]], %c4 : index
// CHECK: arith.addi %{{.+}}, %[[GSUB]] : index
// CHECK: arith.cmpi ult, %[[ITEM]], %[[ITEMS]] : index
// The rows' q fragments (4 octets: two rows x two k-step pairs at D 64) and
// each n8 tile's k fragments (2 octets) in one branch on the alignment each.
// CHECK: scf.if %[[ALIGNED]] -> (vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>) {
// CHECK-NEXT: %[[OCT:.+]] = vector.load %[[Q]][{{.+}}] {alignment = 16 : i64} : memref<2x8x?x64xbf16>, vector<8xbf16>
// CHECK-NEXT: vector.shuffle %[[OCT]], %[[OCT]] [0, 1]
// CHECK-NEXT: vector.shuffle %[[OCT]], %[[OCT]] [2, 3]
// CHECK-NEXT: vector.shuffle %[[OCT]], %[[OCT]] [4, 5]
// CHECK-NEXT: vector.shuffle %[[OCT]], %[[OCT]] [6, 7]
// CHECK-COUNT-3: vector.load %[[Q]][{{.+}}] {alignment = 16 : i64} : memref<2x8x?x64xbf16>, vector<8xbf16>
// CHECK: } else {
// CHECK-COUNT-16: vector.load %[[Q]][{{.+}}] {alignment = 4 : i64} : memref<2x8x?x64xbf16>, vector<2xbf16>
// CHECK: vector.bitcast %{{.+}} : vector<2xbf16> to vector<1xi32>
// CHECK: scf.for
// CHECK: scf.if %[[ALIGNED]] -> (vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>) {
// CHECK-COUNT-2: vector.load %[[K]][{{.+}}] {alignment = 16 : i64} : memref<2x2x?x64xbf16>, vector<8xbf16>
// CHECK: } else {
// CHECK-COUNT-8: vector.load %[[K]][{{.+}}] {alignment = 4 : i64} : memref<2x2x?x64xbf16>, vector<2xbf16>
// CHECK-COUNT-4: nvvm.mma.sync A[{{.+}}]  B[{{.+}}]  C[{{.+}}]  {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>}
// CHECK: %[[PAIR:.+]] = vector.from_elements %{{.+}}, %{{.+}} : vector<2xf32>
// CHECK: vector.store %[[PAIR]], %[[LOGITS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf32>, vector<2xf32>
// CHECK: vector.store %{{.+}}, %[[LOGITS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf32>, vector<2xf32>
// CHECK-NOT: memref.store %{{.+}}, %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-NOT: math.exp
// CHECK: gpu.shuffle  xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: memref.store %{{.+}}, %[[PMAX]][%{{.+}}] : memref<?xf32>
// CHECK: memref.store %{{.+}}, %[[PSUM]][%{{.+}}] : memref<?xf32>
// CHECK: gpu.terminator

// 2. The rows' statistics (a warp per row: the pieces lane-strided, then
// a butterfly; stored as the max and 1 / sum, 0 where the sum is not
// positive), then the evidence in one kernel: a CTA of 256 threads per
// (batch, group, 256 offset-space entries); a thread per key of the tile
// and its P-wide halo (16 x 271 shares): the key's 16 rows unrolled, their
// logits loaded 4 rows at a time (8 loads: 2 heads a group) before
// their exponentials (ex2, times 1 / sum: no division), the shares stored
// to workgroup memory and summed in
// registers into v0 (no second pass over the shares, one barrier); a key
// outside the sequence stores +0 shares and v0 = +0; then each thread's
// entry: s0 and the slash evidence (ULT: a NaN pair goes to the slash), no
// branch per row.
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_row_stats_0_module)
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c32
// CHECK: memref.load %[[PMAX]]
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK: %[[INV:.+]] = arith.divf %cst{{.*}}, %{{.+}} : f32
// CHECK: %[[INV0:.+]] = arith.select %{{.+}}, %[[INV]], %{{.+}} : f32
// CHECK: memref.store %{{.+}}, %[[RMAX]]
// CHECK: memref.store %[[INV0]], %[[RINV]]
// CHECK-NOT: unisparse_slash_vertical
// CHECK: gpu.launch {{.+}} threads({{.+}}) in (%{{.+}} = %c256, {{.+}}) module(@unisparse_slash_evidence_0_module) function(@unisparse_slash_evidence_0) workgroup(%[[PV:.+]] : memref<16x271xf32, #gpu.address_space<workgroup>>, %[[V0:.+]] : memref<271xf32, #gpu.address_space<workgroup>>)
// CHECK-NOT: scf.for
// CHECK: scf.for %[[U:[^ ]+]] = %{{.+}} to %c271 step %c256 {
// CHECK-NOT: scf.for
// CHECK: scf.if %{{[^ ]+}} {
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK-NOT: math.exp
// CHECK: memref.load %[[LOGITS]]
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-NEXT: arith.mulf
// CHECK-NOT: arith.divf
// CHECK-NOT: gpu.barrier
// CHECK: memref.store %{{.+}}, %[[PV]][%c0, %[[U]]]
// CHECK-NOT: gpu.barrier
// CHECK: memref.store %{{.+}}, %[[PV]][%c15, %[[U]]]
// CHECK-NOT: gpu.barrier
// CHECK: memref.store %{{.+}}, %[[V0]][%[[U]]]
// CHECK-NEXT: } else {
// CHECK-COUNT-16: memref.store %{{.+}}, %[[PV]][%{{.+}}, %[[U]]]
// CHECK-NEXT: memref.store %{{.+}}, %[[V0]][%[[U]]]
// CHECK: gpu.barrier
// CHECK-NOT: gpu.barrier
// CHECK: scf.if %{{.+}} {
// CHECK-NOT: scf.if
// CHECK: memref.load %[[PV]]
// CHECK-NOT: scf.if
// CHECK: memref.load %[[V0]]
// CHECK-NEXT: arith.cmpf ult
// CHECK-NOT: memref.load %[[LOGITS]]
// CHECK-NOT: scf.if
// CHECK: memref.store %{{.+}}, %[[EV]]

// 3. The offsets: a CTA of 1024 threads per (batch, head group); each
// thread's best of its strided entries (8 loads issued before they are
// compared); each round a warp arg-max by shuffles (value and i32 index),
// warp 0 over the warps' bests, the winner marked -inf, and the owner's
// warp rescans the owner's entries (a lane each, 8 loads a lane per step)
// for the owner's new best. Then the candidate slots' rules (the offset
// exists, the width rule) into the dead evidence row where they fit.
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %c8, {{.+}}) threads({{.+}}) in (%{{.+}} = %c1024, {{.+}}) module(@unisparse_slash_offsets_0_module) function(@unisparse_slash_offsets_0) workgroup(%[[WV:.+]] : memref<32xf32, #gpu.address_space<workgroup>>, %[[WE:.+]] : memref<32xi32, #gpu.address_space<workgroup>>, %[[WIN:.+]] : memref<1xi32, #gpu.address_space<workgroup>>)
// CHECK: scf.for %{{.+}} = %c0 to %{{.+}} step %c8 iter_args
// CHECK-COUNT-8: memref.load %[[EV]]
// CHECK: scf.for %{{.+}} = %c0 to %c6 step %c1
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : i32
// CHECK: gpu.barrier
// CHECK: memref.store %{{.+}}, %[[OFFS]][%{{.+}}] : memref<48xi64>
// CHECK: memref.store %{{.+}}, %[[WIN]][%c0]
// CHECK: gpu.barrier
// CHECK: memref.store %cst{{.*}}, %[[EV]]
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c256 iter_args
// CHECK-COUNT-8: memref.load %[[EV]]
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.barrier
// CHECK: scf.for %{{.+}} = %{{.+}} to %c30 step %c1024
// CHECK: memref.load %[[OFFS]]
// CHECK: math.absi
// CHECK: memref.store %{{.+}}, %[[EV]]
// CHECK: gpu.terminator

// 4. The probe rows: a warp per (batch, query block, head group), 4 warps
// a CTA (the head group innermost: the CTA's warps are one block's
// consecutive head groups); each warp's E in dynamic workgroup memory (NB
// floats at warp * NB), zeroed; per head of the group and tile of 8 probe
// rows (one here: the loop folds) the q of the rows as the B operand (one
// branch on the rows' alignment for all its loads), the forced keys'
// log-sum-exp on tensor cores with 16 keys as the A operand (two key
// ranges, the sink block then the local blocks up to the row; one m16
// tile a step, 4 k steps at D 64, its fragments loaded a step ahead; the
// logits in the log2 domain,
// times scale log2(e) = 0.125 x 1.4427 = 0.180336878, masked by one 32-bit
// compare of the key with the row's limit, their exponentials by
// ex2.approx), merged over the lanes of a row (shuffles 4, 8, 16; the lse
// by log2); then the candidates two offsets at a time (2w + 1 =
// 5 is odd; 6 offsets: 3 units): the unit's 10 slot rules from the evidence
// row (or computed where it did not fit), a lane a slot, as one ballot;
// its 2 x 8 x 5 (row, e) entries as the keys of 5 m16 tiles (no padding,
// unrolled; more than 4 tiles, so each entry's row and range are computed
// in the unit), one ex2 per C half, the sums per (offset, key block) (2 x
// 2 bins) by a butterfly, added into E by lane 0; then the combination,
// written once.
// Items: B x NB x Hg = 8 NB warps; E: 4 warps x NB floats = 16 NB bytes,
// where they fit a CTA's 227 KiB (else the same kernel with one warp a CTA,
// at the end of this function).
// CHECK: %[[FITBYTES:.+]] = arith.muli %[[NB]], %c16 : index
// CHECK: %[[FITS:.+]] = arith.cmpi ule, %[[FITBYTES]], %c232448 : index
// CHECK: scf.if %[[FITS]] {
// CHECK: %[[PITEMS:.+]] = arith.muli %[[NB]], %c8 : index
// CHECK: %[[PBYTES:.+]] = arith.muli %[[NB]], %c16 : index
// CHECK: gpu.launch {{.+}} threads(%[[PTID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) dynamic_shared_memory_size %{{.+}} module(@unisparse_slash_probe_0_module) function(@unisparse_slash_probe_0) {
// CHECK: %[[WARP:.+]] = arith.divui %[[PTID]], %c32 : index
// CHECK: %[[LANE:.+]] = arith.remui %[[PTID]], %c32 : index
// CHECK: %[[ITEM:.+]] = arith.addi %{{.+}}, %[[WARP]] : index
// CHECK: arith.remui %[[ITEM]], %c4 : index
// CHECK: %[[EXISTS:.+]] = arith.cmpi ult, %[[ITEM]], %[[PITEMS]] : index
// CHECK: %[[RAW:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[NB4:.+]] = arith.muli %[[NB]], %c4 : index
// CHECK: %[[EAT:.+]] = arith.muli %[[NB4]], %[[WARP]] : index
// CHECK: %[[E:.+]] = memref.view %[[RAW]][%[[EAT]]][%[[NB]]] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// CHECK-NOT: memref.view
// CHECK: scf.for %{{.+}} = %[[LANE]] to %[[NB]] step %c32 {
// CHECK-NEXT: memref.store %cst{{.*}}, %[[E]]
// CHECK: gpu.barrier
// CHECK: scf.if %[[EXISTS]] {
// CHECK: scf.for %{{.+}} = %c0 to %c2 step %c1 {
// CHECK: scf.if %{{.+}} -> (vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>, vector<2xbf16>) {
// CHECK-COUNT-2: vector.load %[[Q]]{{.+}} : memref<2x8x?x64xbf16>, vector<8xbf16>
// Each range's first step's A fragments (16 i32 registers at D 64) before its
// loop; the loop over pairs of steps carries them with the (max, sum) of
// the lane's two rows: the second step's fragments are loaded before the
// first step's mma, the next pair's first step's before the second step's.
// CHECK: vector.load %[[K]]{{.+}} : memref<2x2x?x64xbf16>, vector<8xbf16>
// CHECK: scf.for {{.+}} iter_args({{.+}}) -> (f32, f32, f32, f32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) {
// CHECK: vector.load %[[K]]{{.+}} : memref<2x2x?x64xbf16>, vector<8xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK: %[[SEE:.+]] = arith.cmpi sle, %{{.+}}, %{{.+}} : i32
// CHECK-NEXT: %[[X2:.+]] = arith.mulf %{{.+}}, %[[SCALE2]] : f32
// CHECK-NEXT: arith.select %[[SEE]], %[[X2]], %{{.+}} : f32
// CHECK: arith.maximumf
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-NOT: nvvm.mma.sync
// CHECK: vector.load %[[K]]{{.+}} : memref<2x2x?x64xbf16>, vector<8xbf16>
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-NOT: math.exp
// CHECK: scf.yield {{.+}} : f32, f32, f32, f32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32
// CHECK: scf.for {{.+}} iter_args({{.+}}) -> (f32, f32, f32, f32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) {
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK: gpu.shuffle  xor %{{.+}}, %c4_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c8_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-NOT: math.exp
// CHECK: math.log2
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1 {
// CHECK: arith.floordivsi %{{.+}}, %c64_i64 : i64
// CHECK: arith.floordivsi %{{.+}}, %c64_i64 : i64
// CHECK: scf.if %{{.+}} -> (i1) {
// CHECK: scf.if %{{.+}} -> (i1) {
// CHECK: memref.load %[[EV]]
// CHECK: } else {
// CHECK: math.absi
// CHECK: %[[RULES:.+]] = nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK-NOT: nvvm.vote.sync
// CHECK: arith.divui %{{.+}}, %c5 : index
// CHECK: arith.andi %[[RULES]], %{{.+}} : i32
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK-COUNT-2: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-NOT: nvvm.mma.sync
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-COUNT-4: memref.store %{{.+}}, %[[E]]
// The combination: the row total and forced sum (two sums, no sum of E
// without refine_norm), then max(s / tot, E * f / tot).
// CHECK: gpu.barrier
// CHECK: scf.if %[[EXISTS]] {
// CHECK-NEXT: scf.for {{.+}} iter_args(%{{[^,]+}}, %{{[^,]+}}) -> (f32, f32) {
// CHECK: memref.load %[[S]]
// CHECK: gpu.shuffle  xor
// CHECK: memref.load %[[E]]
// CHECK: %[[REF0:.+]] = arith.mulf
// CHECK-NEXT: arith.cmpf uno
// CHECK-NEXT: arith.maximumf %{{.+}}, %[[REF0]]
// CHECK: memref.store %{{.+}}, %[[R]]
// CHECK: gpu.terminator
// CHECK: } else {
// CHECK: %[[NBYTES:.+]] = arith.muli %[[NB]], %c4 : index
// CHECK: %[[NBYTES32:.+]] = arith.index_castui %[[NBYTES]] : index to i32
// CHECK: gpu.launch {{.+}} threads({{.+}}) in (%{{.+}} = %c32, {{.+}}) dynamic_shared_memory_size %[[NBYTES32]] module(@unisparse_slash_probe_narrow_0_module) function(@unisparse_slash_probe_narrow_0) {
// CHECK: nvvm.mma.sync
// CHECK: memref.store %{{.+}}, %[[R]]
// CHECK: gpu.terminator
// CHECK-COUNT-7: memref.dealloc
// CHECK-NOT: memref.dealloc
func.func @refine(%q: memref<2x8x?x64xbf16>, %k: memref<2x2x?x64xbf16>, %s: memref<2x4x?x?xf32>, %r: memref<2x4x?x?xf32>) {
  unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64, n_offsets = 6 : i64, rows_per_block = 8 : i64,
                          width = 2 : i64, local_blocks = 2 : i64}
      ins(%q, %k, %s : memref<2x8x?x64xbf16>, memref<2x2x?x64xbf16>, memref<2x4x?x?xf32>)
      outs(%r : memref<2x4x?x?xf32>)
  return
}

// f16 q and k: the same kernels with f16 operands (pairs as vector<2xf16>;
// D = 128: 8 k steps); last_q = 20 takes two m16 tiles of last rows (grid
// dimension) and a 20 x 275 evidence tile; 24 probe rows take three
// tiles of 8 probe rows (a loop), one E row a warp. Width 1 (16 offsets, 8
// units of 3 m16 tiles): each entry's row, slot and range of offsets are
// computed once per tile of rows, before the units (six divisions by 2w + 1
// there, none in a unit), and a unit tests each entry's offset against its
// range and rule: two compares and a bit.
// CHECK-LABEL: func.func @refine_f16(
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_last_rows_1_module)
// CHECK-COUNT-8: nvvm.mma.sync {{.+}} shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (vector<2xf16>, vector<2xf16>, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_evidence_1_module) function(@unisparse_slash_evidence_1) workgroup(%{{.+}} : memref<20x275xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<275xf32, #gpu.address_space<workgroup>>)
// CHECK: gpu.launch {{.+}} threads({{.+}}) in (%{{.+}} = %c128, {{.+}}) dynamic_shared_memory_size %{{.+}} module(@unisparse_slash_probe_1_module)
// CHECK: memref.view
// CHECK-NOT: memref.view
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1 {
// CHECK: nvvm.mma.sync {{.+}} : (vector<2xf16>, vector<2xf16>, f32)
// CHECK: math.log
// CHECK: math.log
// CHECK-COUNT-6: arith.remui %{{.+}}, %c3 : index
// CHECK-NOT: arith.remui %{{.+}}, %c3 : index
// CHECK: scf.for %{{.+}} = %c0 to %c8 step %c1 {
// CHECK: %[[RULES1:.+]] = nvvm.vote.sync  ballot
// CHECK-NOT: arith.divui %{{.+}}, %c3 : index
// CHECK: arith.cmpi sge, %{{.+}}, %{{.+}} : i64
// CHECK-NEXT: arith.cmpi sle, %{{.+}}, %{{.+}} : i64
// CHECK-NEXT: arith.andi
// CHECK-NEXT: arith.andi %[[RULES1]], %{{.+}} : i32
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK-COUNT-16: nvvm.mma.sync
// CHECK-NOT: nvvm.mma.sync
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
func.func @refine_f16(%q: memref<1x4x?x128xf16>, %k: memref<1x4x?x128xf16>, %s: memref<1x4x?x?xf32>, %r: memref<1x4x?x?xf32>) {
  unisparse.slash_refine {block = 128 : i64, last_q = 20 : i64, rows_per_block = 24 : i64}
      ins(%q, %k, %s : memref<1x4x?x128xf16>, memref<1x4x?x128xf16>, memref<1x4x?x?xf32>)
      outs(%r : memref<1x4x?x?xf32>)
  return
}

// last_q = 48: the shares of 48 rows over 256 + 47 keys do not fit in 48 KiB
// of static workgroup memory, so the evidence is the two kernels: a thread
// per key (vertical, into its scratch [B, Hg, N]) and per offset-space
// entry (slash).
// CHECK-LABEL: func.func @refine_many_rows(
// CHECK: %[[VERT2:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_row_stats_2_module)
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_vertical_{{[0-9]+}}_module)
// CHECK: memref.store %{{.+}}, %[[VERT2]]
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_evidence_2_module) function(@unisparse_slash_evidence_2) {
// CHECK-NOT: workgroup
// CHECK: memref.load %[[VERT2]]
// CHECK: arith.cmpf ult
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_offsets_2_module)
// CHECK-COUNT-8: memref.dealloc
func.func @refine_many_rows(%q: memref<1x4x?x128xbf16>, %k: memref<1x4x?x128xbf16>, %s: memref<1x4x?x?xf32>, %r: memref<1x4x?x?xf32>) {
  unisparse.slash_refine {block = 128 : i64, last_q = 48 : i64}
      ins(%q, %k, %s : memref<1x4x?x128xbf16>, memref<1x4x?x128xbf16>, memref<1x4x?x?xf32>)
      outs(%r : memref<1x4x?x?xf32>)
  return
}

// refine_norm: the combination's loop sums E too (a third sum, the same
// butterfly), 1 + (f / tot) sum E is formed once per row, and E * f / tot
// is divided by it before the max; the other kernels are unchanged.
// CHECK-LABEL: func.func @refine_norm(
// CHECK-SAME: %{{[^:]+}}: memref<1x4x?x64xbf16>, %{{[^:]+}}: memref<1x2x?x64xbf16>, %[[S3:[^:]+]]: memref<1x4x?x?xf32>, %[[R3:[^:]+]]: memref<1x4x?x?xf32>)
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_probe_3_module)
// CHECK: %[[E3:.+]] = memref.view
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// CHECK: scf.if %{{.+}} {
// CHECK-NEXT: %[[SUMS3:.+]]:3 = scf.for {{.+}} iter_args(%{{[^,]+}}, %{{[^,]+}}, %[[ACC:[^ ]+]] = %{{[^)]+}}) -> (f32, f32, f32) {
// CHECK: memref.load %[[S3]]
// CHECK: %[[EJ:.+]] = memref.load %[[E3]]
// CHECK-NEXT: %[[ESUM:.+]] = arith.addf %[[ACC]], %[[EJ]] : f32
// CHECK-COUNT-15: gpu.shuffle  xor
// CHECK-NOT: gpu.shuffle
// CHECK: %[[SH3:.+]] = arith.divf %{{.+}}, %{{.+}} : f32
// CHECK-NEXT: %[[NAN3:.+]] = arith.cmpf uno, %[[SH3]], %[[SH3]] : f32
// CHECK-NEXT: %[[SH30:.+]] = arith.select %[[NAN3]], %{{.+}}, %[[SH3]] : f32
// CHECK-NEXT: %[[S3SUM:.+]] = arith.mulf %{{.+}}, %[[SH30]] : f32
// CHECK-NEXT: %[[DEN:.+]] = arith.addf %[[S3SUM]], %[[ONE]] : f32
// CHECK-NEXT: scf.for
// CHECK: memref.load %[[E3]]
// CHECK: %[[REF3:.+]] = arith.mulf
// CHECK-NEXT: %[[RN3:.+]] = arith.divf %[[REF3]], %[[DEN]] : f32
// CHECK-NEXT: arith.cmpf uno
// CHECK-NEXT: arith.maximumf %{{.+}}, %[[RN3]]
// CHECK: memref.store %{{.+}}, %[[R3]]
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_probe_narrow_3_module)
// CHECK: arith.divf %{{.+}}, %[[DEN3N:.+]] : f32
// CHECK: arith.maximumf
func.func @refine_norm(%q: memref<1x4x?x64xbf16>, %k: memref<1x2x?x64xbf16>, %s: memref<1x4x?x?xf32>, %r: memref<1x4x?x?xf32>) {
  unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64, refine_norm = true}
      ins(%q, %k, %s : memref<1x4x?x64xbf16>, memref<1x2x?x64xbf16>, memref<1x4x?x?xf32>)
      outs(%r : memref<1x4x?x?xf32>)
  return
}

// 8 query heads of 2 kv heads, c_h 1 (G 4 = the probe kernel's 4 warps, the
// default's shape at D 128): the CTA's warps are the query heads of one kv
// head with the same forced keys, so the 4-warp kernel stages them in
// workgroup memory after the E rows (3 stages of 32 keys x (128 + 8)
// elements: 13056 bf16, 26112 bytes, counted where the host picks the kernel
// and in its dynamic size). Where q's and k's rows are 16-byte aligned
// (one branch yielding the rows' (max, sum)) the rows' q as B in the mma's
// own layout (4-byte pairs); per range two steps' copies ahead (each step
// 32 keys x 16 chunks = 4 copies a thread, one group), then per step a wait
// for all but the newest group, a barrier, the copy two steps ahead, and 2
// m16 tiles x 8 k steps of ldmatrix.x4 and mma.sync; a barrier after each
// range. Otherwise the register path (its A fragments from global loads).
// The narrow kernel has no stages.
// CHECK-LABEL: func.func @refine_staged(
// CHECK: %[[SBYTES:.+]] = arith.addi %{{.+}}, %c26112 : index
// CHECK: arith.cmpi ule, %[[SBYTES]], %c232448 : index
// CHECK: %[[DBYTES:.+]] = arith.addi %{{.+}}, %c26112 : index
// CHECK-NEXT: %[[DBYTES32:.+]] = arith.index_castui %[[DBYTES]] : index to i32
// CHECK-NEXT: gpu.launch {{.+}} dynamic_shared_memory_size %[[DBYTES32]] module(@unisparse_slash_probe_4_module)
// CHECK: %[[SRAW:.+]] = gpu.dynamic_shared_memory
// CHECK: %[[SE:.+]] = memref.view %[[SRAW]][%{{.+}}][%[[SNB:.+]]] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// CHECK-NEXT: %[[SSHIFT:.+]] = arith.muli %[[SNB]], %c16 : index
// CHECK-NEXT: %[[STAGE:.+]] = memref.view %[[SRAW]][%[[SSHIFT]]][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<13056xbf16, #gpu.address_space<workgroup>>
// CHECK: scf.if %{{.+}} -> (f32, f32, f32, f32) {
// CHECK-COUNT-16: vector.load %{{.+}} {alignment = 4 : i64} : memref<1x8x?x128xbf16>, vector<2xbf16>
// The sink range, then the local blocks' range: the same steps.
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.+}}, %[[STAGE]][%{{.+}}], 8, %{{.+}} {bypassL1} : memref<1x2x?x128xbf16> to memref<13056xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_create_group
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.+}}, %[[STAGE]]
// CHECK: %[[GROUP0:.+]] = nvgpu.device_async_create_group
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32) {
// CHECK-NEXT: nvgpu.device_async_wait %[[GROUP0]] {numGroups = 1 : i32}
// CHECK-NEXT: gpu.barrier
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.+}}, %[[STAGE]]
// CHECK: nvgpu.device_async_create_group
// CHECK-COUNT-8: nvgpu.ldmatrix %[[STAGE]]
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK-COUNT-8: nvgpu.ldmatrix %[[STAGE]]
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK-NOT: nvvm.mma.sync
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: scf.yield %{{.+}} : f32, f32, f32, f32
// CHECK-NEXT: }
// CHECK-NEXT: gpu.barrier
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.+}}, %[[STAGE]][%{{.+}}], 8, %{{.+}} {bypassL1} : memref<1x2x?x128xbf16> to memref<13056xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_create_group
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.+}}, %[[STAGE]]
// CHECK: %[[GROUP1:.+]] = nvgpu.device_async_create_group
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32) {
// CHECK-NEXT: nvgpu.device_async_wait %[[GROUP1]] {numGroups = 1 : i32}
// CHECK-NEXT: gpu.barrier
// CHECK-COUNT-4: nvgpu.device_async_copy %{{.+}}, %[[STAGE]]
// CHECK: nvgpu.device_async_create_group
// CHECK-COUNT-8: nvgpu.ldmatrix %[[STAGE]]
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK-COUNT-8: nvgpu.ldmatrix %[[STAGE]]
// CHECK-COUNT-8: nvvm.mma.sync
// CHECK-NOT: nvvm.mma.sync
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: scf.yield %{{.+}} : f32, f32, f32, f32
// CHECK-NEXT: }
// CHECK-NEXT: gpu.barrier
// CHECK: } else {
// CHECK-NOT: nvgpu.ldmatrix
// CHECK: scf.for {{.+}} iter_args({{.+}}) -> (f32, f32, f32, f32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) {
// CHECK: gpu.launch {{.+}} module(@unisparse_slash_probe_narrow_4_module)
// CHECK-NOT: memref.view {{.+}}bf16
// CHECK: gpu.terminator
func.func @refine_staged(%q: memref<1x8x?x128xbf16>, %k: memref<1x2x?x128xbf16>, %s: memref<1x8x?x?xf32>, %r: memref<1x8x?x?xf32>) {
  unisparse.slash_refine {block = 128 : i64, last_q = 16 : i64}
      ins(%q, %k, %s : memref<1x8x?x128xbf16>, memref<1x2x?x128xbf16>, memref<1x8x?x?xf32>)
      outs(%r : memref<1x8x?x?xf32>)
  return
}
