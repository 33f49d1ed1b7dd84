// Timer heap: see timer_heap.h.
#include "timer_heap.h"

namespace muxnet {

void TimerHeap::Place(size_t i, const Entry& e) {
  heap_[i] = e;
  position_[Key(e.id, e.kind)] = i;
}

void TimerHeap::Up(size_t i) {
  Entry e = heap_[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (heap_[parent].when_ms <= e.when_ms) break;
    Place(i, heap_[parent]);
    i = parent;
  }
  Place(i, e);
}

void TimerHeap::Down(size_t i) {
  Entry e = heap_[i];
  size_t n = heap_.size();
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1].when_ms < heap_[child].when_ms) child++;
    if (e.when_ms <= heap_[child].when_ms) break;
    Place(i, heap_[child]);
    i = child;
  }
  Place(i, e);
}

void TimerHeap::Set(int32_t id, int32_t kind, int64_t when_ms, int32_t tag) {
  auto it = position_.find(Key(id, kind));
  if (it == position_.end()) {
    heap_.push_back(Entry{when_ms, id, kind, tag});
    Up(heap_.size() - 1);
    return;
  }
  size_t i = it->second;
  int64_t old = heap_[i].when_ms;
  heap_[i].when_ms = when_ms;
  heap_[i].tag = tag;
  if (when_ms < old) Up(i); else Down(i);
}

void TimerHeap::RemoveAt(size_t i) {
  position_.erase(Key(heap_[i].id, heap_[i].kind));
  Entry last = heap_.back();
  heap_.pop_back();
  if (i == heap_.size()) return;
  Place(i, last);
  Up(i);
  Down(position_[Key(last.id, last.kind)]);
}

void TimerHeap::Cancel(int32_t id, int32_t kind) {
  auto it = position_.find(Key(id, kind));
  if (it != position_.end()) RemoveAt(it->second);
}

void TimerHeap::Pop() { RemoveAt(0); }

}  // namespace muxnet
