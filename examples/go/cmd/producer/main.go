// Command producer publishes N numbered messages to a topic through one nsqd, with
// go-nsq (github.com/nsqio/go-nsq v1.1.0), and exits 0 once nsqd has acknowledged all of
// them.
//
// In Kubernetes point it at the NsqCluster's nsqd Service, <cluster>-nsqd.<namespace>.svc:4150
// (or at one pod, <cluster>-nsqd-0.<cluster>-nsqd-headless.<namespace>.svc:4150).
//
// Every message body is "<run-id> <seq>" with seq in [0, N), so the consumer of this
// directory can check that each one arrived.
//
// Flags (each also read from the environment variable in brackets):
//
//	-nsqd-tcp-address  [NSQD_TCP_ADDRESS]  nsqd TCP address (required)
//	-topic             [TOPIC]             topic (required)
//	-count             [COUNT]             messages to publish (default 1000)
//	-run-id            [RUN_ID]            tag in every body (default: the start time)
//	-batch             [BATCH]             messages per MPUB; 1 publishes with PUB (default 100)
//	-timeout           [TIMEOUT]           give up after this long (default 2m)
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
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
		log.Fatalf("producer: %s=%q is not an integer", name, v)
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
		log.Fatalf("producer: %s=%q is not a duration", name, v)
	}
	return d
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	addr := flag.String("nsqd-tcp-address", envOr("NSQD_TCP_ADDRESS", ""), "nsqd TCP address, e.g. demo-nsqd.nsq.svc:4150 [NSQD_TCP_ADDRESS]")
	topic := flag.String("topic", envOr("TOPIC", ""), "topic to publish to [TOPIC]")
	count := flag.Int("count", envInt("COUNT", 1000), "number of messages [COUNT]")
	runID := flag.String("run-id", envOr("RUN_ID", strconv.FormatInt(time.Now().UnixNano(), 36)), "tag put in every message body [RUN_ID]")
	batch := flag.Int("batch", envInt("BATCH", 100), "messages per MPUB; 1 = one PUB per message [BATCH]")
	timeout := flag.Duration("timeout", envDuration("TIMEOUT", 2*time.Minute), "give up after this long [TIMEOUT]")
	flag.Parse()

	if *addr == "" || *topic == "" {
		fmt.Fprintln(os.Stderr, "producer: -nsqd-tcp-address and -topic are required")
		flag.Usage()
		os.Exit(2)
	}
	if *count < 0 || *batch < 1 {
		fmt.Fprintln(os.Stderr, "producer: -count must be >= 0 and -batch >= 1")
		os.Exit(2)
	}

	cfg := nsq.NewConfig()
	producer, err := nsq.NewProducer(*addr, cfg)
	if err != nil {
		log.Fatalf("producer: %v", err)
	}
	producer.SetLogger(log.New(os.Stderr, "", log.LstdFlags), nsq.LogLevelWarning)
	defer producer.Stop()

	deadline := time.Now().Add(*timeout)
	// The Service may route to a pod that is still starting: retry the first contact.
	for {
		if err = producer.Ping(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("producer: cannot reach nsqd at %s: %v", *addr, err)
		}
		log.Printf("producer: nsqd at %s not reachable yet (%v); retrying", *addr, err)
		time.Sleep(2 * time.Second)
	}

	start := time.Now()
	body := func(seq int) []byte { return []byte(fmt.Sprintf("%s %d", *runID, seq)) }
	for next := 0; next < *count; {
		n := *batch
		if rest := *count - next; rest < n {
			n = rest
		}
		for {
			if n == 1 {
				err = producer.Publish(*topic, body(next))
			} else {
				bodies := make([][]byte, 0, n)
				for i := 0; i < n; i++ {
					bodies = append(bodies, body(next+i))
				}
				err = producer.MultiPublish(*topic, bodies)
			}
			if err == nil {
				break
			}
			// A failed publish is retried as a whole: nsqd acknowledged nothing of it.
			if time.Now().After(deadline) {
				log.Fatalf("producer: published %d/%d, then: %v", next, *count, err)
			}
			log.Printf("producer: publish of [%d, %d) failed (%v); retrying", next, next+n, err)
			time.Sleep(time.Second)
		}
		next += n
	}
	log.Printf("producer: published %d messages to topic %q via %s (run %s) in %s",
		*count, *topic, *addr, *runID, time.Since(start).Round(time.Millisecond))
}
