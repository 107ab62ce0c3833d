package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 is a real S3-compatible server (versitygw, posix backend) on
// 127.0.0.1 with one bucket, stopped when the test ends.
type S3 struct {
	Endpoint string // http://127.0.0.1:port
	Bucket   string
	Access   string
	Secret   string
	Root     string // the posix directory behind it
}

// Env are the AWS variables that point the standard credential chain at
// the server.
func (s *S3) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.Access,
		"AWS_SECRET_ACCESS_KEY=" + s.Secret,
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in this process for the duration of the test.
func (s *S3) SetEnv(t testing.TB) {
	for _, kv := range s.Env() {
		k, v, _ := cut(kv)
		t.Setenv(k, v)
	}
}

func cut(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// versitygw finds the server binary: $SLUICE_VERSITYGW, then .tools/ in
// the repository (make tools), then PATH.
func versitygw() string {
	if p := os.Getenv("SLUICE_VERSITYGW"); p != "" {
		return p
	}
	_, here, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(here), "..", "..", ".tools", "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	return ""
}

// StartS3 starts the server. Without the binary the test is skipped,
// unless SLUICE_REQUIRE_S3 is set (CI sets it), where it fails.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := versitygw()
	if bin == "" {
		if os.Getenv("SLUICE_REQUIRE_S3") != "" {
			t.Fatal("versitygw not found (SLUICE_REQUIRE_S3 is set): run make tools")
		}
		t.Skip("versitygw not found: run make tools")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &S3{Endpoint: "http://" + addr, Bucket: "sluice-test", Access: "sluicetest", Secret: "sluicetest-secret-key", Root: t.TempDir()}
	cmd := exec.Command(bin, "--access", s.Access, "--secret", s.Secret, "--port", addr, "--quiet", "posix", s.Root)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw did not listen on %s: %s", addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return s
}

// Client is an S3 client for the server, for test assertions.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.Access, s.Secret, ""),
	})
}

// URL is the sink URL of prefix in the bucket.
func (s *S3) URL(prefix string) string { return fmt.Sprintf("s3://%s/%s", s.Bucket, prefix) }

// Dir is the directory holding prefix's objects (posix backend), for
// reading output back with Arrow.
func (s *S3) Dir(prefix string) string { return filepath.Join(s.Root, s.Bucket, prefix) }
