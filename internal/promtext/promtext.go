// Package promtext reads a Prometheus text endpoint, for tests and
// benchmarks that watch twice watch from outside.
package promtext

import (
	"bufio"
	"net/http"
	"regexp"
	"strconv"
)

var metricLine = regexp.MustCompile(`^(twice_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`)

// Sums returns, for each twice_ metric at http://addr/metrics, the sum of
// its series; nil when the endpoint does not answer.
func Sums(addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := metricLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			out[m[1]] += v
		}
	}
	return out
}
