package kafka

import (
	"strconv"
	"time"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int
}

// String returns "topic[partition]".
func (tp TopicPartition) String() string {
	return tp.Topic + "[" + strconv.Itoa(tp.Partition) + "]"
}

// Header is one message header.
type Header struct {
	Key   string
	Value []byte
}

// Message is one Kafka message as twice sees it.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	// Time is the message's timestamp (create or log-append time, as the
	// topic says).
	Time time.Time
}

// TP returns the message's topic and partition.
func (m *Message) TP() TopicPartition { return TopicPartition{m.Topic, m.Partition} }
