package idempotency

// queued is one insertion, in creation order.
type queued struct {
	key scopedKey
	e   *entry
}

// queue is a FIFO over a slice: pops advance a head index and the slice
// is compacted once half of it is dead, so push and pop are amortised
// O(1). A queue that shrank a lot gives its large array back.
type queue struct {
	items []queued
	head  int
}

func (q *queue) push(x queued) { q.items = append(q.items, x) }

func (q *queue) front() (queued, bool) {
	if q.head == len(q.items) {
		return queued{}, false
	}
	return q.items[q.head], true
}

func (q *queue) pop() {
	q.items[q.head] = queued{} // let the entry be collected
	q.head++
	if q.head >= 64 && q.head*2 >= len(q.items) {
		q.keep(func(queued) bool { return true })
	}
}

func (q *queue) len() int { return len(q.items) - q.head }

// keep drops the items for which live is false, keeping the order, and
// shrinks the array when it is mostly empty. It costs O(len), so callers
// run it only after O(len) pops or removals.
func (q *queue) keep(live func(queued) bool) {
	var out []queued
	if n := q.len(); cap(q.items) > 4*n+64 {
		out = make([]queued, 0, 2*n)
	} else {
		out = q.items[:0]
	}
	for i := q.head; i < len(q.items); i++ {
		if x := q.items[i]; live(x) {
			out = append(out, x)
		}
	}
	clear(q.items[len(out):]) // harmless when out is a new array
	q.items, q.head = out, 0
}
