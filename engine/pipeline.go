package engine

import (
	"github.com/twicehq/twice/twicetype"
)

// pipelineChunk is how many ordered events travel to the detectors at
// once: enough to make the channel's cost per event negligible, small
// enough to keep both goroutines busy.
const pipelineChunk = 512

// pipeline runs the detectors on a goroutine of their own, so that on a
// machine with two cores identity, ordering and parsing overlap with
// detection. Events keep their order: one producer, one consumer, FIFO.
type pipeline struct {
	chunk []*twicetype.Event
	ch    chan []*twicetype.Event
	free  chan []*twicetype.Event
	done  chan struct{}
}

// startPipeline moves detection to its own goroutine until Finish (or
// stopPipeline). Run calls it; a caller that feeds Add itself may too.
func (e *Engine) startPipeline() {
	if e.pipe != nil || e.finished != nil {
		return
	}
	p := &pipeline{
		ch:   make(chan []*twicetype.Event, 8),
		free: make(chan []*twicetype.Event, 10),
		done: make(chan struct{}),
	}
	p.chunk = make([]*twicetype.Event, 0, pipelineChunk)
	go func() {
		defer close(p.done)
		for c := range p.ch {
			for _, ev := range c {
				e.det.Process(ev)
			}
			clear(c)
			select {
			case p.free <- c[:0]:
			default:
			}
		}
	}()
	e.pipe = p
}

func (p *pipeline) send(ev *twicetype.Event) {
	p.chunk = append(p.chunk, ev)
	if len(p.chunk) < pipelineChunk {
		return
	}
	p.ch <- p.chunk
	select {
	case p.chunk = <-p.free:
	default:
		p.chunk = make([]*twicetype.Event, 0, pipelineChunk)
	}
}

// stopPipeline sends what is left, waits for the detectors to take every
// event, and goes back to detecting in line. It is safe to call twice.
func (e *Engine) stopPipeline() {
	p := e.pipe
	if p == nil {
		return
	}
	if len(p.chunk) > 0 {
		p.ch <- p.chunk
	}
	close(p.ch)
	<-p.done
	e.pipe = nil
}
