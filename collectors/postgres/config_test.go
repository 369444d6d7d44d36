package postgres

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

func parse(data string) (*config.Config, error) {
	return config.ParseWith("twice.yaml", []byte(data), config.Options{Sources: sources.NewRegistry(Factory{})})
}

func TestConfigEveryKey(t *testing.T) {
	data, err := os.ReadFile("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := parse(string(data))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Sources[0].Settings.(*Config)
	if l.Table != "public.ledger" || !slices.Equal(l.Cursor, []string{"id"}) || l.PollInterval != 2*time.Second ||
		l.Batch != 500 || l.Settle != 10*time.Second || l.Start != StartLatest || l.Map["attempt"] != "1" || len(l.Map) != 6 {
		t.Errorf("ledger: %+v", l)
	}
	o := c.Sources[1].Settings.(*Config)
	if o.Query == "" || !slices.Equal(o.Cursor, []string{"updated_at", "id"}) || o.settle() != 0 || o.batch() != DefaultBatch || o.pollInterval() != time.Second {
		t.Errorf("orders: %+v", o)
	}
}

func TestConfigErrors(t *testing.T) {
	head := "sources:\n  - name: x\n    type: postgres\n"
	ok := "    postgres: postgres://db/app\n    table: t\n    cursor: id\n    map: {ts: row.at, kind: '\"effect\"'}\n"
	for _, tc := range []struct{ body, want string }{
		{"    table: t\n    cursor: id\n    map: {ts: row.at, kind: '\"effect\"'}\n",
			`twice.yaml:2:5: sources[0]: missing postgres (a postgres source needs it)`},
		{"    postgres: mysql://db/app\n    table: t\n    cursor: id\n    map: {ts: row.at, kind: '\"effect\"'}\n",
			`twice.yaml:4:15: sources[0].postgres: want a URL like postgres://user:password@host:5432/database, got "mysql://db/app"`},
		{"    postgres: postgres://db/app\n    cursor: id\n    map: {ts: row.at, kind: '\"effect\"'}\n",
			`twice.yaml:2:5: sources[0]: missing table or query (a postgres source reads one)`},
		{ok + "    query: SELECT 1\n", `twice.yaml:8:12: sources[0].query: give table or query, not both`},
		{"    postgres: postgres://db/app\n    table: a.b.c\n    cursor: id\n    map: {ts: row.at, kind: '\"effect\"'}\n",
			`twice.yaml:5:12: sources[0].table: "a.b.c": want table or schema.table`},
		{"    postgres: postgres://db/app\n    table: t\n    cursor: [at, at]\n    map: {ts: row.at, kind: '\"effect\"'}\n",
			`twice.yaml:6:13: sources[0].cursor: column "at" given twice`},
		{"    postgres: postgres://db/app\n    table: t\n    cursor: id\n    map: {ts: value.at, kind: '\"effect\"'}\n",
			`twice.yaml:7:15: sources[0].map.ts: unknown name value (column 1 of the expression)`},
		{"    postgres: postgres://db/app\n    table: t\n    cursor: id\n    map: {ts: row.at}\n",
			`twice.yaml:7:10: sources[0].map: missing kind (every event needs it)`},
		{"    postgres: postgres://db/app\n    table: t\n    cursor: id\n    map: {ts: row.at, kind: '\"effect\"', colour: '1'}\n",
			`twice.yaml:7:41: sources[0].map: unknown key "colour" (known: id, ts, kind, queue, job_type, job_id, attempt, key, effect, effect_key, entity, seq, terminal, retry, error, attrs)`},
		{ok + "    batch: 0\n", `twice.yaml:8:12: sources[0].batch: must be at least 1, got 0`},
		{ok + "    settle: soon\n", `twice.yaml:8:13: sources[0].settle: want a Go duration like 90s or 15m, got "soon"`},
		{ok + "    settle: [1s]\n", `twice.yaml:8:13: sources[0].settle: want a Go duration like 90s or 15m, got a list`},
		{ok + "    start: now\n", `twice.yaml:8:12: sources[0].start: want one of earliest, latest, got "now"`},
		{ok + "    tabel: t\n", `twice.yaml:8:5: sources[0]: unknown key "tabel" (known: name, type, postgres, table, query, cursor, map, poll_interval, batch, settle, start)`},
	} {
		_, err := parse(head + tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\ngot  %v\nwant %s", tc.body, err, tc.want)
		}
	}
	if _, err := parse(head + ok); err != nil {
		t.Errorf("a good source: %v", err)
	}
}
