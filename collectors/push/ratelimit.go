package push

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxRate is how many requests per second a push source's HTTP
// endpoint answers (`max_rate`) before it answers 429: far above what a
// provider's webhooks or an exporter send, low enough that a runaway
// client cannot fill the source's memory and disk.
const DefaultMaxRate = 1000

// ResultRateLimited is the Count result of a request answered 429
// because the source's max_rate was exceeded.
const ResultRateLimited = "rate_limited"

// rateLimiter is a token bucket: rate tokens per second, holding at most
// one second's worth, full at the start.
type rateLimiter struct {
	rate float64
	now  func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{rate: rate, now: now, tokens: rate}
}

// take takes a token; when there is none it returns how long until one
// is there.
func (l *rateLimiter) take() (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if !l.last.IsZero() {
		l.tokens = math.Min(l.rate, l.tokens+t.Sub(l.last).Seconds()*l.rate)
	}
	l.last = t
	if l.tokens >= 1 {
		l.tokens--
		return true, 0
	}
	return false, time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
}

// RateLimited wraps h so that past rate requests per second (in bursts
// of up to one second's worth) a request is answered 429 Too Many
// Requests with a Retry-After in whole seconds and counted in s as
// ResultRateLimited, before h reads its body. rate <= 0 means no limit.
// now is the clock (nil: time.Now).
func RateLimited(s *Stream, h http.Handler, rate float64, now func() time.Time) http.Handler {
	if rate <= 0 {
		return h
	}
	l := newRateLimiter(rate, now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.take(); !ok {
			s.Count(ResultRateLimited)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			http.Error(w, "too many requests: this source answers at most "+strconv.FormatFloat(rate, 'f', -1, 64)+" per second (max_rate)", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}
