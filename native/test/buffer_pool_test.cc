// BufferPool: bounded by max_slabs, LIFO reuse, Release of a chunk that is not out fails,
// ChunkOf finds the chunk a pointer lies in.
#include <cerrno>
#include <cstdlib>
#include <set>
#include <vector>

#include "../core/buffer_pool.h"
#include "check.h"

using muxnet::BufferPool;

TEST(buffer_pool_bounded_and_release_checked) {
  std::vector<char*> slabs;
  {
    BufferPool pool(
        [&](int) {
          char* p = static_cast<char*>(malloc(BufferPool::kSlabSize));
          slabs.push_back(p);
          return p;
        },
        2);
    std::set<int> out;
    for (int i = 0; i < 2 * BufferPool::kChunksPerSlab; i++) {
      int c = pool.Acquire();
      CHECK(c >= 0 && out.insert(c).second, "Acquire %d -> %d", i, c);
      char* d = pool.Data(c);
      d[0] = 1;
      d[BufferPool::kChunkSize - 1] = 2;  // ASan: the whole chunk is inside its slab
    }
    CHECK(pool.Acquire() == -1, "pool not bounded by max_slabs");
    // ChunkOf: any byte of a chunk names it; memory outside the slabs names none.
    for (int x : out) {
      CHECK(pool.ChunkOf(pool.Data(x)) == x && pool.ChunkOf(pool.Data(x) + BufferPool::kChunkSize - 1) == x,
            "ChunkOf inside chunk %d", x);
    }
    char outside[8];
    CHECK(pool.ChunkOf(outside) == -1, "ChunkOf of memory that is not the pool's");
    CHECK(pool.slabs() == 2 && pool.in_use() == 2 * BufferPool::kChunksPerSlab);
    int c = *out.begin();
    CHECK(pool.Release(c) == 0);
    CHECK(pool.Release(c) == -EINVAL, "double release accepted");
    CHECK(pool.Release(-1) == -EINVAL && pool.Release(1 << 20) == -EINVAL);
    CHECK(pool.in_use() == 2 * BufferPool::kChunksPerSlab - 1);
    CHECK(pool.Acquire() == c, "released chunk not reused first (LIFO)");
    for (int x : out) CHECK(pool.Release(x) == 0);
    CHECK(pool.in_use() == 0);
  }
  for (char* p : slabs) free(p);
}

TEST(buffer_pool_slab_allocation_failure) {
  BufferPool pool([](int) -> char* { return nullptr; }, 4);
  CHECK(pool.Acquire() == -1);
  CHECK(pool.slabs() == 0 && pool.in_use() == 0);
}
