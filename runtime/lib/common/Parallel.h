//===- Parallel.h - A minimal deterministic parallel-for --------*- C++ -*-===//
//
// Runs independent tasks on a few threads. Each task is run exactly once by
// exactly one thread, so results are independent of the thread count as long
// as tasks write disjoint outputs.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_COMMON_PARALLEL_H
#define UNISPARSE_RUNTIME_LIB_COMMON_PARALLEL_H

#include <cstdint>

namespace unisparse::rt {

/// A task body: called as `fn(ctx, task, worker)` with `task` in
/// [0, numTasks) and `worker` in [0, numWorkers), where `worker` identifies
/// the calling thread (for per-thread scratch space).
using TaskFn = void (*)(void *ctx, int64_t task, int worker);

/// The number of worker threads to use for `numTasks` tasks: the hardware
/// concurrency, overridden by the environment variable
/// UNISPARSE_RT_NUM_THREADS, and at most `numTasks` (at least 1).
int defaultNumWorkers(int64_t numTasks);

/// Runs `fn` for every task in [0, numTasks) on up to `numWorkers` threads
/// (the calling thread is worker 0). Tasks are handed out dynamically. If a
/// thread cannot be started, the threads that did start (at least the caller)
/// run all the tasks: this never fails.
void parallelFor(int64_t numTasks, int numWorkers, TaskFn fn, void *ctx);

} // namespace unisparse::rt

#endif // UNISPARSE_RUNTIME_LIB_COMMON_PARALLEL_H
