package sidecar

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt holds the checkpoints: one file, one writer, transactions that are
// atomic and durable on commit (copy-on-write B+tree, fsync), pure Go, no
// background compaction to tune. Pebble would write faster, but a
// checkpoint a second is a handful of puts; SQLite would bring cgo or a
// large translated driver for no gain here.

var (
	bucketMeta     = []byte("meta")
	bucketJournal  = []byte("journal")
	bucketOutbox   = []byte("outbox")
	bucketFindings = []byte("findings")
	keyState       = []byte("state")
)

// storeVersion changes when the layout of the store changes.
const storeVersion = 1

// meta is what one checkpoint records besides the journal and outbox.
type meta struct {
	Version    int    `json:"version"`
	ConfigHash string `json:"config_hash"`
	// Snapshot is the file (in the state dir) of the last snapshot; the
	// journal holds what came after it.
	Snapshot string `json:"snapshot,omitempty"`
	// NextJournal is the key of the next journal chunk.
	NextJournal uint64 `json:"next_journal"`
	// NextSeq is the sequence number of the next finding revision.
	NextSeq uint64 `json:"next_seq"`
	// Lanes are the stream positions, by "SOURCE LANE" (lanes.go).
	Lanes map[string]lanePos `json:"lanes"`
	// Lost is the coverage the streams reported lost, by source, lane
	// and reason (coverage.go).
	Lost map[string]*lostGap `json:"lost,omitempty"`
	// Published is, per sink, the last revision it holds.
	Published map[string]uint64 `json:"published"`
	// History lists the segments of journal kept beyond the snapshot
	// (history.go), oldest first. HistoryFloor is a time at or after
	// every event taken before the history's first chunk (MinInt64: the
	// history holds everything); nil when not known (a state from before
	// the history).
	History      []historySeg `json:"history,omitempty"`
	HistoryFloor *int64       `json:"history_floor,omitempty"`
	// ConfigText is what ConfigHash covers, to say what changed.
	ConfigText string `json:"config_text,omitempty"`
	// Totals are the summary's counts at this checkpoint; Base what the
	// engine's own summary lacks of them since a re-judging rebuilt it
	// from the history (rejudge.go).
	Totals *counts `json:"totals,omitempty"`
	Base   counts  `json:"base"`
	// Checkpoints counts commits, for metrics and tests.
	Checkpoints uint64    `json:"checkpoints"`
	Time        time.Time `json:"time"`
}

// store is the state directory: the bbolt file and snapshot files.
type store struct {
	dir string
	db  *bolt.DB
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(dir, "twice.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state %s is in use by another twice watch", path)
		}
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketJournal, bucketOutbox, bucketFindings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return &store{dir: dir, db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// loadMeta returns the last checkpoint's meta, nil when there is none.
func (s *store) loadMeta() (*meta, error) {
	var m *meta
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketMeta).Get(keyState)
		if raw == nil {
			return nil
		}
		m = new(meta)
		if err := json.Unmarshal(raw, m); err != nil {
			return fmt.Errorf("checkpoint meta: %w", err)
		}
		return nil
	})
	return m, err
}

// savedFinding is the last revision of a finding, kept to number the next
// one and to serve /findings after a restart.
type savedFinding struct {
	Revision uint64 `json:"revision"`
	Hash     string `json:"hash"`
	Resolved bool   `json:"resolved,omitempty"`
	// Line is the revision as it was published.
	Line json.RawMessage `json:"line"`

	detector, severity string
	updated            time.Time
}

// readHead fills the fields read off the line.
func (sf *savedFinding) readHead() error {
	var h revisionHead
	if err := json.Unmarshal(sf.Line, &h); err != nil {
		return err
	}
	sf.detector, sf.severity = h.Detector, h.Severity
	sf.updated, _ = time.Parse(time.RFC3339Nano, h.EmittedAt)
	return nil
}

// checkpoint is what one commit writes.
type checkpoint struct {
	meta     *meta
	journal  []byte // compressed chunk, nil when nothing was taken
	outbox   []outboxEntry
	findings map[string]*savedFinding
	// dropJournal removes every journal chunk before meta.NextJournal-1
	// (after a snapshot).
	dropJournal bool
}

type outboxEntry struct {
	seq  uint64
	line []byte
}

func u64key(v uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], v)
	return k[:]
}

func (s *store) commit(c *checkpoint) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		j := tx.Bucket(bucketJournal)
		if c.dropJournal {
			cur := j.Cursor()
			for k, _ := cur.First(); k != nil; k, _ = cur.First() {
				if err := cur.Delete(); err != nil {
					return err
				}
			}
		}
		if c.journal != nil {
			if err := j.Put(u64key(c.meta.NextJournal), c.journal); err != nil {
				return err
			}
			c.meta.NextJournal++
		}
		o := tx.Bucket(bucketOutbox)
		for _, e := range c.outbox {
			if err := o.Put(u64key(e.seq), e.line); err != nil {
				return err
			}
		}
		f := tx.Bucket(bucketFindings)
		for fp, sf := range c.findings {
			raw, err := json.Marshal(sf)
			if err != nil {
				return err
			}
			if err := f.Put([]byte(fp), raw); err != nil {
				return err
			}
		}
		c.meta.Checkpoints++
		raw, err := json.Marshal(c.meta)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyState, raw)
	})
}

// markPublished records what the sinks hold and drops outbox entries
// every sink holds.
func (s *store) markPublished(m *meta) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		low := ^uint64(0)
		for _, v := range m.Published {
			low = min(low, v)
		}
		if len(m.Published) == 0 {
			low = m.NextSeq - 1
		}
		o := tx.Bucket(bucketOutbox)
		cur := o.Cursor()
		for k, _ := cur.First(); k != nil && binary.BigEndian.Uint64(k) <= low; k, _ = cur.First() {
			if err := cur.Delete(); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyState, raw)
	})
}

// journal calls fn with every journal chunk in order.
func (s *store) journal(fn func(chunk []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJournal).ForEach(func(_, v []byte) error { return fn(v) })
	})
}

// outbox returns the outbox entries after seq, in order.
func (s *store) outboxAfter(seq uint64) ([]outboxEntry, error) {
	var out []outboxEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketOutbox).Cursor()
		for k, v := cur.Seek(u64key(seq + 1)); k != nil; k, v = cur.Next() {
			out = append(out, outboxEntry{seq: binary.BigEndian.Uint64(k), line: append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// findings returns every finding's last revision.
func (s *store) findings() (map[string]*savedFinding, error) {
	out := map[string]*savedFinding{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFindings).ForEach(func(k, v []byte) error {
			sf := new(savedFinding)
			if err := json.Unmarshal(v, sf); err != nil {
				return fmt.Errorf("finding %s: %w", k, err)
			}
			if err := sf.readHead(); err != nil {
				return fmt.Errorf("finding %s: %w", k, err)
			}
			out[string(k)] = sf
			return nil
		})
	})
	return out, err
}
