// Command bench times twice's ClickHouse storage for scripts/bench-clickhouse:
// it writes a JSON Lines file into a fresh database through the Sink (the
// insert rate), then runs the SQL audit of all of it (the audit time).
//
//	go run ./storage/clickhouse/internal/bench -dsn clickhouse://127.0.0.1:19000/default -config twice.yaml events.jsonl
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/storage/clickhouse"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("CLICKHOUSE_DSN"), "ClickHouse DSN")
	cfgPath := flag.String("config", "", "twice.yaml")
	db := flag.String("database", "twice_bench", "database to (re)create")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the insert to FILE")
	flag.Parse()
	// As cmd/twice's main does: trade memory for fewer collections.
	debug.SetGCPercent(400)
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*dsn, *cfgPath, *db, flag.Args()); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(dsn, cfgPath, db string, paths []string) error {
	ctx := context.Background()
	cfg := config.Default()
	if cfgPath != "" {
		var err error
		if cfg, err = config.Load(cfgPath); err != nil {
			return err
		}
	}
	admin, err := clickhouse.Open(dsn, clickhouse.Options{})
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return err
	}
	if err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return err
	}
	base := dsn[:strings.LastIndex(dsn, "/")+1]
	st, err := clickhouse.Open(base+db, clickhouse.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	sink := st.Sink(clickhouse.SinkOptions{StartPos: 1})
	start := time.Now()
	var n int64
	var parse time.Duration
	for _, p := range paths {
		c := file.New(p, file.Options{})
		if err := c.Start(ctx); err != nil {
			return err
		}
		for {
			t0 := time.Now()
			b, err := c.Next(ctx)
			parse += time.Since(t0)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := sink.WriteMalformed(ctx, b.Malformed); err != nil {
				return err
			}
			if err := sink.Write(ctx, b.Events); err != nil {
				return err
			}
			n += int64(len(b.Events))
		}
		_ = c.Shutdown(ctx)
	}
	if err := sink.Flush(ctx); err != nil {
		return err
	}
	ins := time.Since(start)
	start = time.Now()
	rep, err := st.Audit(ctx, clickhouse.AuditOptions{Config: cfg})
	if err != nil {
		return err
	}
	aud := time.Since(start)
	total := 0
	for _, c := range rep.Summary.Findings {
		total += c
	}
	fmt.Printf("events=%d insert_s=%.3f insert_eps=%.0f read_parse_s=%.3f audit_s=%.3f findings=%d\n",
		n, ins.Seconds(), float64(n)/ins.Seconds(), parse.Seconds(), aud.Seconds(), total)
	return admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
}
