package jsonl

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is how deeply arrays and objects may nest in one line.
const MaxDepth = 1000

type valueType uint8

const (
	typeNull valueType = iota + 1
	typeFalse
	typeTrue
	typeNumber
	typeString
	typeObject
	typeArray
)

// node is one value on the tape, in document order (preorder). An object's
// children are its members' values, each carrying its key's span; an
// array's are its elements. next is the index of the first node after the subtree, so a
// subtree can be skipped in O(1).
type node struct {
	start, end   int32 // byte span in the line; strings include their quotes
	kstart, kend int32 // an object member's key, with its quotes
	next         int32
	typ          valueType
	esc          bool // a string that contains a backslash escape
	kesc         bool // the key contains a backslash escape
	integer      bool // a number without fraction or exponent
}

// scanner validates JSON and fills the tape.
type scanner struct {
	b     []byte
	pos   int
	depth int
	nodes []node
	err   string // set on failure
}

// scan validates b as one JSON value (with optional surrounding
// whitespace) and fills s.nodes. It reports false with s.err set when b is
// not valid JSON.
func (s *scanner) scan(b []byte) bool {
	s.b = b
	s.pos = 0
	s.depth = 0
	s.nodes = s.nodes[:0]
	s.err = ""
	if len(b) > math.MaxInt32-1 {
		s.err = "line is too long"
		return false
	}
	s.skipWS()
	if s.pos == len(b) {
		s.err = "not valid JSON: empty"
		return false
	}
	if !s.value() {
		return false
	}
	s.skipWS()
	if s.pos != len(b) {
		return s.unexpected("after the value")
	}
	return true
}

func (s *scanner) skipWS() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) fail(msg string) bool {
	s.err = "not valid JSON: " + msg
	return false
}

// unexpected fails on the byte at s.pos (or the end of the line).
func (s *scanner) unexpected(where string) bool {
	if s.pos >= len(s.b) {
		return s.fail("unexpected end of line")
	}
	r, _ := utf8.DecodeRune(s.b[s.pos:])
	return s.fail("unexpected " + strconv.QuoteRune(r) + " " + where + " at column " + strconv.Itoa(s.pos+1))
}

func (s *scanner) value() bool {
	if s.pos >= len(s.b) {
		return s.fail("unexpected end of line")
	}
	switch c := s.b[s.pos]; c {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		return s.str()
	case 't':
		return s.literal("true", typeTrue)
	case 'f':
		return s.literal("false", typeFalse)
	case 'n':
		return s.literal("null", typeNull)
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return s.number()
		}
		return s.unexpected("where a value should be")
	}
}

func (s *scanner) literal(lit string, t valueType) bool {
	if len(s.b)-s.pos < len(lit) || string(s.b[s.pos:s.pos+len(lit)]) != lit {
		return s.unexpected("where a value should be")
	}
	s.nodes = append(s.nodes, node{start: int32(s.pos), end: int32(s.pos + len(lit)), next: int32(len(s.nodes) + 1), typ: t})
	s.pos += len(lit)
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) number() bool {
	b := s.b
	start := s.pos
	i := s.pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.pos = i
		return s.unexpected("in a number")
	}
	integer := true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			return s.unexpected("in a number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.pos = i
			return s.unexpected("in a number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.nodes = append(s.nodes, node{start: int32(start), end: int32(i), next: int32(len(s.nodes) + 1), typ: typeNumber, integer: integer})
	s.pos = i
	return true
}

// strPlain marks the bytes that may appear in a string as they are.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = true
	}
	t['"'] = false
	t['\\'] = false
	return t
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZero is non-zero when a byte of v is zero.
func hasZero(v uint64) uint64 { return (v - lsb) &^ v & msb }

// hasLess is non-zero when a byte of v is below n (n <= 128).
func hasLess(v uint64, n byte) uint64 { return (v - lsb*uint64(n)) &^ v & msb }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *scanner) str() bool {
	start := s.pos
	esc, ok := s.scanString()
	if !ok {
		return false
	}
	s.nodes = append(s.nodes, node{start: int32(start), end: int32(s.pos), next: int32(len(s.nodes) + 1), typ: typeString, esc: esc})
	return true
}

