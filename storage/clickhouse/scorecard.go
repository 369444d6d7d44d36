package clickhouse

import (
	"context"
	"fmt"

	"github.com/twicehq/twice/detectors"
)

// scorecard counts, per first job_type and queue of a job (its jf
// values; jobs without a job_type left out), the distinct jobs and those
// with more than one job.started: the counters the engine keeps for the
// handler safety scorecard (detectors.ScoreCount). The rest of the
// scorecard derives from the findings, by detectors.Scorecard.
func (q *querySet) scorecard() string {
	return q.with() + `
SELECT jtype, jqueue, toInt64(count()), toInt64(countIf(starts > 1)) FROM (
  SELECT job_id, argMinIf(job_type, o, ` + jobKinds + ` AND job_type != '') AS jtype,
    argMinIf(queue, o, ` + jobKinds + ` AND queue != '') AS jqueue,
    countIf(kind = 'job.started') AS starts
  FROM ev WHERE job_id != '' GROUP BY job_id)
WHERE jtype != '' GROUP BY jtype, jqueue ORDER BY jtype, jqueue`
}

// scoreCounts runs the scorecard query; job types and queues are shown as
// the findings show them (redacted when configured).
func (a *auditRun) scoreCounts(ctx context.Context) ([]detectors.ScoreCount, error) {
	var out []detectors.ScoreCount
	err := a.query(ctx, a.q.scorecard(), func(scan func(...any) error) error {
		var c detectors.ScoreCount
		if err := scan(&c.JobType, &c.Queue, &c.Jobs, &c.Restarted); err != nil {
			return err
		}
		c.JobType, c.Queue = a.show("job_type", c.JobType), a.show("queue", c.Queue)
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse: scorecard: %w", err)
	}
	return out, nil
}
