package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PatternError is a path of a file source that is a glob matching no
// file (Bad false: the input is missing) or not a valid glob (Bad true:
// the configuration is wrong).
type PatternError struct {
	Source  string
	Pattern string
	Bad     bool
}

// Error names the source and the pattern.
func (e *PatternError) Error() string {
	if e.Bad {
		return fmt.Sprintf("source %s: %q is not a valid glob", e.Source, e.Pattern)
	}
	return fmt.Sprintf("source %s: no file matches %s", e.Source, e.Pattern)
}

// Files returns what a file source reads: its paths in order, each glob
// (a path with *, ? or [, as path/filepath.Match reads them) replaced by
// the files it matches, sorted. A glob that matches nothing is a
// *PatternError; a plain path is returned as it is, whether or not it
// exists (reading it says so).
func (s *Source) Files() ([]string, error) {
	var out []string
	for _, p := range s.Paths {
		if !strings.ContainsAny(p, "*?[") {
			out = append(out, p)
			continue
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, &PatternError{Source: s.Name, Pattern: p, Bad: true}
		}
		if len(matches) == 0 {
			return nil, &PatternError{Source: s.Name, Pattern: p}
		}
		out = append(out, matches...)
	}
	return out, nil
}

// maxProblemScan bounds the documents problemLine searches.
const maxProblemScan = 256 << 10

// problemLine returns the line on which YAML that does not parse goes
// wrong: the first line by which the text no longer parses, failing with
// the same message msg; 0 when there is none or data is too large to
// search.
//
// The YAML parser reports the line where the enclosing block or flow
// starts (for parser errors, counted from 0), not the line at fault: a
// bad indent on line 4 of a list that starts on line 2 is reported on
// line 1. Parsing growing prefixes of the text finds the first line that
// breaks it, at the cost of parsing a small file once per line, and only
// when it is broken.
func problemLine(data []byte, msg string) int {
	if len(data) > maxProblemScan {
		return 0
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	end := 0
	for i, l := range lines {
		end += len(l)
		if err := decodeAll(data[:end]); err != nil && yamlProblem(err) == msg {
			return i + 1
		}
	}
	return 0
}

// decodeAll parses every document of data and returns the first error.
func decodeAll(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// yamlProblem is the message of a YAML error without "yaml: line N: ".
func yamlProblem(err error) string {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(msg, "yaml: ")
}
