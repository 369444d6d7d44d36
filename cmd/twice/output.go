package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// reportFile is where -o writes the report: a temporary file in the same
// folder, created before the audit runs (so a mistyped -o fails at once)
// and renamed into place only when the whole report is written. On any
// error, or an interrupt, the temporary file is removed and the path
// named by -o is left as it was: never empty, never half a report.
type reportFile struct {
	path string
	tmp  *os.File
	done bool
}

// createReportFile prepares the report file at path; nil for stdout ("" or
// "-").
func createReportFile(path string) (*reportFile, error) {
	if path == "" || path == "-" {
		return nil, nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("cannot write in %s: %w", dir, pe.Err)
		}
		return nil, err
	}
	return &reportFile{path: path, tmp: tmp}, nil
}

// commit writes data and renames the file into place. The file keeps the
// mode of the one it replaces, or gets 0644.
func (r *reportFile) commit(data []byte) error {
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(r.path); err == nil {
		mode = fi.Mode().Perm()
	}
	_, err := r.tmp.Write(data)
	if err == nil {
		err = r.tmp.Chmod(mode)
	}
	if err == nil {
		err = r.tmp.Sync()
	}
	if cerr := r.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(r.tmp.Name(), r.path)
	}
	if err != nil {
		os.Remove(r.tmp.Name())
		return fmt.Errorf("write report %s: %w", r.path, err)
	}
	r.done = true
	return nil
}

// abort removes the temporary file unless the report was committed. It is
// safe on nil and more than once.
func (r *reportFile) abort() {
	if r == nil || r.done {
		return
	}
	r.done = true
	r.tmp.Close()
	os.Remove(r.tmp.Name())
}
