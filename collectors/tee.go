package collectors

import "context"

// Tee returns a collector that hands every batch of c to fn before
// returning it: a copy of the input on its way to the engine (twice audit
// --to writes it to a store). An error of fn ends the collection.
func Tee(c Collector, fn func(ctx context.Context, b *Batch) error) Collector {
	return &tee{Collector: c, fn: fn}
}

type tee struct {
	Collector
	fn func(ctx context.Context, b *Batch) error
}

func (t *tee) Next(ctx context.Context) (*Batch, error) {
	b, err := t.Collector.Next(ctx)
	if err != nil {
		return b, err
	}
	if err := t.fn(ctx, b); err != nil {
		return nil, err
	}
	return b, nil
}
