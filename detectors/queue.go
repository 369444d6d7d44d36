package detectors

// fifo is a growable ring buffer.
type fifo[T any] struct {
	buf        []T
	head, size int
}

func (q *fifo[T]) len() int { return q.size }

func (q *fifo[T]) push(v T) {
	if q.size == len(q.buf) {
		n := max(16, 2*len(q.buf))
		nb := make([]T, n)
		for i := 0; i < q.size; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = v
	q.size++
}

func (q *fifo[T]) peek() *T { return &q.buf[q.head] }

func (q *fifo[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return v
}

// timer is a deadline with a payload.
type timer[T any] struct {
	at int64
	v  T
}

// timers is a priority queue of deadlines tuned for event-time streams:
// deadlines mostly arrive in order (time + a fixed duration), so they go to
// a FIFO, and only the out-of-order ones (late events, several durations)
// pay for a heap.
type timers[T any] struct {
	inOrder fifo[timer[T]]
	last    int64
	heap    []timer[T]
}

func (q *timers[T]) len() int { return q.inOrder.len() + len(q.heap) }

func (q *timers[T]) push(at int64, v T) {
	if q.inOrder.len() == 0 || at >= q.last {
		q.inOrder.push(timer[T]{at, v})
		q.last = at
		return
	}
	q.heap = append(q.heap, timer[T]{at, v})
	for i := len(q.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if q.heap[p].at <= q.heap[i].at {
			break
		}
		q.heap[p], q.heap[i] = q.heap[i], q.heap[p]
		i = p
	}
}

// next returns the earliest deadline; ok is false when empty.
func (q *timers[T]) next() (at int64, ok bool) {
	switch {
	case q.inOrder.len() == 0 && len(q.heap) == 0:
		return 0, false
	case q.inOrder.len() == 0:
		return q.heap[0].at, true
	case len(q.heap) == 0 || q.inOrder.peek().at <= q.heap[0].at:
		return q.inOrder.peek().at, true
	}
	return q.heap[0].at, true
}

// pop removes and returns the earliest deadline.
func (q *timers[T]) pop() timer[T] {
	if len(q.heap) == 0 || (q.inOrder.len() > 0 && q.inOrder.peek().at <= q.heap[0].at) {
		return q.inOrder.pop()
	}
	top := q.heap[0]
	n := len(q.heap) - 1
	q.heap[0] = q.heap[n]
	var zero timer[T]
	q.heap[n] = zero
	q.heap = q.heap[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && q.heap[l].at < q.heap[m].at {
			m = l
		}
		if l+1 < n && q.heap[l+1].at < q.heap[m].at {
			m = l + 1
		}
		if m == i {
			break
		}
		q.heap[m], q.heap[i] = q.heap[i], q.heap[m]
		i = m
	}
	return top
}

// popUntil pops every timer with at < t (or at <= t when inclusive) and
// calls fire for each, earliest first.
func (q *timers[T]) popUntil(t int64, inclusive bool, fire func(at int64, v T)) {
	for {
		at, ok := q.next()
		if !ok || at > t || (at == t && !inclusive) {
			return
		}
		x := q.pop()
		fire(x.at, x.v)
	}
}
