// Process-wide allocator settings for the engines.
#pragma once

namespace dllm {

// glibc's malloc serves large blocks with mmap and gives them back to the kernel on free, raising its thresholds
// only when it sees such a block freed. An engine allocates and frees the same activation buffers at every
// forward, so every forward faulted them in again (measured: ~40,000 minor page faults per forward of a
// d_model 256 x 6-layer model at batch 8, 15-30% of its time). This keeps blocks under 64 MiB on the heap and
// 256 MiB of free heap before trimming. Nothing is changed when the user tuned malloc (GLIBC_TUNABLES naming
// malloc, or MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_) or the C library is not glibc. Idempotent.
void tuneAllocator();

}  // namespace dllm