// scanString moves past the string literal at s.pos and reports whether it
// contains an escape.
func (s *scanner) scanString() (esc, ok bool) {
	b := s.b
	start := s.pos
	i := s.pos + 1
	for {
		// Eight bytes at a time while none is '"', '\\' or a control byte.
		// The lowest flagged byte of each mask is exact (borrows only
		// run upwards), so the first special byte is found directly.
		for i+8 <= len(b) {
			v := binary.LittleEndian.Uint64(b[i:])
			if m := hasLess(v, 0x20) | hasZero(v^(lsb*'"')) | hasZero(v^(lsb*'\\')); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			s.pos = i
			return false, s.fail("unterminated string starting at column " + strconv.Itoa(start+1))
		}
		switch c := b[i]; {
		case c == '"':
			s.pos = i + 1
			return esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.pos = i + 1
				return false, s.unexpected("in an escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return false, s.fail("invalid \\u escape at column " + strconv.Itoa(i+1))
				}
				i += 6
			default:
				r, _ := utf8.DecodeRune(b[i+1:])
				return false, s.fail("invalid escape " + strconv.Quote(`\`+string(r)) + " at column " + strconv.Itoa(i+1))
			}
		default:
			return false, s.fail("control character " + strconv.QuoteRune(rune(c)) + " in a string at column " + strconv.Itoa(i+1))
		}
	}
}

func (s *scanner) enter() bool {
	s.depth++
	if s.depth > MaxDepth {
		s.err = "nested deeper than " + strconv.Itoa(MaxDepth) + " levels"
		return false
	}
	return true
}

func (s *scanner) object() bool {
	if !s.enter() {
		return false
	}
	idx := len(s.nodes)
	s.nodes = append(s.nodes, node{start: int32(s.pos), typ: typeObject})
	s.pos++ // {
	s.skipWS()
	if s.pos < len(s.b) && s.b[s.pos] == '}' {
		s.pos++
	} else {
		for {
			if s.pos >= len(s.b) || s.b[s.pos] != '"' {
				return s.unexpected("where an object key should be")
			}
			kstart := s.pos
			kesc, ok := s.scanString()
			if !ok {
				return false
			}
			kend := s.pos
			s.skipWS()
			if s.pos >= len(s.b) || s.b[s.pos] != ':' {
				return s.unexpected("after an object key")
			}
			s.pos++
			s.skipWS()
			v := len(s.nodes)
			if !s.value() {
				return false
			}
			n := &s.nodes[v]
			n.kstart, n.kend, n.kesc = int32(kstart), int32(kend), kesc
			s.skipWS()
			if s.pos < len(s.b) && s.b[s.pos] == ',' {
				s.pos++
				s.skipWS()
				continue
			}
			if s.pos < len(s.b) && s.b[s.pos] == '}' {
				s.pos++
				break
			}
			return s.unexpected("after an object member")
		}
	}
	s.nodes[idx].end = int32(s.pos)
	s.nodes[idx].next = int32(len(s.nodes))
	s.depth--
	return true
}

func (s *scanner) array() bool {
	if !s.enter() {
		return false
	}
	idx := len(s.nodes)
	s.nodes = append(s.nodes, node{start: int32(s.pos), typ: typeArray})
	s.pos++ // [
	s.skipWS()
	if s.pos < len(s.b) && s.b[s.pos] == ']' {
		s.pos++
	} else {
		for {
			if !s.value() {
				return false
			}
			s.skipWS()
			if s.pos < len(s.b) && s.b[s.pos] == ',' {
				s.pos++
				s.skipWS()
				continue
			}
			if s.pos < len(s.b) && s.b[s.pos] == ']' {
				s.pos++
				break
			}
			return s.unexpected("after an array element")
		}
	}
	s.nodes[idx].end = int32(s.pos)
	s.nodes[idx].next = int32(len(s.nodes))
	s.depth--
	return true
}

// hex4 decodes four hex digits, already validated by the scanner.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendUnquoted appends the value of the string literal raw (without its
// quotes, already validated) to dst. Lone surrogates become U+FFFD, as in
// encoding/json.
func appendUnquoted(dst, raw []byte) []byte {
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
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw)
			raw = raw[4:]
			if utf16.IsSurrogate(r) {
				if r2, ok := lowSurrogate(raw); ok && r < 0xdc00 {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						dst = utf8.AppendRune(dst, d)
						raw = raw[6:]
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, c)
		}
	}
	return dst
}

// lowSurrogate reports the \uDC00-\uDFFF escape at the start of raw.
func lowSurrogate(raw []byte) (rune, bool) {
	if len(raw) < 6 || raw[0] != '\\' || raw[1] != 'u' {
		return 0, false
	}
	r := hex4(raw[2:])
	return r, r >= 0xdc00 && r <= 0xdfff
}
