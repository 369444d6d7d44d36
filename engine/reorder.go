package engine

import "github.com/twicehq/twice/twicetype"

// reorderBuffer holds events until they can be released in event-time
// order of (time, arrival). Input is mostly in order, so events that come
// in order go to a FIFO run (O(1)); only the others pay for a min-heap,
// whose keys are inline so comparisons do not chase pointers.
type reorderBuffer struct {
	run   []bufItem // in order; run[head:] is live
	head  int
	items []bufItem // heap
}

type bufItem struct {
	time int64
	seq  uint64
	ev   *twicetype.Event
}

func (b *reorderBuffer) len() int { return len(b.run) - b.head + len(b.items) }

func before(x, y *bufItem) bool {
	return x.time < y.time || (x.time == y.time && x.seq < y.seq)
}

// push adds an item; seq must grow with every push.
func (b *reorderBuffer) push(it bufItem) {
	if n := len(b.run); n == b.head || !before(&it, &b.run[n-1]) {
		if b.head > 0 && b.head == len(b.run) {
			b.run, b.head = b.run[:0], 0
		} else if b.head >= 4096 && 2*b.head >= len(b.run) {
			// Reuse the spent front of the run.
			n := copy(b.run, b.run[b.head:])
			clear(b.run[n:])
			b.run, b.head = b.run[:n], 0
		}
		b.run = append(b.run, it)
		return
	}
	b.pushHeap(it)
}

// min returns the earliest item; the buffer must not be empty.
func (b *reorderBuffer) min() *bufItem {
	if b.head < len(b.run) && (len(b.items) == 0 || before(&b.run[b.head], &b.items[0])) {
		return &b.run[b.head]
	}
	return &b.items[0]
}

// pop removes and returns the earliest item.
func (b *reorderBuffer) pop() bufItem {
	if b.head < len(b.run) && (len(b.items) == 0 || before(&b.run[b.head], &b.items[0])) {
		it := b.run[b.head]
		b.run[b.head] = bufItem{}
		b.head++
		return it
	}
	return b.popHeap()
}

func (b *reorderBuffer) less(i, k int) bool { return before(&b.items[i], &b.items[k]) }

func (b *reorderBuffer) pushHeap(it bufItem) {
	b.items = append(b.items, it)
	for i := len(b.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !b.less(i, p) {
			break
		}
		b.items[p], b.items[i] = b.items[i], b.items[p]
		i = p
	}
}

func (b *reorderBuffer) popHeap() bufItem {
	top := b.items[0]
	n := len(b.items) - 1
	b.items[0] = b.items[n]
	b.items[n] = bufItem{}
	b.items = b.items[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && b.less(l, m) {
			m = l
		}
		if l+1 < n && b.less(l+1, m) {
			m = l + 1
		}
		if m == i {
			break
		}
		b.items[m], b.items[i] = b.items[i], b.items[m]
		i = m
	}
	return top
}
