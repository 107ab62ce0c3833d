package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/internal/synth"
	"github.com/sluicedata/sluice/internal/testkit"
)

// selfSigned makes a certificate for 127.0.0.1 and writes its PEM to dir.
func selfSigned(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ca.pem")
	os.WriteFile(p, certPEM, 0o644)
	return cert, p
}

// TestTLS: a broker that only speaks TLS; sluice trusts its certificate
// through kafka.tls.ca_file and delivers everything.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	cert, caFile := selfSigned(t, t.TempDir())
	const topic = "events"
	kc := testkit.Kafka(t, topic, 2, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	brokers := kc.ListenAddrs()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	if cert.Leaf == nil {
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		pool.AddCert(leaf)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	g := synth.New(synth.Options{Seed: 4})
	for range 300 {
		v, _ := g.Append(nil)
		prod.Produce(context.Background(), &kgo.Record{Topic: topic, Value: v}, nil)
	}
	if err := prod.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	out := t.TempDir()
	cfg := rewriteConfig(t, writeConfig(t, brokers, topic, "tls", out, decodeOnly), "stages:", "  tls: {enabled: true, ca_file: "+caFile+"}\nstages:")
	p := startSluice(t, "run", "--config", cfg)
	testkit.WaitFor(t, 60*time.Second, "records over TLS", func() bool { return testkit.ReadOutput(t, out).Total() >= 300 })
	p.stop(t)
	testkit.ReadAll(t, out)
}
