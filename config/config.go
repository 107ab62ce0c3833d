// Package config is sluice's YAML configuration: the types with their
// documented defaults, SLUICE_* environment overrides, and Validate, which
// reports every problem at once, each naming its key.
//
// Secrets (pseudonymization keys, SASL passwords, S3 credentials) are never
// part of this file: keys name the environment variable or file they come
// from.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of `sluice run`.
type Config struct {
	Kafka         Kafka         `yaml:"kafka"`
	Stages        []Stage       `yaml:"stages"`
	Sink          Sink          `yaml:"sink"`
	Observability Observability `yaml:"observability"`
	// Collect is `sluice collect`'s section (the Snowplow collector).
	Collect Collect `yaml:"collect"`
	// ShutdownTimeout bounds the drain on SIGTERM: stop polling, flush,
	// commit. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// Kafka is the source.
type Kafka struct {
	// Brokers are the seed brokers, host:port. "embedded" runs an
	// in-process broker (for demos). No default.
	Brokers []string `yaml:"brokers"`
	// Topics to consume. No default.
	Topics []string `yaml:"topics"`
	// Group is the consumer group. Default "sluice".
	Group string `yaml:"group"`
	// StartFrom is where a partition with no committed position starts:
	// earliest (default) or latest.
	StartFrom string `yaml:"start_from"`
	// DeadLetterTopic, when set, receives every rejected record: value
	// and key unchanged, the reason and lineage in headers (sluice-error,
	// sluice-stage, sluice-src-topic, sluice-src-partition,
	// sluice-src-offset), acknowledged before its range is recorded done.
	// With sink.rejected: off it is the only place bad records go.
	// Default "" (none).
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// SessionTimeout is the group session timeout. Default 45s.
	SessionTimeout Duration `yaml:"session_timeout"`
	// ClientID is the Kafka client id. Default "sluice".
	ClientID string `yaml:"client_id"`
	// MaxPollRecords bounds the records taken per poll. Default 10000.
	MaxPollRecords int `yaml:"max_poll_records"`
	// TLS to the brokers. Default off.
	TLS TLS `yaml:"tls"`
	// SASL authentication. Default off.
	SASL SASL `yaml:"sasl"`
}

// TLS configures TLS to the brokers.
type TLS struct {
	// Enabled turns TLS on (system roots unless CAFile). Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the broker certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks. Default false;
	// never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASL configures SASL authentication. The password comes only from an
// environment variable or a file, never from this file.
type SASL struct {
	// Mechanism: "" (off), plain, scram-sha-256, scram-sha-512.
	Mechanism string `yaml:"mechanism"`
	// Username (not a secret).
	Username string `yaml:"username"`
	// PasswordEnv or PasswordFile holds the password (file: less one
	// trailing newline).
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// Stage is one entry of the stage list, in the order the stages run: its
// type and its own keys, which the stage's package reads (Decode into its
// Config, whose Validate names each bad key). The table from type to stage
// is cmd/sluice's.
type Stage struct {
	Type string
	// Keys are the entry's keys other than type (a YAML mapping; empty
	// when it has none).
	Keys yaml.Node
}

// NewStage returns the entry of stage type typ with the keys of cfg (a
// stage package's Config).
func NewStage(typ string, cfg any) (Stage, error) {
	st := Stage{Type: typ}
	if err := st.Keys.Encode(cfg); err != nil {
		return st, fmt.Errorf("stage %s: %w", typ, err)
	}
	return st, nil
}

// UnmarshalYAML reads one entry: a mapping with a type and the stage's keys.
func (st *Stage) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a stage is a mapping with a type, like {type: decode}", n.Line)
	}
	st.Keys = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "type" {
			st.Type = v.Value
			continue
		}
		st.Keys.Content = append(st.Keys.Content, k, v)
	}
	return nil
}

// MarshalYAML writes the entry back as one mapping.
func (st Stage) MarshalYAML() (any, error) {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	out.Content = append(out.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "type"},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: st.Type})
	if st.Keys.Kind == yaml.MappingNode {
		out.Content = append(out.Content, st.Keys.Content...)
	}
	return out, nil
}

