// Command dump writes every message of the given topics, from the first
// offset to the end, as JSON lines {"topic","key","value"} (key and value
// as the JSON they hold; value null for a tombstone), topic by topic in
// offset order. scripts/debezium-record uses it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: dump BROKERS TOPIC...")
		os.Exit(2)
	}
	brokers := strings.Split(os.Args[1], ",")
	out := json.NewEncoder(os.Stdout)
	for _, topic := range os.Args[2:] {
		if err := dump(brokers, topic, out); err != nil {
			fmt.Fprintf(os.Stderr, "dump %s: %v\n", topic, err)
			os.Exit(1)
		}
	}
}

func dump(brokers []string, topic string, out *json.Encoder) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := kafkago.DialLeader(ctx, "tcp", brokers[0], topic, 0)
	if err != nil {
		return err
	}
	last, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		return err
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	for off := int64(0); off < last; off++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return err
		}
		line := struct {
			Topic string          `json:"topic"`
			Key   json.RawMessage `json:"key"`
			Value json.RawMessage `json:"value"`
		}{Topic: topic, Key: raw(m.Key), Value: raw(m.Value)}
		if err := out.Encode(line); err != nil {
			return err
		}
		off = m.Offset
	}
	return nil
}

func raw(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
