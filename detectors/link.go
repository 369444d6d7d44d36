package detectors

// linkIndex maps a rendered effect key to the jobs whose expectation rules
// render it (spec §1: an effect without job_id links to the jobs whose key,
// rendered by a rule for the effect's type, equals its effect_key). Almost
// every key has one job, so the first is kept inline and a map lookup on
// the key string is all a link costs.
type linkIndex struct {
	rules []Rule
	m     map[string]linkEntry
}

type linkRef struct {
	job  *Job
	rule int
}

type linkEntry struct {
	first linkRef
	more  []linkRef
}

func newLinkIndex(rules []Rule) linkIndex {
	return linkIndex{rules: rules, m: make(map[string]linkEntry)}
}

func (x *linkIndex) add(key string, ref linkRef) {
	e, ok := x.m[key]
	if !ok {
		x.m[key] = linkEntry{first: ref}
		return
	}
	if e.first == ref {
		return
	}
	for _, r := range e.more {
		if r == ref {
			return
		}
	}
	e.more = append(e.more, ref)
	x.m[key] = e
}

func (x *linkIndex) remove(key string, ref linkRef) {
	e, ok := x.m[key]
	if !ok {
		return
	}
	switch {
	case e.first == ref && len(e.more) == 0:
		delete(x.m, key)
		return
	case e.first == ref:
		e.first = e.more[len(e.more)-1]
		e.more = e.more[:len(e.more)-1]
	default:
		for i, r := range e.more {
			if r == ref {
				e.more = append(e.more[:i], e.more[i+1:]...)
				break
			}
		}
	}
	x.m[key] = e
}

// jobs appends to buf the distinct jobs linked to an effect of type effect
// with key key.
func (x *linkIndex) jobs(effect, key string, buf []*Job) []*Job {
	if len(x.m) == 0 {
		return buf
	}
	e, ok := x.m[key]
	if !ok {
		return buf
	}
	buf = x.appendRef(buf, e.first, effect)
	for _, r := range e.more {
		buf = x.appendRef(buf, r, effect)
	}
	return buf
}

func (x *linkIndex) appendRef(buf []*Job, r linkRef, effect string) []*Job {
	if x.rules[r.rule].Effect != effect {
		return buf
	}
	for _, j := range buf {
		if j == r.job {
			return buf
		}
	}
	return append(buf, r.job)
}
