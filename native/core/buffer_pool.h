// Per-loop pool of fixed-size read chunks carved from large slabs. Slabs are allocated by
// the owner (the addon makes each one a JS ArrayBuffer registered once), never freed while
// the pool lives, and chunks are handed out by index so JS can find them without a call.
#ifndef MUXNET_CORE_BUFFER_POOL_H_
#define MUXNET_CORE_BUFFER_POOL_H_

#include <cstddef>
#include <functional>
#include <vector>

namespace muxnet {

class BufferPool {
 public:
  // 64 KiB chunks: one read(2) takes what a busy TCP socket usually holds (Node reads
  // 64 KiB too); 16 chunks a slab keeps the number of registered ArrayBuffers small.
  static constexpr size_t kChunkSize = 64 * 1024;
  static constexpr int kChunksPerSlab = 16;
  static constexpr size_t kSlabSize = kChunkSize * kChunksPerSlab;

  // allocate_slab(i) returns the memory of slab i (kSlabSize bytes), or nullptr.
  // max_slabs bounds the pool: when every chunk is out, Acquire fails.
  BufferPool(std::function<char*(int slab)> allocate_slab, int max_slabs);

  // A free chunk's index, or -1 when the pool is exhausted. Valid until Release(index).
  int Acquire();
  // Returns a chunk: 0, or -EINVAL for an index that is not out (nothing changes).
  int Release(int index);
  char* Data(int index) const;
  // The chunk whose memory holds `p`, or -1 when `p` is not the pool's.
  int ChunkOf(const char* p) const;
  int slabs() const { return static_cast<int>(slabs_.size()); }
  int capacity() const { return max_slabs_ * kChunksPerSlab; }
  int in_use() const { return in_use_; }

 private:
  std::function<char*(int)> allocate_slab_;
  int max_slabs_;
  std::vector<char*> slabs_;
  std::vector<int> free_;      // LIFO: the chunk used last is the one warm in the cache
  std::vector<bool> out_;      // by chunk index
  int in_use_ = 0;
};

}  // namespace muxnet

#endif  // MUXNET_CORE_BUFFER_POOL_H_
