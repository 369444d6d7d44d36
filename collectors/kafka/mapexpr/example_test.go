package mapexpr_test

import (
	"fmt"
	"time"

	"github.com/twicehq/twice/collectors/kafka/mapexpr"
)

func Example() {
	kind := mapexpr.MustCompile(`value.type == "sent" ? "effect" : "state"`)
	key := mapexpr.MustCompile(`"receipt/" + value.payment_id`)
	ms := mapexpr.MustCompile(`unix_ms(timestamp)`)
	env := &mapexpr.Env{
		Value:     map[string]any{"type": "sent", "payment_id": "p-1"},
		Timestamp: time.UnixMilli(1700000000123),
	}
	var r mapexpr.Runner
	for _, p := range []*mapexpr.Program{kind, key, ms} {
		v, err := r.Run(p, env)
		fmt.Println(v, err)
	}
	_, err := mapexpr.Compile(`valu.type`)
	fmt.Println(err)
	// Output:
	// effect <nil>
	// receipt/p-1 <nil>
	// 1700000000123 <nil>
	// unknown name valu (column 1 of the expression)
}
