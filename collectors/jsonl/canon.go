package jsonl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonicalize returns the canonical form of the JSON value data, the form
// whose hash is the identity of an event without "id" (spec §1):
//
//   - no whitespace outside strings;
//   - object members sorted by key, recursively; keys compare as the bytes
//     of their canonical encoding (for keys without escapes, quotes,
//     backslashes or control characters that is their UTF-8 bytes); of
//     duplicate keys only the first is kept;
//   - numbers exactly as written (1, 1.0 and 1e0 stay distinct);
//   - strings re-encoded: escapes decoded and the result written as UTF-8,
//     escaping only '"' and '\' (as \" and \\) and control characters
//     (\b \f \n \r \t, else \u00xx); a lone surrogate escape is kept as a
//     lowercase \udxxx escape, so it stays distinct from U+FFFD.
//
// Canonicalize is idempotent. It returns an error when data is not valid
// UTF-8 or not valid JSON.
func Canonicalize(data []byte) ([]byte, error) {
	var p Parser
	return p.AppendCanonical(nil, data)
}

// AppendCanonical appends the canonical form of the JSON value data to dst
// (see Canonicalize), reusing the parser's buffers.
func (p *Parser) AppendCanonical(dst, data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return dst, errors.New(reasonUTF8)
	}
	defer p.release()
	if !p.sc.scan(data) {
		return dst, errors.New(p.sc.err)
	}
	return p.appendCanon(dst, 0), nil
}

// member is an object member being sorted: val is its value's node, and
// prefix the first eight bytes of its key's canonical form, big-endian,
// zero-padded. A key without escapes is its own canonical form; the others
// are written to p.keys, at p.keySpans[esc-1] (esc is 0 for the others).
type member struct {
	prefix uint64
	val    int32
	esc    int32
}

func (p *Parser) memberKey(m member) []byte {
	if m.esc == 0 {
		v := &p.sc.nodes[m.val]
		return p.sc.b[v.kstart+1 : v.kend-1]
	}
	sp := p.keySpans[m.esc-1]
	return p.keys[sp[0]:sp[1]]
}

// less orders members by key. Canonical keys contain no zero byte, so
// comparing zero-padded prefixes first is exact.
func (p *Parser) less(a, b member) bool {
	if a.prefix != b.prefix {
		return a.prefix < b.prefix
	}
	return bytes.Compare(p.memberKey(a), p.memberKey(b)) < 0
}

// rawKeyPrefix is keyPrefix(line[start:end]), loading eight bytes at once
// when the line is long enough.
func rawKeyPrefix(line []byte, start, end int) uint64 {
	if start+8 > len(line) {
		return keyPrefix(line[start:end])
	}
	v := binary.BigEndian.Uint64(line[start:])
	if n := end - start; n < 8 {
		v &^= 1<<(8*(8-n)) - 1
	}
	return v
}

func keyPrefix(k []byte) uint64 {
	if len(k) >= 8 {
		return binary.BigEndian.Uint64(k)
	}
	var v uint64
	for i := range 8 {
		v <<= 8
		if i < len(k) {
			v |= uint64(k[i])
		}
	}
	return v
}

// appendCanon appends the canonical form of the tape subtree at idx.
func (p *Parser) appendCanon(dst []byte, idx int32) []byte {
	nodes := p.sc.nodes
	n := &nodes[idx]
	line := p.sc.b
	switch n.typ {
	case typeString:
		if !n.esc {
			return append(dst, line[n.start:n.end]...)
		}
		dst = append(dst, '"')
		dst = appendCanonString(dst, line[n.start+1:n.end-1])
		return append(dst, '"')
	case typeArray:
		dst = append(dst, '[')
		for c := idx + 1; c < n.next; c = nodes[c].next {
			if c != idx+1 {
				dst = append(dst, ',')
			}
			dst = p.appendCanon(dst, c)
		}
		return append(dst, ']')
	case typeObject:
		return p.appendCanonObject(dst, idx)
	default: // numbers and literals as written
		return append(dst, line[n.start:n.end]...)
	}
}

func (p *Parser) appendCanonObject(dst []byte, idx int32) []byte {
	nodes := p.sc.nodes
	line := p.sc.b
	base := len(p.members)
	keyBase, spanBase := len(p.keys), len(p.keySpans)
	for c := idx + 1; c < nodes[idx].next; c = nodes[c].next {
		v := &nodes[c]
		m := member{val: c}
		if v.kesc {
			start := len(p.keys)
			p.keys = appendCanonString(p.keys, line[v.kstart+1:v.kend-1])
			p.keySpans = append(p.keySpans, [2]int32{int32(start), int32(len(p.keys))})
			m.esc = int32(len(p.keySpans))
		}
		if v.kesc {
			m.prefix = keyPrefix(p.memberKey(m))
		} else {
			m.prefix = rawKeyPrefix(line, int(v.kstart+1), int(v.kend-1))
		}
		p.members = append(p.members, m)
	}
	ms := p.members[base:]
	// Stable sort: among equal keys the first stays first.
	if len(ms) <= 16 {
		for i := 1; i < len(ms); i++ {
			m := ms[i]
			j := i
			for ; j > 0 && p.less(m, ms[j-1]); j-- {
				ms[j] = ms[j-1]
			}
			ms[j] = m
		}
	} else {
		slices.SortStableFunc(ms, func(a, b member) int {
			if p.less(a, b) {
				return -1
			}
			if p.less(b, a) {
				return 1
			}
			return 0
		})
	}
	dst = append(dst, '{')
	var prev []byte
	for i := range ms {
		// ms may be stale after a nested call grows p.members, but nested
		// calls only append past ms and truncate back, so what is read
		// here is unchanged.
		m := ms[i]
		key := p.memberKey(m)
		if i > 0 {
			if m.prefix == ms[i-1].prefix && bytes.Equal(key, prev) {
				continue // a duplicate key: the first one counts
			}
			dst = append(dst, ',')
		}
		prev = key
		v := &nodes[m.val]
		if m.esc == 0 && v.start == v.kend+1 && (v.typ < typeString || v.typ == typeString && !v.esc) {
			// "key":value written compactly, value already canonical.
			dst = append(dst, line[v.kstart:v.end]...)
			continue
		}
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, '"', ':')
		dst = p.appendCanon(dst, m.val)
	}
	p.members = p.members[:base]
	p.keys = p.keys[:keyBase]
	p.keySpans = p.keySpans[:spanBase]
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendCanonString appends the canonical encoding (without quotes) of the
// string literal raw (without quotes, already validated).
func appendCanonString(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '\\' {
			i++
		}
		dst = append(dst, raw[:i]...)
		if i == len(raw) {
			break
		}
		c := raw[i+1]
		raw = raw[i+2:]
		switch c {
		case '/':
			dst = append(dst, '/')
		case 'u':
			r := hex4(raw)
			raw = raw[4:]
			if utf16.IsSurrogate(r) {
				if r2, ok := lowSurrogate(raw); ok && r < 0xdc00 {
					dst = utf8.AppendRune(dst, utf16.DecodeRune(r, r2))
					raw = raw[6:]
					continue
				}
				dst = append(dst, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
				continue
			}
			dst = appendCanonRune(dst, r)
		default: // " \ b f n r t stay as they are
			dst = append(dst, '\\', c)
		}
	}
	return dst
}

func appendCanonRune(dst []byte, r rune) []byte {
	switch r {
	case '"', '\\':
		return append(dst, '\\', byte(r))
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	if r < 0x20 {
		return append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
	return utf8.AppendRune(dst, r)
}
