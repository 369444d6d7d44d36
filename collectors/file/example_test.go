package file_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/twicehq/twice/collectors/file"
)

func Example() {
	input := `{"id":"e-1","ts":"2026-11-24T10:00:00Z","kind":"job.started","job_id":"j-1","attempt":1}

{"id":"e-2","ts":1795514401000,"kind":"job.succeeded","job_id":"j-1"}
{"ts":1795514402000,"kind":"job.exploded"}
`
	ctx := context.Background()
	c := file.New("-", file.Options{Stdin: strings.NewReader(input)})
	if err := c.Start(ctx); err != nil {
		panic(err)
	}
	defer c.Shutdown(ctx)
	for {
		b, err := c.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		for _, ev := range b.Events {
			fmt.Println(ev.Ref(), ev.Kind, ev.JobID)
		}
		for _, m := range b.Malformed {
			fmt.Println(m.Error())
		}
	}
	// Output:
	// e-1 job.started j-1
	// e-2 job.succeeded j-1
	// -:4: unknown kind "job.exploded"
}
