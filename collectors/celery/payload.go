package celery

import (
	"fmt"

	"github.com/twicehq/twice/collectors/jobpath"
)

// checkRoot is where a Celery path starts: a dot path into a task as its
// task-sent and task-received events carry it (spec §3.1) — args.0 (a
// positional argument), kwargs.payment (a keyword argument),
// kwargs.order.id, name. Members by name, list and tuple elements by
// decimal index.
func checkRoot(p string, path jobpath.Path) error {
	switch path[0] {
	case "args", "kwargs", "name":
		return nil
	}
	return fmt.Errorf("path %q: starts with args, kwargs or name (a Celery task's arguments)", p)
}

// mapping holds a source's compiled paths.
type mapping struct{ *jobpath.Mapping }

func newMapping(c *Config) (*mapping, error) {
	m, err := jobpath.NewMapping(c.Key, c.Entity, c.Attrs, checkRoot)
	if err != nil {
		return nil, err
	}
	return &mapping{m}, nil
}

// needsArgs reports whether a path reads args or kwargs (which must then
// be parsed).
func (m *mapping) needsArgs() bool {
	for _, p := range m.Paths() {
		if len(p) > 0 && p[0] != "name" {
			return true
		}
	}
	return false
}
