// Command ready exits 0 once the Kafka broker at HOST:PORT answers: it
// creates a one-partition topic, waits for the topic's leader and deletes it,
// retrying until -timeout, or until the process -pid exits.
// scripts/services.d/kafka.sh runs it after starting the broker, so that
// `scripts/services up kafka` hands out a broker that works.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	pid := flag.Int("pid", 0, "give up as soon as this process is gone (0: none)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ready [-timeout D] [-pid N] HOST:PORT")
		os.Exit(2)
	}
	addr := flag.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for {
		err := check(ctx, addr)
		if err == nil {
			return
		}
		if *pid > 0 && syscall.Kill(*pid, 0) != nil {
			fmt.Fprintf(os.Stderr, "kafka at %s: process %d exited: %v\n", addr, *pid, err)
			os.Exit(1)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "kafka at %s not ready after %s: %v\n", addr, *timeout, err)
			os.Exit(1)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func check(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	topic := fmt.Sprintf("__twice_ready_%d", time.Now().UnixNano())
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil {
		return err
	}
	if err := res.Errors[topic]; err != nil {
		return err
	}
	defer func() {
		_, _ = c.DeleteTopics(context.WithoutCancel(ctx), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	}()
	for {
		md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil {
			if len(md.Topics) == 1 && md.Topics[0].Error == nil &&
				len(md.Topics[0].Partitions) == 1 && md.Topics[0].Partitions[0].Leader.Port != 0 {
				return nil
			}
			err = errors.New("topic has no leader yet")
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
