package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/config"
	"github.com/sluicedata/sluice/pipeline/delivery"
	"github.com/sluicedata/sluice/pipeline/handoff"
	"github.com/sluicedata/sluice/sinks/objstore"
)

// cmdStatus prints, for each recent hour, whether it is complete (and its
// manifests written) or which partitions hold it back and by how much.
// The partitions come from the brokers; when they cannot be reached, from
// the states in the store (then a partition that never had a state cannot
// be seen, and the output says so).
func cmdStatus(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML); SLUICE_* variables override keys")
	hours := fs.Int("hours", 24, "recent hours to show")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The sections status reads: the stages (and their keys) are not
	// needed to read the state.
	cfg, err := loadChecked(*path, func(c config.Config) error { return c.Validate() })
	if err != nil {
		return err
	}
	if *hours < 1 {
		return &exitError{2, errors.New("--hours must be at least 1")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	state := objstore.StateStore{Store: store}
	parts, fromStore, err := statusPartitions(ctx, cfg, store)
	if err != nil {
		return err
	}
	st, _, err := handoff.Read(ctx, state, cfg.Kafka.Group, parts)
	if err != nil {
		return err
	}
	return printStatus(ctx, out, cfg, state, st, *hours, fromStore, time.Now())
}

func openStore(ctx context.Context, cfg config.Config) (objstore.Store, error) {
	return objstore.Open(ctx, cfg.Sink.URL, objstore.S3Options{
		Endpoint: cfg.Sink.S3.Endpoint, Region: cfg.Sink.S3.Region,
		PathStyle: cfg.Sink.S3.PathStyle, PartSize: int64(cfg.Sink.S3.PartSize),
	})
}

// statusPartitions asks the brokers for the topics' partitions, and falls
// back to the states the store holds.
func statusPartitions(ctx context.Context, cfg config.Config, store objstore.Store) (map[string][]int32, bool, error) {
	kopts, err := kafkaSecurity(cfg.Kafka, os.LookupEnv)
	if err != nil {
		return nil, false, &exitError{2, err}
	}
	if !(len(cfg.Kafka.Brokers) == 1 && cfg.Kafka.Brokers[0] == "embedded") {
		if cl, err := newSideClient(cfg, cfg.Kafka.Brokers, kopts); err == nil {
			kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			parts, err := topicPartitions(cl, cfg.Kafka.Topics)(kctx)
			cancel()
			cl.Close()
			if err == nil {
				return parts, false, nil
			}
			fmt.Fprintf(os.Stderr, "sluice status: brokers: %v; using the partitions with a state in %s\n", err, store)
		}
	}
	parts := map[string][]int32{}
	for _, topic := range cfg.Kafka.Topics {
		prefix := strings.TrimSuffix(delivery.StateKey(cfg.Kafka.Group, topic, 0), "0.json")
		keys, err := store.List(ctx, prefix)
		if err != nil {
			return nil, true, fmt.Errorf("list states: %w", err)
		}
		for _, k := range keys {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(k, prefix), ".json"), 10, 32)
			if err == nil {
				parts[topic] = append(parts[topic], int32(n))
			}
		}
	}
	return parts, true, nil
}

func printStatus(ctx context.Context, out io.Writer, cfg config.Config, state delivery.StateStore, st handoff.Status, hours int, fromStore bool, now time.Time) error {
	n := len(st.Partitions) + len(st.Missing)
	fmt.Fprintf(out, "group %s, topics %s: %d partitions", cfg.Kafka.Group, strings.Join(cfg.Kafka.Topics, ","), n)
	if fromStore {
		fmt.Fprint(out, " (from the store: partitions never owned are not shown)")
	}
	fmt.Fprintln(out)
	if st.SealedBefore > 0 {
		end := time.UnixMilli(st.SealedBefore).UTC()
		fmt.Fprintf(out, "complete through %s (%s ago)\n", end.Format(time.RFC3339), now.Sub(end).Round(time.Second))
	} else {
		fmt.Fprintln(out, "no hour is complete yet")
	}
	active := map[int64]handoff.Counts{}
	for _, p := range st.Partitions {
		for _, l := range p.State.Hours {
			c := active[l.Hour]
			c.Records += l.Records
			active[l.Hour] = c
		}
	}
	last := delivery.HourStartMs(now.UnixMilli()) / 3_600_000
	outs := []string{"events"}
	if cfg.Sink.Rejected == "store" {
		outs = append(outs, "rejected")
	}
	rows := st.Hours(last-int64(hours)+1, last)
	slices.Reverse(rows)
	for _, h := range rows {
		label := time.Unix(h.Hour*3600, 0).UTC().Format("2006-01-02T15")
		if !h.Complete {
			var why []string
			for _, b := range h.Behind {
				switch {
				case b.NoState:
					why = append(why, fmt.Sprintf("%s/%d (no state)", b.Topic, b.Partition))
				case b.By > 365*24*time.Hour:
					why = append(why, fmt.Sprintf("%s/%d (nothing sealed yet)", b.Topic, b.Partition))
				default:
					why = append(why, fmt.Sprintf("%s/%d (%s behind)", b.Topic, b.Partition, b.By.Round(time.Second)))
				}
			}
			fmt.Fprintf(out, "%s  incomplete  held back by %s\n", label, strings.Join(why, ", "))
			continue
		}
		var ms []string
		for _, o := range outs {
			key := handoff.ManifestKey(o, h.Hour)
			_, _, err := state.Load(ctx, key)
			switch {
			case err == nil:
				ms = append(ms, key)
			case errors.Is(err, delivery.ErrStateNotFound):
				// An hour past the marker with records is being written;
				// any other without a manifest had no records.
				if _, ok := active[h.Hour]; ok && (h.Hour+1)*3_600_000 > st.ThroughMs {
					ms = append(ms, key+" (being written)")
				} else {
					ms = append(ms, o+": no records, no manifest")
				}
			default:
				return fmt.Errorf("manifest %s: %w", key, err)
			}
		}
		if _, ok := active[h.Hour]; !ok && (h.Hour+1)*3_600_000 <= st.ThroughMs && len(ms) == len(outs) && strings.Contains(ms[0], "no records") {
			ms = []string{"no records, no manifest"}
		}
		fmt.Fprintf(out, "%s  complete    %s\n", label, strings.Join(ms, ", "))
	}
	return nil
}