// Decode reads the entry's keys into dst, a pointer to the stage's Config.
// Every key dst does not have is an error naming the key and its line;
// errors name keys relative to the entry (the caller adds "stages[i].").
func (st Stage) Decode(dst any) error {
	if st.Keys.Kind == 0 || len(st.Keys.Content) == 0 {
		return nil
	}
	if errs := checkKeys(&st.Keys, reflect.TypeOf(dst), ""); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := st.Keys.Decode(dst); err != nil {
		return err
	}
	return nil
}

// Sink is the output.
type Sink struct {
	// URL is the output root: file:///path or s3://bucket/prefix. No
	// default.
	URL string `yaml:"url"`
	// S3 configures s3:// URLs; credentials come from the standard AWS
	// chain (AWS_ACCESS_KEY_ID…, web identity, instance role), never from
	// this file.
	S3 S3 `yaml:"s3"`
	// Compression of Parquet pages: zstd (default), snappy, gzip, lz4, none.
	Compression string `yaml:"compression"`
	// ZstdLevel is zstd's effort: fastest (default), default (zstd's level
	// 3), better or best. fastest writes about 5% more bytes than default
	// for about a quarter more events per CPU-second end to end
	// (BENCHMARKS.md).
	ZstdLevel string `yaml:"zstd_level"`
	// Roll says when a partition flushes its files.
	Roll Roll `yaml:"roll"`
	// RowGroupSize closes a Parquet row group when its encoded size
	// reaches it (about 120,000 rows of typical events at the default):
	// the open row group is what a file holds in memory. Default 8MiB.
	RowGroupSize ByteSize `yaml:"row_group_size"`
	// MemoryLimit bounds the memory of the output being built: when all
	// partitions together pass it, the partitions holding the most first
	// write their open row groups to the spool, then flush early. In a
	// container it is capped at a sixteenth of the memory limit. Default
	// 512MiB.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// SpoolDir is the local directory files are built in until they are
	// uploaded (each process uses and cleans up a subdirectory of its
	// own). Default "": the OS temp directory ($TMPDIR or /tmp). "memory"
	// builds files in memory instead, where memory_limit counts them whole.
	SpoolDir string `yaml:"spool_dir"`
	// Rejected is where rejected records go: store (the rejected/ output,
	// default) or off (counted and logged, not written).
	Rejected string `yaml:"rejected"`
	// CompleteAfter: an idle partition (consumed to its end) lets an hour
	// be complete this long after the hour ended; a busy one does when it
	// has delivered a record of a later hour. Default 10m.
	CompleteAfter Duration `yaml:"complete_after"`
	// NotifyTopic, when set, receives one JSON message per committed file
	// and one per complete hour (its manifest), keyed by a stable id.
	// Default "" (none).
	NotifyTopic string `yaml:"notify_topic"`
}

// S3 is the S3 (or S3-compatible) store.
type S3 struct {
	// Endpoint of an S3-compatible store, http(s)://host:port. Default ""
	// (AWS).
	Endpoint string `yaml:"endpoint"`
	// Region. Default "" (from the AWS chain, else us-east-1).
	Region string `yaml:"region"`
	// PathStyle: bucket in the path, not the host name. Default false.
	PathStyle bool `yaml:"path_style"`
	// PartSize of multipart uploads. Default 16MiB (at least 5MiB).
	PartSize ByteSize `yaml:"part_size"`
}

// Roll limits one flush of a partition.
type Roll struct {
	// MaxRows flushes after this many records. Default 1000000.
	MaxRows int64 `yaml:"max_rows"`
	// MaxBytes flushes when the estimated output reaches it. Default 128MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// MaxAge flushes a range this long after its first record arrived, by
	// the wall clock, also when no new records arrive. Default 5m.
	MaxAge Duration `yaml:"max_age"`
}

