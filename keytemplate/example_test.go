package keytemplate_test

import (
	"fmt"

	"github.com/twicehq/twice/keytemplate"
)

func Example() {
	tmpl, err := keytemplate.Parse("{{job_type}}:{{attrs.payment_id}}")
	if err != nil {
		panic(err)
	}
	job := keytemplate.Fields{
		JobType: "SendReceipt",
		JobID:   "j-1",
		Attrs:   []byte(`{"payment_id": 123, "customer": {"id": "c-7"}}`),
	}
	fmt.Println(tmpl.Render(job))
	fmt.Println(tmpl.Fields())

	// A placeholder that cannot be rendered sets no effect key.
	fmt.Println(keytemplate.MustParse("receipt/{{key}}").Render(job))

	_, err = keytemplate.Parse("receipt/{{kee}}")
	fmt.Println(err)
	// Output:
	// SendReceipt:123 true
	// [job_type attrs.payment_id]
	//  false
	// column 11 of "receipt/{{kee}}": unknown field "kee" (known: key, entity, job_id, job_type, queue, attrs.NAME)
}
