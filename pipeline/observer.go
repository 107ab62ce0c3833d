package pipeline

import "time"

// Observer receives measurements for metrics. Workers call it
// concurrently; implementations must be safe for that and cheap.
type Observer interface {
	// StageDone: one stage processed a batch of in events, of which it
	// rejected and dropped some, in took.
	StageDone(stage string, in, rejected, dropped int, took time.Duration)
	// FlushDone: a flush made files durable (upload and state included).
	FlushDone(topic string, partition int32, files int, rows, bytes int64, took time.Duration)
}