// Collect configures `sluice collect`, the Snowplow-protocol HTTP
// collector that writes CollectorPayload records to Kafka (the kafka
// section's brokers, TLS and SASL; not its topics).
type Collect struct {
	// Listen is the address of the collector's HTTP server. Default
	// 0.0.0.0:8080.
	Listen string `yaml:"listen"`
	// Topic the payloads are written to. Default snowplow-raw.
	Topic string `yaml:"topic"`
	// MaxBody bounds a request body; larger ones get 413. Default 1MiB.
	MaxBody ByteSize `yaml:"max_body"`
	// MaxBuffered bounds the bytes of requests waiting for Kafka's
	// acknowledgement; past it requests get 503 with Retry-After. Default
	// 64MiB.
	MaxBuffered ByteSize `yaml:"max_buffered"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is honoured (the
	// client is the last address not in them). Default none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// CORSOrigins may send events from browsers; "*" any. Default ["*"].
	CORSOrigins []string `yaml:"cors_origins"`
	// Cookie is the network user id cookie. Default off.
	Cookie Cookie `yaml:"cookie"`
}

// Cookie configures the collector's network user id cookie.
type Cookie struct {
	// Enabled sets and reads the cookie. Default false.
	Enabled bool `yaml:"enabled"`
	// Name of the cookie. Default sp.
	Name string `yaml:"name"`
	// Domain of the cookie. Default "" (the collector's host).
	Domain string `yaml:"domain"`
	// Expiration of the cookie. Default 8760h (a year).
	Expiration Duration `yaml:"expiration"`
}

// Observability is logging and the HTTP endpoints.
type Observability struct {
	// Listen is the address of /metrics, /livez and /readyz. Default
	// 127.0.0.1:9464; "" turns the server off.
	Listen string `yaml:"listen"`
	// LogLevel: debug, info (default), warn, error.
	LogLevel string `yaml:"log_level"`
	// LogFormat: text (default) or json.
	LogFormat string `yaml:"log_format"`
	// Pprof serves Go's /debug/pprof/ profiles on the same listener.
	// Default false.
	Pprof bool `yaml:"pprof"`
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Kafka: Kafka{
			Group:          "sluice",
			StartFrom:      "earliest",
			SessionTimeout: Duration(45e9),
			ClientID:       "sluice",
			MaxPollRecords: 10000,
		},
		Stages: []Stage{{Type: "decode"}},
		Sink: Sink{
			Compression:   "zstd",
			ZstdLevel:     "fastest",
			Roll:          Roll{MaxRows: 1_000_000, MaxBytes: 128 << 20, MaxAge: Duration(5 * 60e9)},
			RowGroupSize:  8 << 20,
			MemoryLimit:   512 << 20,
			Rejected:      "store",
			CompleteAfter: Duration(10 * 60e9),
		},
		Observability: Observability{
			Listen:    "127.0.0.1:9464",
			LogLevel:  "info",
			LogFormat: "text",
		},
		Collect: Collect{
			Listen:      "0.0.0.0:8080",
			Topic:       "snowplow-raw",
			MaxBody:     1 << 20,
			MaxBuffered: 64 << 20,
			CORSOrigins: []string{"*"},
			Cookie:      Cookie{Name: "sp", Expiration: Duration(8760 * 3600e9)},
		},
		ShutdownTimeout: Duration(30e9),
	}
}

// Load reads the YAML file at path over the defaults and applies the
// SLUICE_* overrides from environ (as os.Environ gives it). It does not
// validate: call Validate.
func Load(path string, environ []string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.ApplyEnv(environ); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads YAML over the defaults. Unknown keys are errors, all of them
// reported at once with their dotted key and line.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, err
	}
	if len(root.Content) == 0 { // empty document: defaults
		return cfg, nil
	}
	if errs := checkKeys(root.Content[0], typeOfConfig, ""); len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// Validate reports every problem of c, each naming its key. Of the stage
// list it checks the order (decode first, each type once); the stages'
// own keys are their packages' to check (cmd/sluice's stage table).
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	k := c.Kafka
	if len(k.Brokers) == 0 {
		bad("kafka.brokers", "at least one broker is required (host:port, or \"embedded\")")
	}
	for i, b := range k.Brokers {
		if b == "embedded" {
			if len(k.Brokers) > 1 {
				bad(fmt.Sprintf("kafka.brokers[%d]", i), "\"embedded\" cannot be mixed with other brokers")
			}
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	if len(k.Topics) == 0 {
		bad("kafka.topics", "at least one topic is required")
	}
	for i, t := range k.Topics {
		if !validTopic(t) {
			bad(fmt.Sprintf("kafka.topics[%d]", i), "%q is not a valid topic name (letters, digits, . _ -; at most 249)", t)
		}
	}
	if k.Group == "" {
		bad("kafka.group", "a consumer group is required")
	}
	if k.StartFrom != "earliest" && k.StartFrom != "latest" {
		bad("kafka.start_from", "%q is not earliest or latest", k.StartFrom)
	}
	if k.DeadLetterTopic != "" {
		if !validTopic(k.DeadLetterTopic) {
			bad("kafka.dead_letter_topic", "%q is not a valid topic name (letters, digits, . _ -; at most 249)", k.DeadLetterTopic)
		} else if slices.Contains(k.Topics, k.DeadLetterTopic) {
			bad("kafka.dead_letter_topic", "%q is also a consumed topic: bad records would come back", k.DeadLetterTopic)
		}
	}
	if k.SessionTimeout.D() < 1e9 {
		bad("kafka.session_timeout", "%s is too short (at least 1s)", k.SessionTimeout)
	}
	if k.ClientID == "" {
		bad("kafka.client_id", "must not be empty")
	}
	if k.MaxPollRecords < 1 {
		bad("kafka.max_poll_records", "must be at least 1, got %d", k.MaxPollRecords)
	}
	if t := k.TLS; !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		bad("kafka.tls.enabled", "TLS options are set but TLS is not enabled")
	}
	if t := k.TLS; (t.CertFile == "") != (t.KeyFile == "") {
		bad("kafka.tls.cert_file", "cert_file and key_file go together")
	}
	switch sa := k.SASL; sa.Mechanism {
	case "":
		if sa.Username != "" || sa.PasswordEnv != "" || sa.PasswordFile != "" {
			bad("kafka.sasl.mechanism", "SASL options are set but no mechanism (plain, scram-sha-256, scram-sha-512)")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if sa.Username == "" {
			bad("kafka.sasl.username", "required with SASL")
		}
		if (sa.PasswordEnv == "") == (sa.PasswordFile == "") {
			bad("kafka.sasl.password_env", "set exactly one of password_env and password_file (the password is never in this file)")
		}
	default:
		bad("kafka.sasl.mechanism", "%q is not plain, scram-sha-256 or scram-sha-512", sa.Mechanism)
	}

	errs = append(errs, validateStages(c.Stages)...)

	s := c.Sink
	if s.URL == "" {
		bad("sink.url", "an output URL is required (file:///path)")
	} else if u, err := url.Parse(s.URL); err != nil {
		bad("sink.url", "%v", err)
	} else {
		if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(s.URL, "#") {
			// file:///data/run#2 would write to /data/run: the rest is a
			// fragment, not part of the path.
			bad("sink.url", "%q: a query or fragment (?, #) is not part of the path; percent-encode them there (%%3F, %%23)", s.URL)
		}
		switch u.Scheme {
		case "file":
			if u.Path == "" || (u.Host != "" && u.Host != "localhost") {
				bad("sink.url", "%q: a file URL is file:///absolute/path", s.URL)
			}
		case "s3":
			if u.Host == "" {
				bad("sink.url", "%q: an S3 URL is s3://bucket/prefix", s.URL)
			}
		default:
			bad("sink.url", "%q: scheme %q is not supported (file, s3)", s.URL, u.Scheme)
		}
	}
	if e := s.S3.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("sink.s3.endpoint", "%q is not an http(s)://host:port URL", e)
		}
	}
	if s.S3.PartSize != 0 && s.S3.PartSize < 5<<20 {
		bad("sink.s3.part_size", "must be at least 5MiB, got %s", s.S3.PartSize)
	}
	if !slices.Contains([]string{"zstd", "snappy", "gzip", "lz4", "none"}, s.Compression) {
		bad("sink.compression", "%q is not zstd, snappy, gzip, lz4 or none", s.Compression)
	}
	if !slices.Contains([]string{"fastest", "default", "better", "best"}, s.ZstdLevel) {
		bad("sink.zstd_level", "%q is not fastest, default, better or best", s.ZstdLevel)
	}
	if s.Roll.MaxRows < 1 {
		bad("sink.roll.max_rows", "must be at least 1, got %d", s.Roll.MaxRows)
	}
	if s.Roll.MaxBytes < 1<<10 {
		bad("sink.roll.max_bytes", "must be at least 1KiB, got %s", s.Roll.MaxBytes)
	}
	if s.Roll.MaxAge.D() < 1e8 {
		bad("sink.roll.max_age", "must be at least 100ms, got %s", s.Roll.MaxAge)
	}
	if s.RowGroupSize < 1<<10 {
		bad("sink.row_group_size", "must be at least 1KiB, got %s", s.RowGroupSize)
	}
	if s.MemoryLimit < 1<<20 {
		bad("sink.memory_limit", "must be at least 1MiB, got %s", s.MemoryLimit)
	}
	if s.Rejected != "store" && s.Rejected != "off" {
		bad("sink.rejected", "%q is not store or off", s.Rejected)
	}
	if s.CompleteAfter.D() < 0 {
		bad("sink.complete_after", "must not be negative, got %s", s.CompleteAfter)
	}
	if s.NotifyTopic != "" {
		if !validTopic(s.NotifyTopic) {
			bad("sink.notify_topic", "%q is not a valid topic name (letters, digits, . _ -; at most 249)", s.NotifyTopic)
		} else if slices.Contains(c.Kafka.Topics, s.NotifyTopic) {
			bad("sink.notify_topic", "%q is also a consumed topic", s.NotifyTopic)
		}
	}

	o := c.Observability
	if o.Listen != "" {
		if _, _, err := net.SplitHostPort(o.Listen); err != nil {
			bad("observability.listen", "%q is not host:port", o.Listen)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, o.LogLevel) {
		bad("observability.log_level", "%q is not debug, info, warn or error", o.LogLevel)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		bad("observability.log_format", "%q is not text or json", o.LogFormat)
	}
	if c.ShutdownTimeout.D() < 1e9 {
		bad("shutdown_timeout", "must be at least 1s, got %s", c.ShutdownTimeout)
	}

	co := c.Collect
	if _, _, err := net.SplitHostPort(co.Listen); err != nil {
		bad("collect.listen", "%q is not host:port", co.Listen)
	}
	if !validTopic(co.Topic) {
		bad("collect.topic", "%q is not a valid topic name (letters, digits, . _ -; at most 249)", co.Topic)
	}
	if co.MaxBody < 1<<10 {
		bad("collect.max_body", "must be at least 1KiB, got %s", co.MaxBody)
	}
	if co.MaxBuffered < co.MaxBody {
		bad("collect.max_buffered", "must be at least collect.max_body (%s), got %s", co.MaxBody, co.MaxBuffered)
	}
	for i, p := range co.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("collect.trusted_proxies[%d]", i), "%q is not a CIDR (10.0.0.0/8, fd00::/8)", p)
		}
	}
	for i, o := range co.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad(fmt.Sprintf("collect.cors_origins[%d]", i), "%q is not \"*\" or an origin (https://host[:port])", o)
		}
	}
	if co.Cookie.Enabled && co.Cookie.Name == "" {
		bad("collect.cookie.name", "must not be empty")
	}
	if co.Cookie.Expiration.D() < 0 {
		bad("collect.cookie.expiration", "must not be negative")
	}
	return errors.Join(errs...)
}

// ValidateCollect reports the problems of the keys `sluice collect` reads:
// kafka (but its topics, group and sink-side keys), collect,
// observability and shutdown_timeout.
func (c *Config) ValidateCollect() error {
	cc := *c
	d := Default()
	// The pipeline's own sections take valid stand-ins: collect does not
	// read them.
	cc.Kafka.Topics, cc.Kafka.Group, cc.Kafka.DeadLetterTopic = []string{"collect"}, "collect", ""
	cc.Stages, cc.Sink = d.Stages, d.Sink
	cc.Sink.URL = "file:///collect"
	return cc.Validate()
}

func validateStages(stages []Stage) []error {
	var errs []error
	if len(stages) == 0 {
		return []error{errors.New("stages: at least the decode stage is required")}
	}
	seen := map[string]int{}
	for i, st := range stages {
		key := fmt.Sprintf("stages[%d]", i)
		if st.Type == "" {
			errs = append(errs, fmt.Errorf("%s.type: required", key))
			continue
		}
		if j, dup := seen[st.Type]; dup {
			errs = append(errs, fmt.Errorf("%s.type: %s is already stages[%d]", key, st.Type, j))
		}
		seen[st.Type] = i
	}
	if j, ok := seen["decode"]; !ok {
		errs = append(errs, errors.New("stages: the decode stage is required (every other stage works on decoded events)"))
	} else if j != 0 {
		errs = append(errs, fmt.Errorf("stages[%d].type: decode must be the first stage", j))
	}
	return errs
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
