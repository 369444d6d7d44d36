package codec

import (
	"encoding/binary"
	"unsafe"

	"github.com/twicehq/twice/twicetype"
)

// An event is a uvarint of presence bits, then the fields whose bit is
// set, in bit order. Zero values are not written, so a typical event costs
// its strings plus a dozen bytes.
const (
	evID = 1 << iota
	evIdentity
	evTime
	evKind
	evQueue
	evJobType
	evJobID
	evKey
	evEffect
	evEffectKey
	evEntity
	evError
	evAttempt
	evHasAttempt
	evSeq
	evHasSeq
	evTerminal
	evHasTerminal
	evRetry
	evHasRetry
	evAttrs // Attrs non-nil (it may be empty)
	evSource
	evLine
	evSecondsLikeTS // added after evLine so that older journals still read

	evAll = evSecondsLikeTS<<1 - 1
)

// AppendEvent appends the encoding of every field of ev to b.
func AppendEvent(b []byte, ev *twicetype.Event) []byte {
	var f uint64
	set := func(bit uint64, on bool) {
		if on {
			f |= bit
		}
	}
	set(evID, ev.ID != "")
	set(evIdentity, ev.Identity != 0)
	set(evTime, ev.Time != 0)
	set(evKind, ev.Kind != 0)
	set(evQueue, ev.Queue != "")
	set(evJobType, ev.JobType != "")
	set(evJobID, ev.JobID != "")
	set(evKey, ev.Key != "")
	set(evEffect, ev.Effect != "")
	set(evEffectKey, ev.EffectKey != "")
	set(evEntity, ev.Entity != "")
	set(evError, ev.Error != "")
	set(evAttempt, ev.Attempt != 0)
	set(evHasAttempt, ev.HasAttempt)
	set(evSeq, ev.Seq != 0)
	set(evHasSeq, ev.HasSeq)
	set(evTerminal, ev.Terminal)
	set(evHasTerminal, ev.HasTerminal)
	set(evRetry, ev.Retry)
	set(evHasRetry, ev.HasRetry)
	set(evAttrs, ev.Attrs != nil)
	set(evSource, ev.Source != "")
	set(evLine, ev.Line != 0)
	set(evSecondsLikeTS, ev.SecondsLikeTS)

	b = binary.AppendUvarint(b, f)
	if f&evID != 0 {
		b = AppendString(b, ev.ID)
	}
	if f&evIdentity != 0 {
		b = binary.LittleEndian.AppendUint64(b, ev.Identity)
	}
	if f&evTime != 0 {
		b = binary.AppendVarint(b, ev.Time)
	}
	if f&evKind != 0 {
		b = append(b, byte(ev.Kind))
	}
	for _, x := range [...]struct {
		bit uint64
		s   string
	}{
		{evQueue, ev.Queue}, {evJobType, ev.JobType}, {evJobID, ev.JobID}, {evKey, ev.Key},
		{evEffect, ev.Effect}, {evEffectKey, ev.EffectKey}, {evEntity, ev.Entity}, {evError, ev.Error},
	} {
		if f&x.bit != 0 {
			b = AppendString(b, x.s)
		}
	}
	if f&evAttempt != 0 {
		b = binary.AppendVarint(b, ev.Attempt)
	}
	if f&evSeq != 0 {
		b = binary.AppendVarint(b, ev.Seq)
	}
	if f&evAttrs != 0 {
		b = binary.AppendUvarint(b, uint64(len(ev.Attrs)))
		b = append(b, ev.Attrs...)
	}
	if f&evSource != 0 {
		b = AppendString(b, ev.Source)
	}
	if f&evLine != 0 {
		b = binary.AppendVarint(b, ev.Line)
	}
	return b
}

// ReadEvent decodes an event written by AppendEvent into ev, replacing
// every field. Strings and Attrs are copies, so ev does not alias r's
// input; all strings of one event share one allocation. On error ev is
// zeroed and the error is also kept in r.
func ReadEvent(r *Reader, ev *twicetype.Event) error {
	*ev = twicetype.Event{}
	f := r.Uvarint()
	if r.err != nil {
		return r.err
	}
	if f&^evAll != 0 {
		r.Failf("bad tag: unknown event fields %#x", f&^evAll)
		return r.err
	}
	// The strings are gathered first and copied into one allocation.
	var spans [10]struct {
		dst *string
		p   []byte
	}
	ns, total := 0, 0
	str := func(bit uint64, dst *string) {
		if f&bit == 0 {
			return
		}
		p := r.span(r.Uvarint())
		spans[ns].dst, spans[ns].p = dst, p
		ns++
		total += len(p)
	}
	str(evID, &ev.ID)
	if f&evIdentity != 0 {
		ev.Identity = r.Uint64()
	}
	if f&evTime != 0 {
		ev.Time = r.Varint()
	}
	if f&evKind != 0 {
		ev.Kind = twicetype.Kind(r.Byte())
	}
	str(evQueue, &ev.Queue)
	str(evJobType, &ev.JobType)
	str(evJobID, &ev.JobID)
	str(evKey, &ev.Key)
	str(evEffect, &ev.Effect)
	str(evEffectKey, &ev.EffectKey)
	str(evEntity, &ev.Entity)
	str(evError, &ev.Error)
	if f&evAttempt != 0 {
		ev.Attempt = r.Varint()
	}
	ev.HasAttempt = f&evHasAttempt != 0
	if f&evSeq != 0 {
		ev.Seq = r.Varint()
	}
	ev.HasSeq = f&evHasSeq != 0
	ev.Terminal = f&evTerminal != 0
	ev.HasTerminal = f&evHasTerminal != 0
	ev.Retry = f&evRetry != 0
	ev.HasRetry = f&evHasRetry != 0
	ev.SecondsLikeTS = f&evSecondsLikeTS != 0
	var attrs []byte
	if f&evAttrs != 0 {
		attrs = r.span(r.Uvarint())
	}
	str(evSource, &ev.Source)
	if f&evLine != 0 {
		ev.Line = r.Varint()
	}
	if r.err != nil {
		*ev = twicetype.Event{}
		return r.err
	}
	if f&evAttrs != 0 {
		ev.Attrs = append(make([]byte, 0, len(attrs)), attrs...)
	}
	if total > 0 {
		buf := make([]byte, 0, total)
		for _, sp := range spans[:ns] {
			buf = append(buf, sp.p...)
		}
		// buf is never written again, so the string may share it.
		all := unsafe.String(unsafe.SliceData(buf), total)
		off := 0
		for _, sp := range spans[:ns] {
			*sp.dst = all[off : off+len(sp.p)]
			off += len(sp.p)
		}
	}
	return nil
}

// Event writes an event (AppendEvent).
func (w *Writer) Event(ev *twicetype.Event) {
	w.b = AppendEvent(w.b, ev)
	w.maybeFlush()
}
