package twicetype

import (
	"encoding/json"
	"fmt"
)

// Severity ranks findings. Higher values are more severe.
type Severity uint8

// Severities from least to most severe. SeverityNone is the zero value; it
// is never the severity of a finding, and as a --fail-on threshold it means
// "never fail".
const (
	SeverityNone Severity = iota
	Low
	Medium
	High
	Critical
)

// String returns the severity as written in reports and configuration.
func (s Severity) String() string {
	switch s {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	case Critical:
		return "critical"
	}
	return "none"
}

// ParseSeverity parses "critical", "high", "medium", "low" or "none".
func ParseSeverity(s string) (Severity, error) {
	switch s {
	case "critical":
		return Critical, nil
	case "high":
		return High, nil
	case "medium":
		return Medium, nil
	case "low":
		return Low, nil
	case "none":
		return SeverityNone, nil
	}
	return SeverityNone, fmt.Errorf("unknown severity %q (want critical, high, medium or low)", s)
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	v, err := ParseSeverity(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
