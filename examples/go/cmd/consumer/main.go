// Command consumer reads a topic's channel with go-nsq (github.com/nsqio/go-nsq v1.1.0)
// until it has received every message 0..N-1 of one producer run, then exits 0; it exits 1
// when the timeout passes first, saying how many and which messages are missing.
//
// In Kubernetes point it at the NsqCluster's lookupd Service,
// <cluster>-lookupd.<namespace>.svc:4161: go-nsq asks nsqlookupd which nsqd pods carry the
// topic and connects to each of them by the stable name every pod registers.
//
// Bodies are "<run-id> <seq>" (see ../producer). Messages of other runs are finished and
// counted as foreign; repeats of a message (NSQ delivers at least once) are counted as
// duplicates. Every message is finished (FIN) once counted.
//
// Flags (each also read from the environment variable in brackets):
//
//	-lookupd-http-address  [LOOKUPD_HTTP_ADDRESS]  nsqlookupd HTTP address(es), comma-separated
//	-nsqd-tcp-address      [NSQD_TCP_ADDRESS]      or nsqd TCP address(es), comma-separated
//	-topic                 [TOPIC]                 topic (required)
//	-channel               [CHANNEL]               channel (required)
//	-count                 [COUNT]                 messages to wait for (default 1000)
//	-run-id                [RUN_ID]                run to count (required)
//	-timeout               [TIMEOUT]               give up after this long (default 3m)
//	-max-in-flight         [MAX_IN_FLIGHT]         RDY budget (default 200)
//	-lookupd-poll-interval [LOOKUPD_POLL_INTERVAL] how often to re-ask nsqlookupd (default 5s)
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsqio/go-nsq"
)

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func envInt(name string, fallback int) int {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		log.Fatalf("consumer: %s=%q is not an integer", name, v)
	}
	return n
}

func envDuration(name string, fallback time.Duration) time.Duration {
	v := envOr(name, "")
	if v == "" {
		return fallback
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Fatalf("consumer: %s=%q is not a duration", name, v)
	}
	return d
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// tally counts what arrived.
type tally struct {
	mu         sync.Mutex
	runID      string
	want       int
	seen       map[int]bool
	duplicates int
	foreign    int
	done       chan struct{}
	closed     bool
}

func (t *tally) HandleMessage(m *nsq.Message) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fields := strings.Fields(string(m.Body))
	seq := -1
	if len(fields) == 2 && fields[0] == t.runID {
		if n, err := strconv.Atoi(fields[1]); err == nil && n >= 0 && n < t.want {
			seq = n
		}
	}
	switch {
	case seq < 0:
		t.foreign++
	case t.seen[seq]:
		t.duplicates++
	default:
		t.seen[seq] = true
	}
	if len(t.seen) == t.want && !t.closed {
		t.closed = true
		close(t.done)
	}
	return nil // FIN
}

func (t *tally) missing(limit int) (int, []int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first []int
	n := 0
	for i := 0; i < t.want; i++ {
		if !t.seen[i] {
			n++
			if len(first) < limit {
				first = append(first, i)
			}
		}
	}
	sort.Ints(first)
	return n, first
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	lookupds := flag.String("lookupd-http-address", envOr("LOOKUPD_HTTP_ADDRESS", ""), "nsqlookupd HTTP address(es), comma-separated, e.g. demo-lookupd.nsq.svc:4161 [LOOKUPD_HTTP_ADDRESS]")
	nsqds := flag.String("nsqd-tcp-address", envOr("NSQD_TCP_ADDRESS", ""), "nsqd TCP address(es), comma-separated, instead of lookupd [NSQD_TCP_ADDRESS]")
	topic := flag.String("topic", envOr("TOPIC", ""), "topic [TOPIC]")
	channel := flag.String("channel", envOr("CHANNEL", ""), "channel [CHANNEL]")
	count := flag.Int("count", envInt("COUNT", 1000), "messages 0..count-1 to wait for [COUNT]")
	runID := flag.String("run-id", envOr("RUN_ID", ""), "producer run to count [RUN_ID]")
	timeout := flag.Duration("timeout", envDuration("TIMEOUT", 3*time.Minute), "give up after this long [TIMEOUT]")
	maxInFlight := flag.Int("max-in-flight", envInt("MAX_IN_FLIGHT", 200), "RDY budget over all nsqd connections [MAX_IN_FLIGHT]")
	poll := flag.Duration("lookupd-poll-interval", envDuration("LOOKUPD_POLL_INTERVAL", 5*time.Second), "how often to re-ask nsqlookupd for nsqd nodes [LOOKUPD_POLL_INTERVAL]")
	flag.Parse()

	if *topic == "" || *channel == "" || *runID == "" || (*lookupds == "" && *nsqds == "") {
		fmt.Fprintln(os.Stderr, "consumer: -topic, -channel, -run-id and one of -lookupd-http-address / -nsqd-tcp-address are required")
		flag.Usage()
		os.Exit(2)
	}
	if *count < 0 {
		fmt.Fprintln(os.Stderr, "consumer: -count must be >= 0")
		os.Exit(2)
	}

	cfg := nsq.NewConfig()
	cfg.MaxInFlight = *maxInFlight
	cfg.LookupdPollInterval = *poll
	consumer, err := nsq.NewConsumer(*topic, *channel, cfg)
	if err != nil {
		log.Fatalf("consumer: %v", err)
	}
	consumer.SetLogger(log.New(os.Stderr, "", log.LstdFlags), nsq.LogLevelWarning)
	t := &tally{runID: *runID, want: *count, seen: make(map[int]bool, *count), done: make(chan struct{})}
	if *count == 0 {
		t.closed = true
		close(t.done)
	}
	consumer.AddHandler(t)

	start := time.Now()
	if addrs := splitList(*lookupds); len(addrs) > 0 {
		err = consumer.ConnectToNSQLookupds(addrs)
	} else {
		err = consumer.ConnectToNSQDs(splitList(*nsqds))
	}
	if err != nil {
		log.Fatalf("consumer: connecting: %v", err)
	}

	ticker := time.NewTicker(10 * time.Second)
	defer ticker.Stop()
	expired := time.After(*timeout)
	for {
		select {
		case <-t.done:
			consumer.Stop()
			<-consumer.StopChan
			t.mu.Lock()
			log.Printf("consumer: received all %d messages of run %s from %s/%s in %s (%d duplicates, %d foreign)",
				*count, *runID, *topic, *channel, time.Since(start).Round(time.Millisecond), t.duplicates, t.foreign)
			t.mu.Unlock()
			return
		case <-ticker.C:
			n, _ := t.missing(0)
			log.Printf("consumer: %d/%d received so far", *count-n, *count)
		case <-expired:
			n, first := t.missing(20)
			consumer.Stop()
			log.Printf("consumer: FAILED: after %s, %d of %d messages of run %s never arrived (first missing: %v)",
				*timeout, n, *count, *runID, first)
			os.Exit(1)
		}
	}
}
