//===- Parallel.cpp - A minimal deterministic parallel-for ----------------===//
//
// A parallel-for over POSIX threads with a shared atomic task counter. It uses
// pthreads rather than std::thread so that a failure to start a thread is a
// return code (handled by running the work on fewer threads), not an
// exception: the library is built with -fno-exceptions.
//
//===----------------------------------------------------------------------===//

#include "common/Parallel.h"

#include <atomic>
#include <cstdlib>
#include <thread>

#if !defined(_WIN32)
#include <pthread.h>
#endif

namespace unisparse::rt {

namespace {

/// State shared by all workers of one parallelFor call.
struct SharedState {
  std::atomic<int64_t> next{0};
  int64_t numTasks;
  TaskFn fn;
  void *ctx;
};

/// Per-thread argument: the shared state and this worker's index.
struct WorkerArg {
  SharedState *state;
  int worker;
};

/// Claims tasks from the shared counter until none is left.
void runWorker(SharedState &state, int worker) {
  for (;;) {
    int64_t task = state.next.fetch_add(1, std::memory_order_relaxed);
    if (task >= state.numTasks)
      return;
    state.fn(state.ctx, task, worker);
  }
}

#if !defined(_WIN32)
void *threadMain(void *arg) {
  auto *workerArg = static_cast<WorkerArg *>(arg);
  runWorker(*workerArg->state, workerArg->worker);
  return nullptr;
}
#endif

} // namespace

int defaultNumWorkers(int64_t numTasks) {
  int64_t n = std::thread::hardware_concurrency();
  if (const char *env = std::getenv("UNISPARSE_RT_NUM_THREADS")) {
    long requested = std::strtol(env, nullptr, 10);
    if (requested > 0)
      n = requested;
  }
  if (n > numTasks)
    n = numTasks;
  if (n > 256)
    n = 256;
  return n < 1 ? 1 : static_cast<int>(n);
}

void parallelFor(int64_t numTasks, int numWorkers, TaskFn fn, void *ctx) {
  SharedState state;
  state.numTasks = numTasks;
  state.fn = fn;
  state.ctx = ctx;
  if (numWorkers < 1)
    numWorkers = 1;
#if defined(_WIN32)
  numWorkers = 1; // Serial fallback; no pthreads.
#else
  // Start workers 1..numWorkers-1; the calling thread is worker 0.
  constexpr int kMaxWorkers = 256;
  if (numWorkers > kMaxWorkers)
    numWorkers = kMaxWorkers;
  pthread_t threads[kMaxWorkers];
  WorkerArg args[kMaxWorkers];
  int started = 0;
  for (int w = 1; w < numWorkers; ++w) {
    args[started] = WorkerArg{&state, w};
    if (pthread_create(&threads[started], nullptr, threadMain,
                       &args[started]) != 0)
      break; // Run with the threads we have.
    ++started;
  }
#endif
  runWorker(state, 0);
#if !defined(_WIN32)
  for (int i = 0; i < started; ++i)
    pthread_join(threads[i], nullptr);
#endif
}

} // namespace unisparse::rt
