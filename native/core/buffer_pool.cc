// Buffer pool: see buffer_pool.h.
#include "buffer_pool.h"

#include <cerrno>
#include <functional>

namespace muxnet {

BufferPool::BufferPool(std::function<char*(int slab)> allocate_slab, int max_slabs)
    : allocate_slab_(std::move(allocate_slab)), max_slabs_(max_slabs) {}

int BufferPool::Acquire() {
  if (free_.empty()) {
    if (static_cast<int>(slabs_.size()) >= max_slabs_) return -1;
    int slab = static_cast<int>(slabs_.size());
    char* memory = allocate_slab_(slab);
    if (memory == nullptr) return -1;
    slabs_.push_back(memory);
    out_.resize(out_.size() + kChunksPerSlab, false);
    for (int i = kChunksPerSlab - 1; i >= 0; i--) free_.push_back(slab * kChunksPerSlab + i);
  }
  int index = free_.back();
  free_.pop_back();
  out_[index] = true;
  in_use_++;
  return index;
}

int BufferPool::Release(int index) {
  if (index < 0 || index >= static_cast<int>(out_.size()) || !out_[index]) return -EINVAL;
  out_[index] = false;
  in_use_--;
  free_.push_back(index);
  return 0;
}

char* BufferPool::Data(int index) const {
  return slabs_[index / kChunksPerSlab] + (index % kChunksPerSlab) * kChunkSize;
}

int BufferPool::ChunkOf(const char* p) const {
  std::less<const char*> before;  // a total order, also across unrelated allocations
  for (size_t slab = 0; slab < slabs_.size(); slab++) {
    const char* start = slabs_[slab];
    if (before(p, start) || !before(p, start + kSlabSize)) continue;
    return static_cast<int>(slab) * kChunksPerSlab + static_cast<int>((p - start) / kChunkSize);
  }
  return -1;
}

}  // namespace muxnet
