// TimerHeap against a map model, randomized with a fixed seed.
#include <map>
#include <random>

#include "../core/timer_heap.h"
#include "check.h"

using muxnet::TimerHeap;

namespace {
using Model = std::map<std::pair<int, int>, std::pair<int64_t, int32_t>>;  // (id,kind) -> (when,tag)

int64_t ModelMin(const Model& m) {
  int64_t mn = INT64_MAX;
  for (const auto& kv : m) mn = std::min(mn, kv.second.first);
  return mn;
}

void CheckTopAndPop(TimerHeap& h, Model& m, int round, int op) {
  const TimerHeap::Entry e = h.top();
  auto it = m.find({e.id, e.kind});
  CHECK(it != m.end(), "round %d op %d: top (%d,%d) not in the model", round, op, e.id, e.kind);
  CHECK(e.when_ms == ModelMin(m), "round %d op %d: top when %lld, min %lld", round, op,
        static_cast<long long>(e.when_ms), static_cast<long long>(ModelMin(m)));
  CHECK(it->second.first == e.when_ms && it->second.second == e.tag,
        "round %d op %d: entry (%d,%d) has stale when/tag", round, op, e.id, e.kind);
  h.Pop();
  m.erase(it);
}
}  // namespace

TEST(timer_heap_matches_model) {
  std::mt19937 rng(20240601);
  for (int round = 0; round < 40; round++) {
    TimerHeap h;
    Model m;
    int ids = 1 + rng() % 60;
    for (int op = 0; op < 3000; op++) {
      int id = rng() % ids, kind = 1 + rng() % 2;
      int r = rng() % 10;
      if (r < 5) {
        int64_t when = rng() % 200;
        int32_t tag = static_cast<int32_t>(rng());
        h.Set(id, kind, when, tag);
        m[{id, kind}] = {when, tag};
      } else if (r < 8) {
        h.Cancel(id, kind);  // also of entries that are not there
        m.erase({id, kind});
      } else if (!m.empty()) {
        CheckTopAndPop(h, m, round, op);
      }
      CHECK(h.empty() == m.empty(), "round %d op %d: empty() disagrees", round, op);
    }
    int64_t last = INT64_MIN;
    while (!m.empty()) {
      CHECK(h.top().when_ms >= last, "round %d: drain out of order", round);
      last = h.top().when_ms;
      CheckTopAndPop(h, m, round, -1);
    }
    CHECK(h.empty(), "round %d: heap not empty after drain", round);
  }
}

TEST(timer_heap_set_again_moves_entry) {
  TimerHeap h;
  h.Set(1, 1, 100, 7);
  h.Set(2, 1, 50, 8);
  h.Set(1, 1, 10, 9);  // moved earlier, new tag
  CHECK(h.top().id == 1 && h.top().when_ms == 10 && h.top().tag == 9);
  h.Set(1, 1, 500, 10);  // moved later
  CHECK(h.top().id == 2);
  h.Pop();
  CHECK(h.top().id == 1 && h.top().when_ms == 500 && h.top().tag == 10);
  h.Pop();
  CHECK(h.empty(), "one entry per (id, kind): heap should be empty");
}
