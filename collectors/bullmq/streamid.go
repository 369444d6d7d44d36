package bullmq

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// streamID is a Redis stream entry id, "MS-SEQ": the entry's time in Unix
// milliseconds (Redis's clock when it was added) and a sequence number
// within that millisecond. Ids grow along a stream.
type streamID struct {
	ms, seq uint64
}

// parseStreamID reads "MS-SEQ" (or "MS", as Redis accepts).
func parseStreamID(s string) (streamID, error) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return streamID{}, fmt.Errorf("stream id %q: not MS-SEQ", s)
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return streamID{}, fmt.Errorf("stream id %q: not MS-SEQ", s)
		}
	}
	return streamID{ms, seq}, nil
}

// String formats the id as Redis does.
func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

// less reports whether id comes before o.
func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq)
}

// isZero reports whether id is 0-0, before every entry.
func (id streamID) isZero() bool { return id.ms == 0 && id.seq == 0 }

// prev is the id just before id (0-0 stays 0-0).
func (id streamID) prev() streamID {
	switch {
	case id.seq > 0:
		return streamID{id.ms, id.seq - 1}
	case id.ms > 0:
		return streamID{id.ms - 1, math.MaxUint64}
	}
	return id
}

// exclusive is the XRANGE start of the entries after id: "(MS-SEQ".
func (id streamID) exclusive() string { return "(" + id.String() }
