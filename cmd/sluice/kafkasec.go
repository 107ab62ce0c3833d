package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicedata/sluice/config"
)

// kafkaSecurity turns the TLS and SASL config into client options. The
// SASL password is read from its variable or file here, and only kept in
// the client.
func kafkaSecurity(k config.Kafka, lookupEnv func(string) (string, bool)) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	var errs []error
	if k.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.TLS.ServerName, InsecureSkipVerify: k.TLS.InsecureSkipVerify}
		if k.TLS.CAFile != "" {
			pem, err := os.ReadFile(k.TLS.CAFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("kafka.tls.ca_file: %w", err))
			} else {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					errs = append(errs, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", k.TLS.CAFile))
				}
				tc.RootCAs = pool
			}
		}
		if k.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(k.TLS.CertFile, k.TLS.KeyFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("kafka.tls.cert_file: %w", err))
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := k.SASL.Mechanism; m != "" {
		var pass string
		if k.SASL.PasswordEnv != "" {
			v, ok := lookupEnv(k.SASL.PasswordEnv)
			if !ok {
				errs = append(errs, fmt.Errorf("kafka.sasl.password_env: environment variable %s is not set", k.SASL.PasswordEnv))
			}
			pass = v
		} else {
			b, err := os.ReadFile(k.SASL.PasswordFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("kafka.sasl.password_file: %w", err))
			}
			pass = strings.TrimSuffix(string(b), "\n")
		}
		switch m {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: k.SASL.Username, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.SASL.Username, Pass: pass}.AsSha512Mechanism()))
		}
	}
	return opts, errors.Join(errs...)
}
