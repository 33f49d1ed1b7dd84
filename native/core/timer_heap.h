// Indexed binary min-heap of deadlines, at most one per (handle, kind): setting a deadline
// again moves its entry, so the heap never holds more than two entries per connection.
#ifndef MUXNET_CORE_TIMER_HEAP_H_
#define MUXNET_CORE_TIMER_HEAP_H_

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace muxnet {

class TimerHeap {
 public:
  struct Entry {
    int64_t when_ms;  // monotonic
    int32_t id;       // handle id
    int32_t kind;     // 1 = read deadline, 2 = write deadline
    int32_t tag;      // the owner's generation of this deadline, reported back with it
  };

  // Sets or moves the deadline of (id, kind).
  void Set(int32_t id, int32_t kind, int64_t when_ms, int32_t tag);
  // Removes the deadline of (id, kind) if there is one.
  void Cancel(int32_t id, int32_t kind);
  bool empty() const { return heap_.empty(); }
  // The earliest entry; the heap must not be empty.
  const Entry& top() const { return heap_.front(); }
  void Pop();

 private:
  static int64_t Key(int32_t id, int32_t kind) { return (int64_t{id} << 2) | kind; }
  void Place(size_t i, const Entry& e);
  void Up(size_t i);
  void Down(size_t i);
  void RemoveAt(size_t i);

  std::vector<Entry> heap_;
  std::unordered_map<int64_t, size_t> position_;  // Key(id, kind) -> index in heap_
};

}  // namespace muxnet

#endif  // MUXNET_CORE_TIMER_HEAP_H_
