package config

import (
	"errors"
	"strings"
)

// ReportInvalid records in m, at the lines of the keys they are about, the
// problems a source's Validate found: err is nil, an *Error, or several
// joined by errors.Join, each *Error's Path starting with its key
// ("queues[2]", "attrs.payment"). A problem below a key by name says
// which ("payment: empty path"); one at an index is at its line already. A problem about a secret KEY whose value is
// given as KEY_file or KEY_env is recorded at the key that is written.
//
// decoded, when not nil, names the keys whose values decoded: problems
// at other keys are dropped, since their decoding error is recorded
// already, and a problem about no key at all is recorded only when
// decoded[""] is true, and a problem at a key the mapping does not give
// is dropped (Require reports a missing key). With decoded nil every
// problem is recorded, one at a key not given at the mapping itself.
func (m *SourceMapping) ReportInvalid(err error, decoded map[string]bool) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			m.Errorf("", "%v", e)
			continue
		}
		key, sub := ce.Path, ""
		if i := strings.IndexAny(key, ".["); i >= 0 {
			key, sub = key[:i], strings.TrimPrefix(key[i:], ".")
		}
		if decoded != nil && !decoded[key] {
			continue
		}
		msg := ce.Msg
		if strings.HasPrefix(ce.Path[len(key):], ".") {
			msg = sub + ": " + msg
		}
		at := ""
		for _, k := range []string{key, key + "_file", key + "_env"} {
			if key != "" && m.Has(k) {
				at = k
				break
			}
		}
		switch {
		case at != "":
			m.Errorf(at, "%s", msg)
		case decoded != nil && key != "":
			// Not written: Require reports a missing key.
		case key == "":
			m.Errorf("", "%s", msg)
		default:
			m.Errorf("", "%s: %s", ce.Path, ce.Msg)
		}
	}
}
