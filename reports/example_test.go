package reports_test

import (
	"os"
	"time"

	"github.com/twicehq/twice/reports"
	"github.com/twicehq/twice/twicetype"
)

func ExampleNew_json() {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC).UnixNano()
	report := &twicetype.Report{
		Summary: twicetype.Summary{
			Events: 4, Jobs: 1, Effects: 2,
			From: t0, To: t0 + int64(2*time.Minute),
			Findings: map[string]int{twicetype.DuplicateEffect: 1, twicetype.MissingEffect: 0},
		},
		Findings: []twicetype.Finding{{
			Detector:    twicetype.DuplicateEffect,
			Severity:    twicetype.High,
			Subject:     "receipt/payment:123",
			Fingerprint: twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/payment:123"),
			Count:       2,
			FirstTime:   t0 + int64(time.Minute),
			LastTime:    t0 + int64(2*time.Minute),
			Jobs:        []string{"j-1"},
			Events:      []string{"e-3", "e-4"},
			Cause:       "redelivery",
			Message:     "email.sent receipt/payment:123 happened 2 times",
		}},
	}
	rep, err := reports.New("json", reports.Options{})
	if err != nil {
		panic(err)
	}
	if err := rep.Write(os.Stdout, report); err != nil {
		panic(err)
	}
	// Output:
	// {
	//   "version": 1,
	//   "summary": {
	//     "events": 4,
	//     "repeated_ids": 0,
	//     "malformed": 0,
	//     "jobs": 1,
	//     "effects": 2,
	//     "pending": 0,
	//     "from": "2026-11-24T10:00:00.000Z",
	//     "to": "2026-11-24T10:02:00.000Z",
	//     "findings": {
	//       "duplicate-effect": 1,
	//       "missing-effect": 0
	//     },
	//     "late": 0,
	//     "evicted": 0,
	//     "malformed_lines": []
	//   },
	//   "scorecard": [],
	//   "findings": [
	//     {
	//       "detector": "duplicate-effect",
	//       "severity": "high",
	//       "subject": "receipt/payment:123",
	//       "fingerprint": "155942469a7f5bb49bfe815403faab62",
	//       "count": 2,
	//       "first_ts": "2026-11-24T10:01:00.000Z",
	//       "last_ts": "2026-11-24T10:02:00.000Z",
	//       "jobs": [
	//         "j-1"
	//       ],
	//       "events": [
	//         "e-3",
	//         "e-4"
	//       ],
	//       "cause": "redelivery",
	//       "message": "email.sent receipt/payment:123 happened 2 times",
	//       "details": {}
	//     }
	//   ]
	// }
}
