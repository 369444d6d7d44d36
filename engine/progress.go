package engine

// FindingsMade returns how many distinct findings the detectors have made
// so far. Unlike the other methods it may be called from any goroutine
// while Run runs, to show progress; most findings are made when the
// horizon releases the state they are about, or at Finish.
func (e *Engine) FindingsMade() int64 { return e.det.Findings().Made() }
