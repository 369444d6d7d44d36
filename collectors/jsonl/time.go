package jsonl

import (
	"errors"
	"math"
)

var (
	errTimeSyntax = errors.New("not an RFC 3339 time")
	errTimeRange  = errors.New("out of range (1677-09-21 to 2262-04-11)")
)

// ParseTime parses an RFC 3339 time ("2026-11-24T10:00:00Z",
// "2026-11-24T11:00:00.123456789+01:00"; "t" and "z" may be lowercase) and
// returns it as Unix nanoseconds. Times that do not fit int64 nanoseconds
// are an error.
//
// It implements the grammar of RFC 3339 §5.6 itself rather than falling
// back to time.Parse, which accepts what RFC 3339 does not ("+24:00",
// "10:00:00,5") and rejects what it allows (lowercase "t" and "z"): the
// result must not depend on which path ran. A fuzz test checks it against
// time.Parse on the inputs both accept.
func ParseTime(s string) (int64, error) { return parseTime(s) }

func parseTime[S string | []byte](s S) (int64, error) {
	sec, nsec, ok := parseRFC3339(s)
	if !ok {
		return 0, errTimeSyntax
	}
	ns, ok := unixNano(sec, nsec)
	if !ok {
		return 0, errTimeRange
	}
	return ns, nil
}

// unixNano returns sec seconds and nsec (0 <= nsec < 1e9) nanoseconds as
// Unix nanoseconds, or false when that does not fit int64.
func unixNano(sec, nsec int64) (int64, bool) {
	const maxSec = math.MaxInt64 / int64(1e9) // 9223372036
	switch {
	case sec > maxSec || sec < -maxSec-1:
		return 0, false
	case sec == maxSec && nsec > math.MaxInt64%int64(1e9):
		return 0, false
	case sec == -maxSec-1:
		// (sec+1)*1e9 + (nsec-1e9) avoids overflowing the product.
		ns := (sec+1)*1e9 + (nsec - 1e9)
		if nsec-1e9 < math.MinInt64%int64(1e9) {
			return 0, false
		}
		return ns, true
	}
	return sec*1e9 + nsec, true
}

func digit(c byte) (int64, bool) {
	d := int64(c) - '0'
	return d, d >= 0 && d <= 9
}

func digits2[S string | []byte](s S, i int) (int64, bool) {
	a, ok1 := digit(s[i])
	b, ok2 := digit(s[i+1])
	return a*10 + b, ok1 && ok2
}

// parseRFC3339 parses YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm), "T" and "Z" in
// either case, into Unix seconds and nanoseconds. It reports false for
// anything else, including out-of-range fields.
func parseRFC3339[S string | []byte](s S) (sec, nsec int64, ok bool) {
	if len(s) < len("2006-01-02T15:04:05Z") ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' && s[10] != 't' || s[13] != ':' || s[16] != ':' {
		return 0, 0, false
	}
	y1, ok1 := digits2(s, 0)
	y2, ok2 := digits2(s, 2)
	mon, ok3 := digits2(s, 5)
	day, ok4 := digits2(s, 8)
	hour, ok5 := digits2(s, 11)
	min, ok6 := digits2(s, 14)
	secs, ok7 := digits2(s, 17)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) {
		return 0, 0, false
	}
	year := y1*100 + y2
	if mon < 1 || mon > 12 || day < 1 || day > daysIn(year, mon) || hour > 23 || min > 59 || secs > 59 {
		return 0, 0, false
	}
	i := 19
	if s[i] == '.' {
		i++
		start := i
		scale := int64(1e8)
		for i < len(s) {
			d, isDig := digit(s[i])
			if !isDig {
				break
			}
			nsec += d * scale // digits past nanoseconds add 0
			scale /= 10
			i++
		}
		if i == start || i == len(s) {
			return 0, 0, false
		}
	}
	var off int64
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(s)-i != 6 || s[i+3] != ':' {
			return 0, 0, false
		}
		oh, okh := digits2(s, i+1)
		om, okm := digits2(s, i+4)
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, 0, false
		}
		off = oh*3600 + om*60
		if s[i] == '-' {
			off = -off
		}
		i += 6
	default:
		return 0, 0, false
	}
	if i != len(s) {
		return 0, 0, false
	}
	sec = daysFromCivil(year, mon, day)*86400 + hour*3600 + min*60 + secs - off
	return sec, nsec, true
}

func daysIn(year, mon int64) int64 {
	switch mon {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic
// Gregorian date (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// unixMillis parses the integer token b (validated JSON integer syntax) as
// Unix milliseconds and returns Unix nanoseconds.
func unixMillis(b []byte) (int64, bool) {
	const maxMs = math.MaxInt64 / int64(1e6) // 9223372036854
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 13 {
		return 0, false
	}
	var ms int64
	for _, c := range b {
		ms = ms*10 + int64(c-'0')
	}
	if ms > maxMs {
		return 0, false
	}
	if neg {
		ms = -ms
	}
	return ms * 1e6, true
}
