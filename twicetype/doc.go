// Package twicetype holds the types every part of twice shares: the
// normalized event that collectors produce, the finding that detectors
// produce, and severities. It has no dependencies on collectors, detectors
// or reports, so each of those can import it without importing each other.
package twicetype
