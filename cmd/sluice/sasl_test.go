package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
)

// TestSASL: a broker that requires PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; sluice authenticates
// with the password from an environment variable and delivers everything;
// with a wrong password it writes nothing and never logs the password.
func TestSASL(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	auth := map[string]sasl.Mechanism{
		"plain":         plain.Auth{User: "sluice", Pass: "s3cr3t-pass"}.AsMechanism(),
		"scram-sha-256": scram.Auth{User: "sluice", Pass: "s3cr3t-pass"}.AsSha256Mechanism(),
		"scram-sha-512": scram.Auth{User: "sluice", Pass: "s3cr3t-pass"}.AsSha512Mechanism(),
	}
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) { testSASL(t, mech, auth[mech]) })
	}
}

func testSASL(t *testing.T, mech string, m sasl.Mechanism) {
	const topic = "events"
	kc := testkit.Kafka(t, topic, 2, kfake.EnableSASL(), kfake.Superuser(strings.ToUpper(mech), "sluice", "s3cr3t-pass"))
	brokers := kc.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.SASL(m))
	if err != nil {
		t.Fatal(err)
	}
	g := synth.New(synth.Options{Seed: 3})
	for range 500 {
		v, _ := g.Append(nil)
		prod.Produce(context.Background(), &kgo.Record{Topic: topic, Value: v}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	sasl := "  sasl: {mechanism: " + mech + ", username: sluice, password_env: E2E_KAFKA_PASSWORD}\nstages:"
	bad := t.TempDir()
	cfgBad := rewriteConfig(t, writeConfig(t, brokers, topic, "sasl", bad, decodeOnly), "stages:", sasl)
	p := startSluiceEnv(t, []string{"E2E_KAFKA_PASSWORD=wrong"}, "run", "--config", cfgBad)
	time.Sleep(3 * time.Second)
	if n := testkit.ReadAll(t, bad).Total(); n != 0 {
		t.Errorf("%d rows with a wrong password", n)
	}
	p.stop(t)
	if strings.Contains(p.stderr.String(), "wrong") {
		t.Error("the password appears in the logs")
	}

	out := t.TempDir()
	cfg := rewriteConfig(t, writeConfig(t, brokers, topic, "sasl", out, decodeOnly), "stages:", sasl)
	p = startSluiceEnv(t, []string{"E2E_KAFKA_PASSWORD=s3cr3t-pass"}, "run", "--config", cfg)
	testkit.WaitFor(t, 60*time.Second, "records over SASL", func() bool { return testkit.ReadOutput(t, out).Total() >= 500 })
	p.stop(t)
	testkit.ReadAll(t, out)
	if strings.Contains(p.stderr.String(), "s3cr3t-pass") {
		t.Error("the password appears in the logs")
	}
}
